"""Frame sources: a camera, a video file or still images, each yielding core.types.Frame (RGB uint8).

Every source says how its frames relate in time by its `mode` (as MediaPipe Tasks' running
modes): Mode.IMAGE unrelated stills, Mode.VIDEO every frame of a file in order with its own
timestamps, Mode.LIVE a camera whose newest frame wins. Callers pick their loop by the mode.

Live and file sources differ on purpose:
- CameraSource reads in its own thread and keeps only the newest frame: a slow consumer skips
  frames (counted in `dropped`) instead of falling ever further behind the camera.
- VideoFileSource decodes in its own thread into a small bounded queue: every frame is kept, in
  order, and decoding simply waits when the consumer is slower (back-pressure), so an output
  video can have the same frames and timestamps as the input.
"""
import enum
import heapq
import itertools
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Protocol

import av
from av.video.reformatter import VideoReformatter
import cv2
import numpy as np

from core.errors import InputError
from core.types import Frame

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".gif", ".3gp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
ALPHA_EXTENSIONS = {".png", ".webp", ".tif", ".tiff"}   # formats that can carry transparency
MULTI_FRAME_EXTENSIONS = {".png", ".webp", ".tif", ".tiff"}   # APNG, animated WebP, multi-page TIFF


class Mode(enum.StrEnum):
    IMAGE = "image"   # stills, each on its own (no tracking or smoothing across them)
    VIDEO = "video"   # every frame of a file, in order, with the file's timestamps
    LIVE = "live"     # a camera: the newest frame wins, slow consumers skip frames


class Source(Protocol):
    """What every frame source offers; `mode` says which loop suits it."""
    mode: Mode

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self): ...

    def __exit__(self, *exc): ...


class CameraSource:
    """A live camera read by cv2.VideoCapture in a thread; newest frame wins.

    `camera` is a device index (0, 1, ...), a device path or URL, or an already opened capture
    (anything with cv2.VideoCapture's read/get/isOpened/release; tests feed one that reads a
    video file). Iterating yields the newest unread frame each time until close() or the capture
    ends; Frame.index counts every frame the camera delivered, so gaps show the dropped ones, and
    Frame.time is seconds since start.

    A device sometimes fails a read and recovers; `max_failed_reads` failures in a row (default:
    30 for a device, 1 for a capture object: a file that simply ended) end the stream, and for a
    device that means it went away (unplugged, taken by another program): `disconnected` is then
    True, so the caller can say so.
    """
    mode = Mode.LIVE

    def __init__(self, camera=0, size: tuple | None = None, fps: float | None = None,
                 max_failed_reads: int | None = None):
        if hasattr(camera, "read"):
            self._capture, self.name = camera, "capture"
        else:
            self._capture, self.name = cv2.VideoCapture(camera), str(camera)
        if not self._capture.isOpened():
            self._capture.release()
            raise InputError(f"cannot open camera {self.name} (not connected, busy, or no permission)")
        if size is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            self._capture.set(cv2.CAP_PROP_FPS, fps)
        self.size = (int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0) or None
        self._max_failed_reads = max_failed_reads or (1 if hasattr(camera, "read") else 30)
        self.frames_read = 0          # frames the camera delivered
        self.dropped = 0              # of those, overwritten before the consumer took them
        self.disconnected = False     # the device stopped delivering frames (not closed by us)
        self._latest = None           # (index, time, bgr) not yet taken
        self._ended = False
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def _run(self):
        failed = 0
        try:
            while not self._stop.is_set():
                try:
                    ok, bgr = self._capture.read()
                except Exception:   # some backends raise when the device vanishes
                    ok, failed = False, self._max_failed_reads
                if not ok:
                    failed += 1
                    if failed >= self._max_failed_reads:
                        self.disconnected = self._max_failed_reads > 1 and not self._stop.is_set()
                        break
                    time.sleep(0.01)
                    continue
                failed = 0
                stamp = time.monotonic() - self._start
                with self._changed:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = (self.frames_read, stamp, bgr)
                    self.frames_read += 1
                    self._changed.notify_all()
        finally:
            self._capture.release()
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; waits for one. None when the camera has ended or timed out."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._latest is not None or self._ended, timeout):
                return None
            if self._latest is None:
                return None
            index, stamp, bgr = self._latest
            self._latest = None
        # Colour conversion here, not in the thread, so dropped frames cost nothing.
        return Frame(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index=index, time=stamp)

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._changed:
            self._latest = None   # iteration ends after close(), even with a frame unread,
            self._ended = True    # and a reader waiting on a camera stuck in read() wakes
            self._changed.notify_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


class VideoFileSource:
    """Every frame of a video file, in order, decoded by PyAV in a thread.

    Attributes: path, size (width, height, upright), fps (average, float), rate (the same as a
    Fraction), n_frames (the container's count or an estimate from the duration: for a progress
    bar), time_base (Fraction), start_pts, end_pts (pts where the last frame ends, or None),
    rotation (degrees counter-clockwise from the file's display matrix, applied to the pixels:
    frames come out upright, as a player shows them), has_audio, frames_read, frames_lost,
    finished (True once the last frame has been yielded).
    Frame.pts / time_base are the stream's own, so a writer can reproduce variable frame rate;
    Frame.time is seconds since the first frame.

    Damaged data (a broken download, a bad sector) does not end the video: packets are decoded
    one by one, and where a frame cannot be decoded the last good frame is repeated in its place
    with the missing frame's timestamp (the container's index still lists it), so the frame
    count and the timing (hence the sync with the audio) stay the source's. `frames_lost`
    counts them.
    """
    mode = Mode.VIDEO

    def __init__(self, path, queue_size: int = 8):
        self.path = Path(path)
        _require_file(self.path)
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path} is not a readable video ({_reason(exc)})") from None
        self.frames_read = 0
        self.frames_lost = 0
        self.finished = False
        try:
            self._init_stream()
        except BaseException:
            self._container.close()
            raise
        self._queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"decode-{self.path.name}", daemon=True)
        self._thread.start()

    def _init_stream(self):
        if not self._container.streams.video:
            raise InputError(f"{self.path} has no video stream")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"   # frame + slice threads; frames still come out in order
        # one reformatter for the whole stream: frame.to_ndarray(format=...) builds a new swscale
        # context per frame, and FFmpeg 8 starts and stops its slice threads with each (2 a frame)
        self._reformatter = VideoReformatter()
        self.time_base = stream.time_base or Fraction(1, 90000)
        self.rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        self.fps = float(self.rate)
        self.has_audio = bool(self._container.streams.audio)
        self._slots = []            # heap of listed pts not yet given out
        self._frames = self._fill_lost(self._decode())
        # Decode the first frame now: an empty or undecodable video fails here, not mid-pipeline.
        try:
            first = next(self._frames, None)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot decode {self.path} ({_reason(exc)})") from None
        if first is None:
            raise InputError(f"{self.path} has no video frames" if not self.frames_lost
                             else f"cannot decode any frame of {self.path}")
        self._first = first
        av_frame = first[0]
        self.rotation = round((av_frame.rotation or 0) / 90) % 4 * 90
        self._coded_size = (av_frame.width, av_frame.height)
        self.size = self._coded_size[::-1] if self.rotation in (90, 270) else self._coded_size
        self.start_pts = first[1] if first[1] is not None else 0
        seconds = None
        if stream.duration is not None:
            seconds = float(stream.duration * self.time_base)
            self.end_pts = (stream.start_time or 0) + stream.duration
        else:
            self.end_pts = None
            if self._container.duration is not None:
                seconds = self._container.duration / av.time_base
        self.n_frames = stream.frames or (round(seconds * self.fps) if seconds else 0)

    def _decode(self):
        """The stream's frames, decoded packet by packet; a packet that cannot be decoded is
        skipped (its frame will be missing) and every packet's pts is noted as a slot."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets, None)
            except av.FFmpegError:   # the container itself is broken from here on: stop reading it
                packet = None
            if packet is None:
                break
            if packet.pts is not None and packet.size:
                heapq.heappush(self._slots, packet.pts)
            try:
                yield from packet.decode()   # the last (empty) packet flushes the decoder
            except av.FFmpegError:
                continue
        try:
            yield from self._stream.codec_context.decode(None)   # frames still held after a broken end
        except av.FFmpegError:
            pass

    def _fill_lost(self, decoded):
        """(av frame, pts) in presentation order, the last good frame given again for each
        listed pts whose own frame could not be decoded (the first good one for those before it)."""
        last, last_pts = None, None
        for av_frame in decoded:
            pts = av_frame.pts
            if pts is not None:
                if last_pts is not None and pts <= last_pts:
                    continue   # its slot was already filled
                while self._slots and self._slots[0] < pts:
                    missing = heapq.heappop(self._slots)
                    if last_pts is None or missing > last_pts:
                        self.frames_lost += 1
                        yield last or av_frame, missing
                        last_pts = missing
                while self._slots and self._slots[0] <= pts:
                    heapq.heappop(self._slots)
                last_pts = pts
            last = av_frame
            yield av_frame, pts
        while last is not None and self._slots:   # the end could not be decoded
            missing = heapq.heappop(self._slots)
            if last_pts is None or missing > last_pts:
                self.frames_lost += 1
                yield last, missing
                last_pts = missing

    def _run(self):
        try:
            for index, (av_frame, pts) in enumerate(itertools.chain([self._first], self._frames)):
                if not self._put(self._to_frame(av_frame, pts, index)):
                    return
            self._put(_END)
        except Exception as exc:  # handed to the consumer, who raises it as InputError
            self._put(_Failure(exc))
        finally:
            self._first = None
            self._container.close()

    def _to_frame(self, av_frame, pts, index: int) -> Frame:
        if pts is None:  # some raw streams carry no timestamps: space frames at the average rate
            pts = self.start_pts + round(index / self.rate / self.time_base)
        width, height = self._coded_size  # a stream that changes resolution midway is scaled to its first size
        image = self._reformatter.reformat(av_frame, width=width, height=height, format="rgb24").to_ndarray()
        if self.rotation:   # upright, as players show it (np.rot90 turns counter-clockwise)
            image = np.ascontiguousarray(np.rot90(image, self.rotation // 90))
        return Frame(image=image, index=index, time=float((pts - self.start_pts) * self.time_base), pts=pts,
                     time_base=self.time_base)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                self.finished = True
                return
            if isinstance(item, _Failure):
                raise InputError(f"cannot decode {self.path} after frame {self.frames_read} "
                                 f"({_reason(item.exc)})") from item.exc
            self.frames_read += 1
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_image(path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (EXIF orientation applied); InputError if unreadable."""
    path = Path(path)
    _require_file(path)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None and path.suffix.lower() == ".gif":   # OpenCV reads no GIF: a still one through PyAV
        return _first_video_frame(path)
    if bgr is None:
        raise InputError(f"{path} is not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_frames(path) -> int:
    """How many frames an image file holds (an animated WebP or PNG, a multi-page TIFF: more than
    one; read_image reads the first), from its header; 1 when Pillow cannot tell."""
    if Path(path).suffix.lower() not in MULTI_FRAME_EXTENSIONS:
        return 1
    from PIL import Image
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except Exception:
        return 1


def read_alpha(path) -> np.ndarray | None:
    """The transparency of an image file as (H, W) uint8, or None when it has none: a cut-out
    portrait's output keeps it (the parse runs on its colour pixels as stored)."""
    if Path(path).suffix.lower() not in ALPHA_EXTENSIONS or _header_says_opaque(path):
        return None
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return None
    alpha = raw[..., 3]
    if alpha.dtype == np.uint16:   # 16-bit PNG
        return (alpha >> 8).astype(np.uint8)
    return alpha if alpha.dtype == np.uint8 else None


def _header_says_opaque(path) -> bool:
    """True when the file's header (read by Pillow, no pixels decoded) shows no alpha channel and
    no transparent colour: most PNGs, whose second full decode read_alpha then skips."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.mode in OPAQUE_MODES and "transparency" not in im.info
    except Exception:   # Pillow cannot tell (a format or variant it does not know): decode and see
        return False


OPAQUE_MODES = {"1", "L", "P", "RGB", "CMYK", "YCbCr", "I", "I;16", "F"}


def _first_video_frame(path: Path) -> np.ndarray:
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0)).to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError, StopIteration, IndexError):
        raise InputError(f"{path} is not a readable image") from None


class ImageSource:
    """Still images as Frames (index = position in `paths`, time 0.0).

    Iterating raises InputError at an unreadable file, or skips it (and lists it in `skipped`)
    when skip_unreadable=True; `source[i]` reads one image, for callers that handle errors themselves.
    """
    mode = Mode.IMAGE

    def __init__(self, paths, skip_unreadable: bool = False, folder: bool | None = None, videos_left_out=()):
        self.paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        self.skip_unreadable = skip_unreadable
        # outputs go to folders (one file per image): a folder given as input, even of one image,
        # or several paths
        self.folder = len(self.paths) > 1 if folder is None else folder
        self.videos_left_out = list(videos_left_out)   # a folder's videos: its run takes the photos
        self.skipped = []
        self.alphas = {}   # index -> transparency of the images read that have one (pop when written)
        self._read_ahead = {}   # index -> Frame read by read_ahead, given out once

    def __len__(self):
        return len(self.paths)

    def read_ahead(self, index: int = 0) -> None:
        """Read one image now (InputError if it cannot be), kept for its turn: a single photo's
        error comes before any model loads, without decoding it twice."""
        self._read_ahead[index] = self[index]

    def __getitem__(self, index: int) -> Frame:
        if index in self._read_ahead:
            return self._read_ahead.pop(index)
        image = read_image(self.paths[index])
        alpha = read_alpha(self.paths[index])
        if alpha is not None and alpha.shape == image.shape[:2]:
            self.alphas[index] = alpha
        return Frame(image=image, index=index, time=0.0)

    def __iter__(self):
        for index in range(len(self.paths)):
            try:
                yield self[index]
            except InputError:
                if not self.skip_unreadable:
                    raise
                self.skipped.append(self.paths[index])

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def image_paths_in(folder) -> list:
    """The image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def open_source(spec, skip_unreadable: bool = False, camera_size: tuple | None = None,
                camera_fps: float | None = None):
    """A source for a camera (int index, digit string or /dev/video*), a folder of images, an
    image file or a video file; files of unknown extension are probed with PyAV. A GIF is a
    video when it is animated (more than one frame), else an image."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CameraSource(int(spec), size=camera_size, fps=camera_fps)
    if isinstance(spec, str) and "://" in spec:   # Path() would turn it into a missing file's name
        raise InputError(f"{spec} is a URL: --input takes a file or folder (download it first); a live "
                         f"stream (rtsp://, an MJPEG camera) goes to --camera")
    path = Path(spec)
    if str(path).startswith("/dev/video"):
        return CameraSource(str(path), size=camera_size, fps=camera_fps)
    if path.is_dir():
        paths = image_paths_in(path)
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS - IMAGE_EXTENSIONS)
        if not paths:
            raise InputError(f"no images in folder {path}" + (" (it holds videos: run each alone, or the folder "
                                                              "with --ray)" if videos else ""))
        return ImageSource(paths, skip_unreadable=skip_unreadable, folder=True, videos_left_out=videos)
    _require_file(path)
    suffix = path.suffix.lower()
    still_gif = suffix == ".gif" and _count_frames(path, 2) < 2
    kind = None if suffix in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS else _probe_kind(path)
    if kind == "audio":
        raise InputError(f"{path} has no video stream (a sound file?)")
    if (suffix in VIDEO_EXTENSIONS or kind == "video") and not still_gif:
        return VideoFileSource(path)
    source = ImageSource(path, skip_unreadable=skip_unreadable)
    if not skip_unreadable:
        source.read_ahead()
    return source


def _probe_kind(path: Path) -> str | None:
    """A file of unknown extension, opened by PyAV: "video", "audio" (sound only, e.g. .m4a),
    or None (not a container PyAV reads, or a still image's decoder: left to the image reader)."""
    try:
        with av.open(str(path)) as container:
            if container.streams.video:
                # image decoders (png, mjpeg stills...) also open as one-frame "videos"
                still = container.streams.video[0].codec_context.name in {"png", "mjpeg", "bmp", "tiff", "webp"}
                return None if still else "video"
            return "audio" if container.streams.audio else None
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None


def _count_frames(path: Path, most: int) -> int:
    """How many frames PyAV decodes from `path`, up to `most` (0 when it cannot read it)."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in itertools.islice(container.decode(video=0), most))
    except (av.FFmpegError, OSError, UnicodeDecodeError, IndexError):
        return 0


def _require_file(path: Path):
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")


def _reason(exc: BaseException) -> str:
    """A one-line reason from an av/OS error (drops errno numbers and call names)."""
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return text.splitlines()[0]

"""Video outputs with PyAV: the rendered video (h264 + the input's audio) and the label maps.

Both write to a hidden temporary file beside the target and rename it at close(), so an
interrupted run never leaves a truncated file under the name the user asked for; abort() (and
leaving the `with` block by an exception) deletes the temporary file instead, and
close_partial() finishes what was written into a playable file whose name says it is partial
(out.mp4 -> out.partial.mp4).

Given the VideoFileSource it renders, a writer keeps the source's time base and each frame's pts
(variable frame rate stays exactly as it was, including the first frame's offset and the last
frame's duration), and VideoWriter copies the source's audio packets through untouched.
"""
import itertools
import os
from collections import deque
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter
import cv2
import numpy as np

from core.errors import InputError
from core.types import Frame
from stream.capture import ALPHA_EXTENSIONS


VIDEO_FORMATS = "e.g. .mp4, .mkv, .webm, .mov"   # what to name a video instead, in errors


def check_video_name(path: Path, formats: str = VIDEO_FORMATS) -> None:
    """InputError for a video output named without an extension (the container comes from it):
    run_live.py asks before loading any model, the writers again when they open. A folder is
    refused as one, where the writer opens."""
    if not Path(path).suffix and not Path(path).is_dir():
        raise InputError(f"cannot write {path}: a file name with an extension is needed ({formats})")


class _AtomicOutput:
    """A container written under a temporary name and renamed into place by close()."""

    formats = VIDEO_FORMATS

    def __init__(self, path):
        self.path = Path(path)
        check_video_name(self.path, self.formats)
        self.temp_path = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        folder = self.path.parent
        if not folder.is_dir():
            problem = "is not a folder" if folder.exists() else "does not exist"
            raise InputError(f"cannot write {self.path}: {folder} {problem}")
        if self.path.is_dir():
            raise InputError(f"cannot write {self.path}: it is a folder")
        try:  # PyAV opens the file only when the header is written: find out now
            with open(self.temp_path, "wb"):
                pass
            self._container = av.open(str(self.temp_path), "w")
        except ValueError:  # PyAV: no muxer for this extension
            self.temp_path.unlink(missing_ok=True)
            raise InputError(f"cannot write {self.path}: unknown video format '{self.path.suffix}' ({self.formats})") from None
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.closed = False

    def _finish(self):
        """Subclasses flush their encoders here."""

    def close(self) -> Path:
        """Finish the file and give it its real name; returns that path."""
        if self.closed:
            return self.path
        try:
            self._finish()
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self.closed = True
        os.replace(self.temp_path, self.path)
        return self.path

    @property
    def partial_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")

    def close_partial(self) -> Path | None:
        """Finish the frames written so far into a playable file named `partial_path` (after
        Ctrl-C); the target path is left as it was. None (and nothing kept) when no frame was
        written or the file cannot be finished."""
        if self.closed:
            return None
        try:
            self._finish()
            self._container.close()
        except Exception:
            self.abort()
            return None
        self.closed = True
        os.replace(self.temp_path, self.partial_path)
        return self.partial_path

    def abort(self):
        """Drop the partial file; the target path is left as it was."""
        if self.closed:
            return
        self.closed = True
        try:
            self._container.close()
        except Exception:  # a half-written container may fail to finish; it is being deleted anyway
            pass
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if getattr(self, "closed", True) is False:
            self.abort()


class _Timeline:
    """Each frame's pts and duration, in the source's time base or at a constant rate.

    A frame's duration is known once the next frame's pts is (the last one's from the source's
    end, else one frame at the average rate)."""

    def __init__(self, source, fps):
        self.follow_frames = source is not None   # without a source, Frame pts are ignored
        if source is not None:
            self.time_base, self.rate = source.time_base, source.rate
            self.end_pts = source.end_pts
        else:
            self.rate = Fraction(fps or 30).limit_denominator(1001)
            self.time_base, self.end_pts = 1 / self.rate, None
        self.step = max(1, round(1 / (self.rate * self.time_base)))  # one frame at the average rate
        self.fed = deque()      # pts given to the encoder whose packet is not muxed yet
        self.last_pts = None

    def next_pts(self, frame_or_pts) -> int:
        if isinstance(frame_or_pts, Frame):
            frame = frame_or_pts
            pts = None
            if frame.pts is not None and self.follow_frames:
                pts = _rescale(frame.pts, frame.time_base or self.time_base, self.time_base)
        else:
            pts = frame_or_pts
        if pts is None:
            pts = 0 if self.last_pts is None else self.last_pts + self.step
        if self.last_pts is not None and pts <= self.last_pts:
            raise ValueError(f"frame pts must increase: {pts} after {self.last_pts}")
        self.last_pts = pts
        self.fed.append(pts)
        return pts

    def pop_duration(self, final: bool) -> int | None:
        """The oldest fed frame's duration, or None while its successor is still unknown."""
        if len(self.fed) >= 2:
            pts = self.fed.popleft()
            return self.fed[0] - pts
        if final and self.fed:
            pts = self.fed.popleft()
            return self.end_pts - pts if self.end_pts is not None and self.end_pts > pts else self.step
        return None

    @property
    def end_seconds(self) -> float:
        return float((self.last_pts + self.step) * self.time_base)


class _EncodedOutput(_AtomicOutput):
    """One video stream encoded frame by frame, timed by a _Timeline; the stream is added at
    the first frame, whose size it takes unless `size` was given."""
    codec = pix_fmt = frame_format = None

    def __init__(self, path, source=None, fps: float | None = None, size: tuple | None = None):
        if source is not None and Path(path).resolve() == Path(source.path).resolve():
            raise InputError(f"output {path} would overwrite the input video")
        super().__init__(path)
        if self.codec not in self._container.supported_codecs:
            _AtomicOutput.abort(self)
            raise InputError(f"cannot write {self.path}: a '{self.path.suffix}' file cannot hold {self.codec} video ({self.formats})")
        self.source = source
        self.frames_written = 0
        self.size = None if size is None else self._encoded_size(size)
        self._timeline = _Timeline(source, fps)
        self._video = None
        self._held = deque()          # encoded packets waiting for their duration

    def _encoded_size(self, size) -> tuple:
        return (int(size[0]), int(size[1]))

    def _open_stream(self, options: dict):
        video = self._container.add_stream(self.codec, rate=self._timeline.rate)
        video.width, video.height = self.size
        video.pix_fmt = self.pix_fmt
        video.codec_context.time_base = self._timeline.time_base
        video.time_base = self._timeline.time_base
        video.options = options
        self._video = video

    def _start(self):
        raise NotImplementedError

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        return image

    def write(self, image, pts: int | None = None):
        if self.closed:
            raise ValueError(f"write to a closed {type(self).__name__}")
        frame_or_pts = image if pts is None and isinstance(image, Frame) else pts
        if isinstance(image, Frame):
            image = image.image
        height, width = image.shape[:2]
        if self.size is not None and self._encoded_size((width, height)) != self.size:
            raise ValueError(f"frame size {width}x{height} differs from the video's {self.size[0]}x{self.size[1]}")
        pts = self._timeline.next_pts(frame_or_pts)
        if self._video is None:
            if self.size is None:
                self.size = self._encoded_size((width, height))
            self._start()
        frame = av.VideoFrame.from_ndarray(self._prepare(np.ascontiguousarray(image, dtype=np.uint8)),
                                           format=self.frame_format)
        frame.pts = pts
        frame.time_base = self._timeline.time_base
        self._mux_video(self._video.encode(frame), final=False)
        self.frames_written += 1
        self._after_write(float(pts * self._timeline.time_base))

    def _after_write(self, seconds: float):
        pass

    def _mux_video(self, packets, final: bool):
        # No B-frames: packets come out in the order the frames went in.
        self._held.extend(packets)
        while self._held:
            duration = self._timeline.pop_duration(final)
            if duration is None:
                break
            packet = self._held.popleft()
            packet.duration = duration
            self._container.mux(packet)

    def _finish(self):
        if self._video is None:
            raise ValueError(f"no frames were written to {self.path}")
        self._mux_video(self._video.encode(None), final=True)


# The audio codecs copied as they are into the containers users name most (checked with PyAV's
# FFmpeg 8, tests/stream/test_video_io.py); any other is re-encoded with the first of
# AUDIO_ENCODERS the container holds. A muxer's supported_codecs is not enough: .mov lists FLAC
# and Opus and .mp4 lists PCM, and each then fails when the file's header or trailer is written;
# .avi takes Opus and ALAC packets and writes no audio. Other containers (.mkv: all of these)
# copy what they list.
COPIED_AUDIO = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus"},
    "mov": {"aac", "mp3", "mp2", "ac3", "eac3", "alac", "pcm_s16le", "pcm_f32le"},
    "avi": {"aac", "mp3", "mp2", "ac3", "eac3", "flac", "pcm_s16le", "pcm_f32le"},
    "webm": {"opus"},
}
AUDIO_ENCODERS = ("aac", "libopus")   # WebM holds no AAC: Opus there


class VideoWriter(_EncodedOutput):
    """H.264 (libx264, yuv420p) video; with `source`, the same timestamps and audio as it.

    write(image, pts=None): image is an (H, W, 3) uint8 RGB array or a Frame; the pts (in the
    writer's time base: the source's, else 1/fps) is, in order, the explicit `pts`, the Frame's
    own when there is a source (rescaled if its time base differs), or the previous pts + one
    frame. Without a source, frames are spaced at `fps` (default 30) unless `pts` is given.
    Odd sizes are padded by one replicated row/column (yuv420p needs even sizes); `size` is
    the encoded (even) size. B-frames are off: packets come out in order and early (lower
    latency), and the output's sample table, hence its average fps, matches the input's exactly.
    Audio is copied packet by packet (no re-encode): all of it when the whole source was
    written, else up to the end of the last written frame; an audio codec the container cannot
    hold (COPIED_AUDIO) is re-encoded, as AAC (Opus in .webm). A .webm file gets VP9 video.
    """
    codec, pix_fmt, frame_format = "libx264", "yuv420p", "yuv420p"

    def __init__(self, path, source=None, fps: float | None = None, size: tuple | None = None,
                 crf: int = 20, preset: str = "veryfast"):
        if Path(path).suffix.lower() == ".webm":
            # realtime VP9 without alt-ref frames: packets in frame order, as libx264's without B-frames
            self.codec = "libvpx-vp9"
            self._options = {"crf": "28", "b": "0", "deadline": "realtime", "cpu-used": "8",
                             "row-mt": "1", "lag-in-frames": "0", "auto-alt-ref": "0"}
        else:
            self._options = {"crf": str(crf), "preset": preset, "bf": "0"}
        super().__init__(path, source, fps, size)
        self._audio_in = None         # the source opened a second time, for its audio packets
        self._audio_out = None
        self._audio_packets = None
        self._next_audio = None

    def _encoded_size(self, size) -> tuple:
        width, height = int(size[0]), int(size[1])
        return (width + width % 2, height + height % 2)

    def _prepare(self, image):
        height, width = image.shape[:2]
        if (width, height) != self.size:
            image = np.pad(image, ((0, self.size[1] - height), (0, self.size[0] - width), (0, 0)), mode="edge")
        # OpenCV's BT.601 conversion instead of libswscale's inside the encoder call: 0.4-0.8 ms
        # less a 512x512 frame in the caller's thread, 0.08 levels apart from swscale's planes
        return cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)

    def _start(self):
        self._open_stream(self._options)   # video first: stream 0
        if self.source is not None and self.source.has_audio:
            self._start_audio()

    def _start_audio(self):
        self._audio_in = av.open(str(self.source.path))
        template = self._audio_in.streams.audio[0]
        container = self._container
        codec = template.codec_context.codec.canonical_name   # "mp3", whose decoder is "mp3float"
        copied = COPIED_AUDIO.get(container.format.name, container.supported_codecs)
        encoder = next((c for c in AUDIO_ENCODERS if c in container.supported_codecs), None)
        if codec in copied:
            self._audio_out = container.add_stream_from_template(template)
            self._audio_packets = (p for p in self._audio_in.demux(template) if p.dts is not None)
        elif encoder is not None:
            self._audio_packets = self._encoded_packets(template, encoder)
        else:   # no audio codec this output container is known to hold: keep the video, drop the audio
            self._close_audio()
            return
        self._next_audio = next(self._audio_packets, None)

    def _encoded_packets(self, template, encoder: str):
        """The source's audio decoded, resampled to 48 kHz and encoded with `encoder`, packet by
        packet, timed from its first sample."""
        layout = "mono" if template.codec_context.channels == 1 else "stereo"
        self._audio_out = self._container.add_stream(encoder, rate=48000, layout=layout)
        resampler = av.AudioResampler(format=self._audio_out.codec_context.format.name, layout=layout, rate=48000)
        samples = 0
        # the demuxer's last, empty packet flushes the decoder; then None flushes the resampler
        frames = itertools.chain((f for packet in self._audio_in.demux(template) for f in packet.decode()), [None])
        for frame in frames:
            for out in resampler.resample(frame):
                out.pts, out.time_base = samples, Fraction(1, 48000)
                samples += out.samples
                yield from self._audio_out.encode(out)
        yield from self._audio_out.encode(None)

    def _after_write(self, seconds: float):
        self._copy_audio(until=seconds)

    def _copy_audio(self, until: float | None):
        """Mux the source's audio packets that start at or before `until` seconds (all when None)."""
        while self._next_audio is not None:
            packet = self._next_audio
            if until is not None and packet.pts is not None and float(packet.pts * packet.time_base) > until:
                return
            packet.stream = self._audio_out
            self._container.mux(packet)
            self._next_audio = next(self._audio_packets, None)

    def _finish(self):
        try:
            super()._finish()
            if self._audio_out is not None:
                whole = self.source.finished and self.frames_written >= self.source.frames_read
                self._copy_audio(until=None if whole else self._timeline.end_seconds)
        finally:
            self._close_audio()

    def _close_audio(self):
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        self._next_audio = None

    def abort(self):
        self._close_audio()
        super().abort()


class LabelVideoWriter(_EncodedOutput):
    """Per-frame label maps ((H, W) uint8 class ids, 255 = ignore) as a lossless FFV1 gray8
    video (use a .mkv path), one label frame per output frame with the same timestamps.
    write(labels, pts=None) follows VideoWriter.write; any size is fine (no padding)."""
    codec, pix_fmt, frame_format = "ffv1", "gray", "gray"
    formats = "a video's label maps go to a lossless .mkv, e.g. labels.mkv"

    def _start(self):
        self._open_stream({})


def encode_image(ext: str, image: np.ndarray, alpha: np.ndarray | None = None) -> bytes | None:
    """An RGB image (or a 2-D label map) as the bytes of an `ext` file ('.png', '.jpg', ...), with
    `alpha` as its transparency where the format holds one; None if OpenCV cannot write `ext`."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if alpha is not None and ext.lower() in ALPHA_EXTENSIONS:
            image = np.dstack([image, alpha])
    ok, data = cv2.imencode(ext, image)
    return data.tobytes() if ok else None


def save_labels(path, labels, source=None, fps: float | None = None) -> Path:
    """Write a sequence of (H, W) uint8 label maps (or (labels, pts) pairs) in one go."""
    with LabelVideoWriter(path, source=source, fps=fps) as writer:
        for item in labels:
            if isinstance(item, tuple):
                writer.write(*item)
            else:
                writer.write(item)
    return writer.path


def iter_label_video(path):
    """Yield each frame's (H, W) uint8 label map from a LabelVideoWriter file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        with av.open(str(path)) as container:
            reformatter = VideoReformatter()   # one swscale context for the file (see stream/capture.py)
            for frame in container.decode(video=0):
                yield reformatter.reformat(frame, format="gray").to_ndarray()
    except av.FFmpegError as exc:
        raise InputError(f"{path} is not a readable label video ({exc})") from None


def read_label_video(path) -> np.ndarray:
    """All label maps of a LabelVideoWriter file as an (N, H, W) uint8 array."""
    maps = list(iter_label_video(path))
    if not maps:
        raise InputError(f"{path} has no label frames")
    return np.stack(maps)


def _rescale(pts: int, source_base: Fraction, target_base: Fraction) -> int:
    return pts if source_base == target_base else round(pts * source_base / target_base)

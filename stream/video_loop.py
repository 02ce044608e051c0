"""The one loop that runs a FacePipeline over a frame source into video files.

run_live.py (a video file, or a camera with --output) and the web page's video tab both call
process_video; each passes its own per-frame callback (progress bar, window, page progress) and
limits. The loop owns the writers, and what happens to them on each way a run can end:
- it finishes: they are closed (renamed into place);
- Ctrl-C (KeyboardInterrupt): from a file, the frames done so far are finished into playable
  files named `NAME.partial.EXT` (the final name never holds a truncated file); from a camera,
  the recording simply ends there, under its name. Interrupted (a KeyboardInterrupt) is raised
  with the run;
- the disk fills up (or a file-size limit is hit): OutputError (one line), the files deleted;
- anything else: the files deleted, the error raised as it was.
Frames the source could not decode (damaged data) were replaced by the last good one there
(capture.VideoFileSource): the run counts them in `lost`. A camera that stops delivering frames
ends the run normally, with `disconnected` set.
"""
import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from core.errors import InputError, OutputError, os_reason
from stream import assemble, video_io
from stream.capture import Mode

LOST_FRAMES_LIMIT = 0.10   # a video missing more than this share of its frames is reported as damaged


@dataclass
class VideoRun:
    """What a run produced: the files (final, or partial after Ctrl-C), frames written, frames
    with a face, frames of the source that could not be decoded, wall time."""
    output: Path | None = None
    labels: Path | None = None
    frames: int = 0
    with_face: int = 0
    lost: int = 0
    partial: bool = False         # interrupted: the files are the `.partial` ones
    disconnected: bool = False    # a camera stopped delivering frames
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-6)

    @property
    def lost_share(self) -> float:
        return self.lost / max(self.frames, 1)

    @property
    def damaged(self) -> bool:
        return self.lost_share > LOST_FRAMES_LIMIT

    def lost_note(self) -> str:
        """One line about the frames that could not be decoded ('' when none)."""
        if not self.lost:
            return ""
        return (f"{self.lost} of {self.frames} frames ({100 * self.lost_share:.1f}%) could not be decoded "
                f"(damaged file): the last good frame was repeated in their place, timing and audio kept")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; `run` says what was kept."""

    def __init__(self, run: VideoRun):
        super().__init__()
        self.run = run


def process_video(source, pipeline, output=None, labels=None, frames=None, on_frame=None,
                  max_frames: int | None = None, name: str | None = None, progress: bool = True) -> VideoRun:
    """Run `pipeline` over `source` (a VIDEO or LIVE capture.Source), writing the rendered frames
    to `output` (h264 with the source's timing and audio) and label maps to `labels` (FFV1 .mkv);
    either may be None. `frames`: the frames to process when not `source` itself (the page's
    downscaled ones). `on_frame(result, run)` is called after each frame; returning False stops
    the run early (a window's q key). `progress`: a progress bar on stderr (files only). More than `max_frames` frames raise InputError.
    Closes the source and the pipeline."""
    run = VideoRun()
    live = source.mode is Mode.LIVE
    writers = {}
    t0 = time.perf_counter()
    with _CtrlC() as ctrl_c:
        try:
            writers = {key: _open_writer(kind, path, source, live)
                       for key, kind, path in (("output", video_io.VideoWriter, output),
                                               ("labels", video_io.LabelVideoWriter, labels)) if path is not None}
            clock = _LiveClock(source.fps) if live else None
            total = None if live else (source.n_frames or None)
            with contextlib.closing(pipeline.run(source if frames is None else frames, live=live)) as results, \
                    tqdm(total=total, unit="frame", desc=name or getattr(source, "path", Path("")).name,
                         disable=live or not progress) as bar:
                for result in results:
                    if max_frames is not None and run.frames == max_frames:
                        raise InputError(f"{name or 'the video'} is too long (over {max_frames} frames)")
                    pts = clock(result.frame.time) if live else result.frame.pts
                    label_map = assemble.label_map(result) if "labels" in writers else None
                    with ctrl_c.held():   # a frame is written whole (and counted), or not at all
                        if "output" in writers:
                            _write(writers["output"], result.output, pts)
                        if label_map is not None:
                            _write(writers["labels"], label_map, pts)
                        run.frames += 1
                        run.with_face += bool(result.faces)
                    bar.update(1)
                    if ctrl_c.pressed:   # a Ctrl-C whose KeyboardInterrupt Python dropped
                        raise KeyboardInterrupt
                    if on_frame is not None and on_frame(result, run) is False:
                        break
            with ctrl_c.held():
                _close(writers, run)
        except KeyboardInterrupt:
            with ctrl_c.held():   # a second Ctrl-C waits for the files to be finished
                if live:   # a camera has no "rest": the recording ends here, under its own name
                    _close(writers, run)
                else:
                    run.partial = True
                    run.output, run.labels = (writers[k].close_partial() if k in writers else None
                                              for k in ("output", "labels"))
            raise Interrupted(run) from None
        finally:
            for writer in writers.values():
                writer.abort()   # no-op for the closed ones: deletes whatever was not finished
            source.close()
            pipeline.close()
            run.seconds = time.perf_counter() - t0
            run.lost = getattr(source, "frames_lost", 0)
            run.disconnected = bool(getattr(source, "disconnected", False))
    return run


class _CtrlC:
    """Ctrl-C during a run, as one SIGINT handler (main thread only: signals reach no other; and
    only over Python's default handler, not a caller's own or an ignored Ctrl-C):
    - it raises KeyboardInterrupt where the main thread is, except inside `held()` blocks, where it
      waits for the outermost block to end: a KeyboardInterrupt between an encoder's output and
      the muxer would drop a packet (a frame missing from the file, the later ones shifted);
    - it is also remembered (`pressed`): raised inside a __del__ or a callback from C, Python
      prints it and drops it ("Exception ignored in ..."), and the run went on to the end (seen
      once in a few hundred test runs); the loop checks after each frame."""

    def __init__(self):
        self.pressed = False
        self._holds = 0
        self._waiting = False
        self._previous = None

    def __enter__(self):
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is threading.main_thread() and previous is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        self.pressed = True
        if self._holds:
            self._waiting = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self):
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if self._waiting and not self._holds:
                self._waiting = False
                raise KeyboardInterrupt


def _open_writer(kind, path, source, live):
    # a camera has no file timing to copy: frames are timed by when they were captured
    return kind(Path(path), fps=source.fps or 30) if live else kind(Path(path), source=source)


def _write(writer, image, pts):
    try:
        writer.write(image, pts=pts)
    except OSError as exc:   # av.error.OSError too: EFBIG (file-size limit), ENOSPC (disk full)
        raise OutputError(f"cannot write {writer.path}: {os_reason(exc)}; nothing was kept") from None


def _close(writers: dict, run: VideoRun):
    for key, writer in writers.items():
        try:
            setattr(run, key, writer.close())
        except OSError as exc:
            raise OutputError(f"cannot finish {writer.path}: {os_reason(exc)}; nothing was kept") from None


class _LiveClock:
    """Camera frames' capture times -> increasing pts at the writer's rate (1/fps time base)."""

    def __init__(self, fps):
        self.fps = fps or 30
        self.last = -1

    def __call__(self, seconds: float) -> int:
        self.last = max(self.last + 1, round(seconds * self.fps))
        return self.last

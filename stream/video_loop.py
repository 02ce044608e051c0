"""The one loop that runs a FacePipeline over a frame source into video files.

run_live.py (a video file, or a camera with --output) and the web page's video tab both call
process_video; each passes its own per-frame callback (progress bar, window, page progress) and
limits. The loop owns the writers: on success they are closed (renamed into place), on any
failure aborted (no file posing as finished).
"""
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from stream import assemble, video_io
from stream.capture import Mode


@dataclass
class VideoRun:
    """What a run produced: the finished files, frames written, frames with a face, wall time."""
    output: Path | None = None
    labels: Path | None = None
    frames: int = 0
    with_face: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-6)


def process_video(source, pipeline, output=None, labels=None, frames=None, on_frame=None,
                  max_frames: int | None = None, name: str | None = None) -> VideoRun:
    """Run `pipeline` over `source` (a VIDEO or LIVE capture.Source), writing the rendered frames
    to `output` (h264 with the source's timing and audio) and label maps to `labels` (FFV1 .mkv);
    either may be None. `frames`: the frames to process when not `source` itself (the page's
    downscaled ones). `on_frame(result, run)` is called after each frame; returning False stops
    the run early (a window's q key). More than `max_frames` frames raise InputError."""
    from core.errors import InputError
    run = VideoRun()
    live = source.mode is Mode.LIVE
    writer = label_writer = None
    t0 = time.perf_counter()
    try:
        writer = _open_writer(video_io.VideoWriter, output, source, live)
        label_writer = _open_writer(video_io.LabelVideoWriter, labels, source, live)
        clock = _LiveClock(source.fps) if live else None
        total = None if live else (source.n_frames or None)
        with contextlib.closing(pipeline.run(source if frames is None else frames)) as results, \
                tqdm(total=total, unit="frame", desc=name or getattr(source, "path", Path("")).name,
                     disable=live) as bar:
            for result in results:
                if max_frames is not None and run.frames == max_frames:
                    raise InputError(f"{name or 'the video'} is too long (over {max_frames} frames)")
                pts = clock(result.frame.time) if live else result.frame.pts
                if writer is not None:
                    writer.write(result.output, pts=pts)
                if label_writer is not None:
                    label_writer.write(assemble.label_map(result), pts=pts)
                run.frames += 1
                run.with_face += bool(result.faces)
                bar.update(1)
                if on_frame is not None and on_frame(result, run) is False:
                    break
        run.output = writer.close() if writer is not None else None
        run.labels = label_writer.close() if label_writer is not None else None
    except BaseException:
        for w in (writer, label_writer):
            if w is not None:
                w.abort()
        raise
    finally:
        source.close()
        pipeline.close()
    run.seconds = time.perf_counter() - t0
    return run


def _open_writer(kind, path, source, live):
    if path is None:
        return None
    # a camera has no file timing to copy: frames are timed by when they were captured
    return kind(Path(path), fps=source.fps or 30) if live else kind(Path(path), source=source)


class _LiveClock:
    """Camera frames' capture times -> increasing pts at the writer's rate (1/fps time base)."""

    def __init__(self, fps):
        self.fps = fps or 30
        self.last = -1

    def __call__(self, seconds: float) -> int:
        self.last = max(self.last + 1, round(seconds * self.fps))
        return self.last

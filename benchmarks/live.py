"""Live use: camera latency (capture to display) and dropped frames, and time per frame with
1, 2 and 4 faces.

    python -m benchmarks.live [--model landmarks] [--clip PATH] [--fps 30] [--frames 90]

Latency: a video file delivered at a camera's pace (`--fps`, like tests/app/test_live_window.py)
through CameraSource (newest frame wins) and the threaded pipeline; for each shown frame, the
time from its capture to the moment the rendered frame is ready for the window. Frames the
camera delivered while the pipeline was busy are dropped and counted.
Faces: frames composed of 1, 2 or 4 portraits from tests/fixtures (2x2 grid, 320x320 each,
640x640 frame; unused cells black), run through the threaded pipeline with default effects;
wall ms per frame after warm-up.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT / "assets" / "demo.mp4"
FIXTURES = ROOT / "tests" / "fixtures"


class PacedCapture(cv2.VideoCapture):
    """A video file read at a camera's pace."""

    def __init__(self, path, fps: float):
        super().__init__(str(path))
        self.period = 1.0 / fps
        self.next = time.monotonic()

    def read(self, *args):
        self.next += self.period
        time.sleep(max(0.0, self.next - time.monotonic()))
        return super().read(*args)


def latency(model: str, clip: Path, fps: float) -> dict:
    import effects
    from stream import assemble
    from stream.capture import CameraSource
    pipeline = assemble.build_pipeline(model=model, effects=effects.parse_effects(effects.DEFAULT_EFFECTS),
                                       log=lambda *a: None, leave_a_core=True)   # run_live.py's thread settings
    source = CameraSource(PacedCapture(clip, fps))
    delays, shown = [], 0
    for result in pipeline.run(source, live=True):
        delays.append(time.monotonic() - source._start - result.frame.time)
        shown += 1
    source.close()
    pipeline.close()
    delays = delays[5:]   # after warm-up
    return {"read": source.frames_read, "dropped": source.dropped, "shown": shown,
            "median_ms": 1000 * statistics.median(delays), "p90_ms": 1000 * float(np.percentile(delays, 90))}


def grid(n: int, cell: int = 320) -> np.ndarray:
    portraits = sorted(FIXTURES.glob("portrait_*.jpg"))
    frame = np.zeros((2 * cell, 2 * cell, 3), np.uint8)
    for i, path in enumerate(portraits[:n]):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        s = cell / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        y, x = (i // 2) * cell, (i % 2) * cell
        frame[y:y + img.shape[0], x:x + img.shape[1]] = img
    return frame


def per_frame(model: str, n_faces: int, frames: int) -> dict:
    import effects
    from core.types import Frame
    from stream import assemble
    pipeline = assemble.build_pipeline(model=model, effects=effects.parse_effects(effects.DEFAULT_EFFECTS),
                                       log=lambda *a: None, leave_a_core=True)   # run_live.py's thread settings
    image = grid(n_faces)
    stream = (Frame(image, i, i / 30) for i in range(frames + 10))
    stamps, found = [], []
    for result in pipeline.run(stream):
        stamps.append(time.perf_counter())
        found.append(len(result.faces))
    pipeline.close()
    steps = np.diff(stamps[10:]) * 1000
    return {"faces": statistics.median(found), "ms": float(np.median(steps))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="landmarks")
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--frames", type=int, default=90)
    args = ap.parse_args(argv)
    lat = latency(args.model, args.clip, args.fps)
    print(f"{os.cpu_count()} cores, --model {args.model}, default effects")
    print(f"camera at {args.fps:g} fps ({args.clip.name}): capture to display median {lat['median_ms']:.0f} ms, "
          f"90th percentile {lat['p90_ms']:.0f} ms; {lat['dropped']} of {lat['read']} frames dropped "
          f"({lat['shown']} shown)")
    for n in (1, 2, 4):
        r = per_frame(args.model, n, args.frames)
        print(f"{n} face(s) in a 640x640 frame (found {r['faces']:g}): {r['ms']:.1f} ms per frame "
              f"({1000 / r['ms']:.1f} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

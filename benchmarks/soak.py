"""Soak test of the live pipeline: memory and per-frame latency over a long run (not a CI test).

    python -m benchmarks.soak --minutes 10 [--model landmarks] [--clip assets/demo.mp4] [--record out/soak.mp4]

A looping clip is delivered at a camera's pace (--fps, default 25) through capture.CameraSource,
and run_live.py's own loop (stream.video_loop.process_video) runs the pipeline over it, as
`run_live.py --camera` does (with --record, also writing the recording). Every --every seconds
it prints the process's resident memory (RSS) and the frames' latency (capture to rendered,
median and 95th percentile), fps and dropped frames; at the end, a verdict: flat when, after the
first minute's warm-up, the least-squares trend of RSS rose less than max(10 MB, 3%) and that of
the median latency less than max(3 ms, twice its spread around the trend): on a shared machine
latency follows the load, so the question is whether it creeps, not whether it is steady.
"""
import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import cv2

from benchmarks.live import PacedCapture

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """Resident set size of this process now, in MB (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class LoopingClip(PacedCapture):
    """A video file played in a loop at a camera's pace: a stand-in for a webcam."""

    def read(self, *args):
        ok, frame = super().read(*args)
        if not ok:   # end of the clip: from the start again
            self.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = super().read(*args)
        return ok, frame


def soak(minutes: float, model: str, clip: Path, fps: float, every: float, record: Path | None):
    from stream import assemble
    from stream.capture import CameraSource
    from stream.video_loop import process_video
    import effects

    source = CameraSource(LoopingClip(clip, fps))
    pipeline = assemble.build_pipeline(model=model, effects=effects.parse_effects(effects.DEFAULT_EFFECTS),
                                       max_faces=1, log=lambda *a: None)
    samples, latencies = [], []
    lock = threading.Lock()
    end = time.monotonic() + minutes * 60

    def on_frame(result, run):
        with lock:
            latencies.append(time.monotonic() - source._start - result.frame.time)
        return time.monotonic() < end

    def sampler():
        t0, frames_before = time.monotonic(), 0
        while time.monotonic() < end:
            time.sleep(every)
            with lock:
                window = latencies[frames_before:]
                frames_before = len(latencies)
            if not window:
                continue
            q = statistics.quantiles(window, n=20) if len(window) > 1 else window * 19
            row = dict(t=time.monotonic() - t0, rss=rss_mb(), median=1e3 * statistics.median(window),
                       p95=1e3 * q[18], fps=len(window) / every, dropped=source.dropped)
            samples.append(row)
            print(f"{row['t'] / 60:6.1f} min  RSS {row['rss']:7.1f} MB  latency median {row['median']:6.1f} ms  "
                  f"p95 {row['p95']:6.1f} ms  {row['fps']:5.1f} fps  dropped {row['dropped']}", flush=True)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    run = process_video(source, pipeline, record, on_frame=on_frame)
    thread.join(every + 1)
    return samples, run


def trend(samples, key) -> tuple[float, float]:
    """(change over the span by a least-squares line, standard deviation around that line)."""
    t = [s["t"] for s in samples]
    y = [s[key] for s in samples]
    slope, intercept = statistics.linear_regression(t, y)
    spread = statistics.pstdev([v - (slope * x + intercept) for x, v in zip(t, y)])
    return slope * (t[-1] - t[0]), spread


def verdict(samples) -> tuple[bool, str]:
    warm = [s for s in samples if s["t"] >= 60]
    if len(warm) < 3:
        return False, "too short to judge (need a few reports after the first minute)"
    rss_change, _ = trend(warm, "rss")
    lat_change, lat_spread = trend(warm, "median")
    rss_flat = rss_change < max(10.0, 0.03 * warm[0]["rss"])
    lat_flat = lat_change < max(3.0, 2 * lat_spread)
    minutes = (warm[-1]["t"] - warm[0]["t"]) / 60
    text = (f"after the first minute, over {minutes:.1f} min: RSS {warm[0]['rss']:.0f} -> {warm[-1]['rss']:.0f} MB "
            f"(trend {rss_change:+.1f} MB, peak {max(s['rss'] for s in warm):.0f}); median latency trend "
            f"{lat_change:+.1f} ms (spread {lat_spread:.1f} ms between reports; range "
            f"{min(s['median'] for s in warm):.0f}-{max(s['median'] for s in warm):.0f} ms). "
            f"{'flat within noise' if rss_flat and lat_flat else 'NOT flat'}"
            f"{'' if rss_flat else ': memory grows'}{'' if lat_flat else ': latency grows'}")
    return rss_flat and lat_flat, text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--model", default="landmarks")
    p.add_argument("--clip", type=Path, default=ROOT / "assets" / "demo.mp4")
    p.add_argument("--fps", type=float, default=25.0, help="pace of the looping clip (a camera's rate)")
    p.add_argument("--every", type=float, default=15.0, help="seconds between reports")
    p.add_argument("--record", type=Path, default=None, help="also record the output video here")
    args = p.parse_args(argv)
    from models.perception.quiet import hide_native_stderr
    hide_native_stderr()
    print(f"soak: {args.minutes:g} min of '{args.model}' on {args.clip.name} looped at {args.fps:g} fps"
          + (f", recording to {args.record}" if args.record else ""), flush=True)
    samples, run = soak(args.minutes, args.model, args.clip, args.fps, args.every, args.record)
    flat, text = verdict(samples)
    print(f"{run.frames} frames in {run.seconds / 60:.1f} min. {text}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())

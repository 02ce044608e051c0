"""Per-stage time and end-to-end fps of the live pipeline on a 640x480 clip.

    python -m benchmarks.pipeline [--model landmarks] [--clip PATH] [--frames 150]

The clip is made once from ../shared/data/videos/talking_d6.mp4 (scaled and padded to
640x480, into the git-ignored data/ folder). Stages are timed inside a real threaded run
(decode thread, tracking one frame ahead, encode) and the end-to-end fps is wall time over
that same run; decode and encode are also timed alone. Medians per frame are printed.
"""
import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "videos" / "talking_d6.mp4"
CLIP = ROOT / "data" / "bench_640x480.mp4"


def make_clip(path: Path = CLIP, source: Path = SOURCE, frames: int = 300) -> Path:
    if path.exists():
        return path
    if not source.exists():
        raise SystemExit(f"need {source} (../shared) to make the 640x480 benchmark clip")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if i == frames:
                break
            img = frame.to_ndarray(format="rgb24")
            s = 480 / img.shape[0]
            img = cv2.resize(img, (round(img.shape[1] * s), 480), interpolation=cv2.INTER_AREA)
            pad = (640 - img.shape[1]) // 2
            canvas = np.zeros((480, 640, 3), np.uint8)
            canvas[:, pad:pad + img.shape[1]] = img[:, : 640 - pad]
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="landmarks")
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--effects", default=None)
    args = ap.parse_args()
    import effects
    from stream import capture, assemble as session, video_io

    clip = args.clip or make_clip()
    settings = effects.parse_effects(args.effects or effects.DEFAULT_EFFECTS)
    out_dir = ROOT / "data" / "bench_out"
    out_dir.mkdir(parents=True, exist_ok=True)

    # decode alone
    t0 = time.perf_counter()
    frames = []
    with capture.VideoFileSource(clip) as src:
        for f in src:
            frames.append(f)
            if len(frames) == args.frames:
                break
    decode_ms = (time.perf_counter() - t0) * 1000 / len(frames)

    # encode alone
    with capture.VideoFileSource(clip) as src:
        writer = video_io.VideoWriter(out_dir / "encode_only.mp4", fps=src.fps, size=src.size)
        t0 = time.perf_counter()
        for f in frames:
            writer.write(f.image)
        writer.close()
    encode_ms = (time.perf_counter() - t0) * 1000 / len(frames)

    pipeline = session.build_pipeline(model=args.model, effects=settings, max_faces=1, leave_a_core=True)
    for f in frames[:5]:  # warm-up (mediapipe graphs, numba, torch)
        pipeline.process(f)
    pipeline.close()
    pipeline = session.build_pipeline(model=args.model, effects=settings, max_faces=1, leave_a_core=True)

    stages = {k: [] for k in ("landmarks", "parse", "smoothing", "warp_back", "effects")}
    n_faces = 0
    with capture.VideoFileSource(clip) as src:
        writer = video_io.VideoWriter(out_dir / "pipeline.mp4", source=src)
        t0 = time.perf_counter()
        for i, result in enumerate(pipeline.run(src)):
            writer.write(result.output, pts=result.frame.pts)
            for k in stages:
                stages[k].append(result.timings.get(k, 0.0) * 1000)
            n_faces += len(result.faces)
            if i + 1 == args.frames:
                break
        wall = time.perf_counter() - t0
        writer.close()
    n = len(stages["parse"])
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{__import__('torch').get_num_threads()}; model {args.model}; {n} frames of {clip.name}, "
          f"{n_faces / n:.2f} faces/frame")
    print(f"{'stage':<12}{'median ms/frame':>16}")
    print(f"{'decode':<12}{decode_ms:>16.2f}   (alone, mean)")
    for k, v in stages.items():
        print(f"{k:<12}{statistics.median(v):>16.2f}")
    print(f"{'encode':<12}{encode_ms:>16.2f}   (alone, mean)")
    serial = decode_ms + encode_ms + sum(statistics.median(v) for v in stages.values())
    print(f"sum of stages {serial:.1f} ms = {1000 / serial:.1f} fps if run one after another")
    print(f"end to end (threaded, with decode and encode): {n / wall:.1f} fps")


if __name__ == "__main__":
    main()

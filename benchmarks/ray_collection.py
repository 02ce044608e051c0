"""Throughput of run_live.py's --ray collections with 1 and 2 workers, and of one process.

    python -m benchmarks.ray_collection [--photos 24] [--clips 2] [--frames 60] [--rounds 2] [--model rnng]

Photos are the first N of ../shared/data/portraits; clips are the first F frames of talking
clips (../shared/data/videos, cut once into the git-ignored data/bench_ray/). One local Ray
session (2 CPUs); 1 and 2 workers alternate, R rounds each, so that load from other jobs on
the machine falls on both alike. Items per second count from when the workers are ready
(model built); start-up is reported on its own. "one process" is run_live.py without Ray.
"""
import argparse
import contextlib
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "data" / "bench_ray"
CLIP_SOURCES = ("talking_d0.mp4", "talking_d12.mp4", "talking_d18.mp4", "talking_d19.mp4")


def make_collection(photos: int, clips: int, frames: int) -> tuple:
    if not SHARED.is_dir():
        raise SystemExit(f"need {SHARED} (../shared) for the benchmark's photos and clips")
    photo_dir, clip_dir = WORK / f"photos{photos}", WORK / f"clips{clips}x{frames}"
    if not photo_dir.exists():
        photo_dir.mkdir(parents=True)
        for p in sorted((SHARED / "portraits").glob("*.jpg"))[:photos]:
            shutil.copy(p, photo_dir / p.name)
    if not clip_dir.exists():
        clip_dir.mkdir(parents=True)
        for name in CLIP_SOURCES[:clips]:
            with av.open(str(SHARED / "videos" / name)) as inp, av.open(str(clip_dir / name), "w") as out:
                stream = out.add_stream("libx264", rate=inp.streams.video[0].average_rate)
                stream.width, stream.height = inp.streams.video[0].width, inp.streams.video[0].height
                stream.pix_fmt = "yuv420p"
                for i, frame in enumerate(inp.decode(video=0)):
                    if i == frames:
                        break
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")))
                out.mux(stream.encode(None))
    return photo_dir, clip_dir


def run_ray(folder: Path, workers: int, model: str) -> tuple:
    from cluster import ray_collection
    from stream import ray_live
    options = dict(model=model, device="cpu", checkpoint=None, effects=None, max_faces=4, smooth=True,
                   show_labels=False)
    items = [(p.name, lambda p=p: p.read_bytes()) for p in ray_live.collection_items(folder)]
    with contextlib.redirect_stderr(io.StringIO()):
        summary = ray_collection.run_items(items, ray_live.LiveWorker, (options,), save=lambda key, result: None,
                                           is_done=lambda key: False, workers=workers, log=lambda line: None)
    assert len(summary.done) == len(items), summary.lines()
    return len(items) / (summary.total_s - summary.ready_s), summary.ready_s, len(summary.by_worker())


def run_one_process(folder: Path, model: str) -> float:
    import run_live
    files = [p for p in sorted(folder.iterdir())]
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        start = time.perf_counter()
        if files[0].suffix == ".mp4":
            for f in files:
                run_live.main(["--input", str(f), "--output", f"{tmp}/{f.stem}.mp4", "--model", model])
        else:
            run_live.main(["--input", str(folder), "--output", tmp, "--model", model])
        return len(files) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=int, default=24)
    p.add_argument("--clips", type=int, default=2)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default="rnng")
    args = p.parse_args()
    from cluster import ray_collection
    folders = make_collection(args.photos, args.clips, args.frames)
    ray_collection.connect("local", 2)
    rates = {}
    for _ in range(args.rounds):
        for folder in folders:
            for workers in (1, 2):
                rate, ready, used = run_ray(folder, workers, args.model)
                rates.setdefault((folder.name, f"ray, {workers} worker(s)"), []).append(rate)
                rates.setdefault((folder.name, f"start-up s, {workers} worker(s)"), []).append(ready)
            rates.setdefault((folder.name, "one process"), []).append(run_one_process(folder, args.model))
    print("| collection | measure | rounds | median |\n|---|---|---|---|")
    for (name, what), values in rates.items():
        print(f"| {name} | {what} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()

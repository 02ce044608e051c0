"""Does this checkout's run_live.py give the same output as another's (e.g. the main branch)?

    python -m benchmarks.same_output --before ../main [--clip PATH] [-- run_live options]

Runs both on the clip with --save-labels and compares, frame by frame: frame count and every
frame's timestamp (must be equal), the rendered images (mean absolute difference in grey levels
over all pixels and channels; goal: within 1) and the label maps (share of identical pixels;
goal: at least 99.9%). Skips with a message when ../shared is absent.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "videos" / "talking_d10.mp4"


def frames(path: Path, fmt: str):
    """(pts, image) of every frame of a video."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.pts, frame.to_ndarray(format=fmt)


def compare(before_video, after_video, before_labels, after_labels) -> dict:
    pts_before, pts_after, grey, same, n = [], [], 0.0, 0, 0
    for (pa, a), (pb, b) in zip(frames(before_video, "rgb24"), frames(after_video, "rgb24")):
        grey += np.abs(a.astype(np.int16) - b).mean()
        n += 1
    pts_before = [p for p, _ in frames(before_video, "gray")]
    pts_after = [p for p, _ in frames(after_video, "gray")]
    pixels = 0
    for (_, a), (_, b) in zip(frames(before_labels, "gray"), frames(after_labels, "gray")):
        same += int((a == b).sum())
        pixels += a.size
    return {"frames": (len(pts_before), len(pts_after)), "same_timestamps": pts_before == pts_after,
            "mean_grey_diff": grey / max(n, 1), "labels_identical": same / max(pixels, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="the other checkout (its run_live.py)")
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("options", nargs="*", help="run_live.py options, after --")
    args = ap.parse_args(argv)
    if not args.clip.exists():
        print(f"skipped: needs {args.clip} (the project's ../shared folder)")
        return 0
    options = args.options or ["--model", "landmarks", "--effects", "lipstick=#b0103a:0.6"]
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for name, checkout in (("before", args.before.resolve()), ("after", ROOT)):
            video, labels = Path(tmp) / f"{name}.mp4", Path(tmp) / f"{name}.mkv"
            subprocess.run([sys.executable, "run_live.py", "--input", str(args.clip.resolve()), "--output", str(video),
                            "--save-labels", str(labels), *options], cwd=checkout, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            outputs[name] = (video, labels)
        result = compare(outputs["before"][0], outputs["after"][0], outputs["before"][1], outputs["after"][1])
    print(f"{args.clip.name}, run_live.py {' '.join(options)}")
    print(f"frames: {result['frames'][0]} before, {result['frames'][1]} after; "
          f"timestamps {'identical' if result['same_timestamps'] else 'DIFFER'}")
    print(f"images: mean absolute difference {result['mean_grey_diff']:.3f} grey levels (goal <= 1)")
    print(f"label maps: {100 * result['labels_identical']:.3f}% of pixels identical (goal >= 99.9%)")
    ok = (result["same_timestamps"] and result["frames"][0] == result["frames"][1]
          and result["mean_grey_diff"] <= 1.0 and result["labels_identical"] >= 0.999)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

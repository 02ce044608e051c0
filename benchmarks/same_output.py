"""Does this checkout's run_live.py give the same output as another's (e.g. the main branch)?

    python -m benchmarks.same_output --before ../main [--clip PATH] [-- run_live options]

Runs both checkouts' run_live.py on the clip with --save-labels and compares, frame by frame:
frame count and every frame's timestamp (must be equal) and the label maps (share of identical
pixels; goal: at least 99.9%). The rendered images are compared before encoding (mean absolute
difference in grey levels over all pixels and channels; goal: within 1): each checkout's
pipeline also renders the clip into a lossless FFV1 file, because two libx264 encodings of
nearly equal frames differ by more than the frames do (the encoder's choices cascade); that
encoded difference is printed too. Skips with a message when ../shared is absent.
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


# run in each checkout (cwd): its own pipeline renders the clip losslessly
RENDER = r"""
import sys, av, effects
from stream import assemble, capture
clip, out, model, spec = sys.argv[1:5]
settings = None if spec == "none" else effects.parse_effects(spec or effects.DEFAULT_EFFECTS)
pipeline = assemble.build_pipeline(model=model, effects=settings, log=lambda *a: None)
pipeline.labels_wanted = False   # as run_live.py renders without --save-labels
with capture.VideoFileSource(clip) as src, av.open(out, "w") as container:
    stream = container.add_stream("ffv1", rate=30)
    stream.width, stream.height, stream.pix_fmt = src.size[0], src.size[1], "bgr0"
    for result in pipeline.run(src):
        for packet in stream.encode(av.VideoFrame.from_ndarray(result.output, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
pipeline.close()
"""


def frames(path: Path, fmt: str):
    """(pts, image) of every frame of a video."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.pts, frame.to_ndarray(format=fmt)


def mean_grey_diff(before_video, after_video, details: bool = False):
    """Mean absolute difference in grey levels over all frames, pixels and channels (with
    details: also the share of values that differ and the largest difference)."""
    grey, changed, largest, n = 0.0, 0.0, 0, 0
    for (_, a), (_, b) in zip(frames(before_video, "rgb24"), frames(after_video, "rgb24")):
        d = np.abs(a.astype(np.int16) - b)
        grey += d.mean()
        changed += (d > 0).mean()
        largest = max(largest, int(d.max()))
        n += 1
    n = max(n, 1)
    return (grey / n, changed / n, largest) if details else grey / n


def compare(before_video, after_video, before_labels, after_labels) -> dict:
    same = 0
    pts_before = [p for p, _ in frames(before_video, "gray")]
    pts_after = [p for p, _ in frames(after_video, "gray")]
    pixels = 0
    for (_, a), (_, b) in zip(frames(before_labels, "gray"), frames(after_labels, "gray")):
        same += int((a == b).sum())
        pixels += a.size
    return {"frames": (len(pts_before), len(pts_after)), "same_timestamps": pts_before == pts_after,
            "encoded_grey_diff": mean_grey_diff(before_video, after_video), "labels_identical": same / max(pixels, 1)}


def option(options: list, name: str, default: str) -> str:
    return options[options.index(name) + 1] if name in options else default


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
            lossless = Path(tmp) / f"{name}_lossless.mkv"
            subprocess.run([sys.executable, "-c", RENDER, str(args.clip.resolve()), str(lossless),
                            option(options, "--model", "auto"), option(options, "--effects", "")],
                           cwd=checkout, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            outputs[name] = (video, labels, lossless)
        result = compare(*(outputs[k][i] for i in (0, 1) for k in ("before", "after")))
        result["mean_grey_diff"], result["changed"], result["largest"] = mean_grey_diff(
            outputs["before"][2], outputs["after"][2], details=True)
    print(f"{args.clip.name}, run_live.py {' '.join(options)}")
    print(f"frames: {result['frames'][0]} before, {result['frames'][1]} after; "
          f"timestamps {'identical' if result['same_timestamps'] else 'DIFFER'}")
    print(f"images: mean absolute difference {result['mean_grey_diff']:.3f} grey levels before encoding "
          f"(goal <= 1; {100 * result['changed']:.3f}% of values differ, by at most {result['largest']}); "
          f"{result['encoded_grey_diff']:.3f} after each run's libx264 encoding")
    print(f"label maps: {100 * result['labels_identical']:.3f}% of pixels identical (goal >= 99.9%)")
    ok = (result["same_timestamps"] and result["frames"][0] == result["frames"][1]
          and result["mean_grey_diff"] <= 1.0 and result["labels_identical"] >= 0.999)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

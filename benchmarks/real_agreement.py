"""Real faces without truth: how far a tier's labels agree with the best source per part that issue
#13's hidden real photos found (the landmark tier's eyes, lips and inner mouth; RNN-G's skin,
brows and nose), through the user's path (`run_live.py --input DIR --save-labels DIR`).

    python -m benchmarks.real_agreement --model bspnet                         # the shipped weights
    python -m benchmarks.real_agreement --model bspnet --checkpoint OLD.pt     # other weights

The faces: every 40th frame of the talking-head clips never used in training (talking_d0, d12,
d18, d19, d20: 25 frames) and the 28 portraits of the hair dev set (their images, not their
labels, were in the auto-labelled training data). Agreement is group F1 over all pixels (brows,
eyes and the three mouth classes merged), per set. It is not accuracy: a tier can beat its
reference and score lower here. It tells whether new weights moved toward or away from what
is known to work on real faces, which the synthetic validation faces cannot.
"""
import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.common import ROOT, user_path_labels

CLIPS = ("talking_d0", "talking_d12", "talking_d18", "talking_d19", "talking_d20")
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
DEV = ROOT / "tests" / "fixtures" / "hair_dev"
EVERY = 40
GROUPS = {"skin": (1,), "brows": (2, 3), "eyes": (4, 5), "nose": (6,), "mouth": (7, 8, 9)}
REFERENCE = {"skin": "rnng", "brows": "rnng", "nose": "rnng", "eyes": "landmarks", "mouth": "landmarks"}


def clip_frames(out: Path) -> list:
    """Every EVERY-th frame of the held-out clips, as PNGs in `out`."""
    paths = []
    for clip in CLIPS:
        with av.open(str(VIDEOS / f"{clip}.mp4")) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % EVERY == 0:
                    paths.append(out / f"{clip}_{i:04d}.png")
                    cv2.imwrite(str(paths[-1]), frame.to_ndarray(format="bgr24"))
    return paths


def agreement(labels_of, references: dict, images) -> dict:
    """Group F1 of agreement with each group's reference, pixels pooled over `images`."""
    scores = {}
    for group, classes in GROUPS.items():
        both = total = 0
        for image in images:
            ours, ref = labels_of(image), references[REFERENCE[group]](image)
            if ours is None or ref is None:
                continue
            a, b = np.isin(ours, classes), np.isin(ref, classes)
            both += int((a & b).sum())
            total += int(a.sum() + b.sum())
        scores[group] = 2 * both / total if total else None
    return scores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--checkpoint", type=Path)
    args = ap.parse_args()
    if not VIDEOS.is_dir():
        raise SystemExit(f"error: needs the talking-head clips in {VIDEOS} (../shared)")
    frames = clip_frames(Path(tempfile.mkdtemp(prefix="real_agreement_")))
    portraits = sorted(DEV.glob("*.jpg"))
    images = frames + portraits
    references = {tier: user_path_labels(images, tier) for tier in ("rnng", "landmarks")}
    labels_of = user_path_labels(images, args.model, checkpoint=args.checkpoint)
    name = args.model + (f" ({args.checkpoint})" if args.checkpoint else "")
    for label, subset in ((f"{len(frames)} held-out clip frames", frames), (f"{len(portraits)} dev portraits", portraits),
                          ("all", images)):
        scores = agreement(labels_of, references, subset)
        print(f"{name}, {label}: " + "  ".join(f"{g} {s:.3f}" for g, s in scores.items() if s is not None))


if __name__ == "__main__":
    main()

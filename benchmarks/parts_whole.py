"""Every class over the whole image, through the user's path: the protocol of the issues' hidden
real photos (`run_live.py --input DIR --save-labels DIR --model TIER`, per-class F1 from pixel
counts summed over the set, Helen "overall" F1 and mean F1 over the 10 foreground classes),
on the labelled faces we have: FaceSynthetics (512x512, whole-image labels; synthetic).

    python -m benchmarks.parts_whole --model combined             # FaceSynthetics validation (16)
    python -m benchmarks.parts_whole --model landmarks --set all  # all 80 (the landmark tier never trained on them)
    python -m benchmarks.parts_whole --model rnng --repo ../main  # another checkout's run_live.py (before)

Beards, glasses and face wear are not scored (as in training); ears, neck, clothing and headwear
are background. The learned tiers trained on FaceSynthetics ids 0-63, so only "val" (64-79) is
held out for them. An image without a found face counts as all background.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, add_user_path_arguments, user_path_labels
from core.classes import CLASS_NAMES
from models.data.readers.facesynthetics import image_pairs
from models.data.readers.facesynthetics import whole_truth as truth
from models.training.metrics import ConfusionMatrix

FACESYNTHETICS = ROOT.parent / "shared" / "data" / "facesynthetics"


def facesynthetics_pairs(which: str = "val") -> list:
    """[(image path, seg path)] of the set's split ("val", "train" or "all")."""
    return image_pairs(FACESYNTHETICS, which)


def score(pairs, labels_of, truth_of=truth) -> ConfusionMatrix:
    """Confusion of the labels against the truth, summed over (image, truth file) pairs; an
    image without labels counts as all background."""
    cm = ConfusionMatrix()
    for image, seg in pairs:
        gt = truth_of(seg)
        pred = labels_of(image)
        cm.update(np.zeros_like(gt) if pred is None else pred, gt)
    return cm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="combined")
    ap.add_argument("--set", default="val", choices=("val", "train", "all"))
    add_user_path_arguments(ap)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    pairs = facesynthetics_pairs(args.set)
    if not pairs:
        raise SystemExit(f"error: no FaceSynthetics images in {FACESYNTHETICS}")
    cm = score(pairs, user_path_labels([i for i, _ in pairs], args.model, args.repo.resolve(), args.checkpoint))
    rep = cm.report()
    f1 = rep["per_class_f1"]
    print(f"{args.model} ({args.checkpoint or args.repo.resolve().name}), FaceSynthetics {args.set}, "
          f"{len(pairs)} images, whole image:")
    print(" ".join(f"{n} {f1[n]:.3f}" for n in CLASS_NAMES[1:] if f1[n] is not None)
          + f" | overall {rep['overall_f1']:.3f} mean {rep['mean_f1']:.3f} pixel accuracy {rep['pixel_accuracy']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "set": args.set, **rep}, indent=1))


if __name__ == "__main__":
    main()

"""Brows, eyes, lips and inner mouth on real faces: the hand-outlined parts dev set
(tests/fixtures/parts_dev, 28 public-domain portraits), scored through the user's path as the
issues' hidden photos are (`run_live.py --input DIR --save-labels DIR --model TIER`, pixel
counts summed over the set, whole image).

    python -m benchmarks.parts_dev --model combined rnng landmarks
    python -m benchmarks.parts_dev --model rnng --repo ../before   # another checkout's run_live.py
    python -m benchmarks.parts_dev --labels out/labels              # label maps written earlier (--save-labels)

Per-class F1 of the seven outlined parts, their merged F1 ("parts": Helen's overall F1 without
the nose, which is not outlined) and their mean; below each tier, each part's precision / recall
(a part drawn too large: precision under recall). Skin, nose, hair and background are not scored
(hair: `benchmarks.hair_whole`, on the same portraits).
"""
import argparse
import json
from pathlib import Path

import cv2

from benchmarks import parts_whole
from benchmarks.common import ROOT, add_user_path_arguments, user_path_labels
from core.classes import (CLASS_NAMES, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, RIGHT_BROW,
                          RIGHT_EYE, UPPER_LIP)
from models.training.metrics import ConfusionMatrix

DEV = ROOT / "tests" / "fixtures" / "parts_dev"         # label maps (tools/make_parts_dev.py)
PORTRAITS = ROOT / "tests" / "fixtures" / "hair_dev"    # their portraits
SCORED = (LEFT_BROW, RIGHT_BROW, LEFT_EYE, RIGHT_EYE, UPPER_LIP, INNER_MOUTH, LOWER_LIP)


def dev_pairs(dev: Path = DEV, portraits: Path = PORTRAITS) -> list:
    """[(image path, label map path)] of the outlined portraits."""
    return [(portraits / f"{p.name[:-len('_parts.png')]}.jpg", p) for p in sorted(dev.glob("*_parts.png"))]


def score(pairs, labels_of) -> ConfusionMatrix:
    """Confusion over the outlined parts; a portrait without a label map counts as all background."""
    return parts_whole.score(pairs, labels_of, lambda path: cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))


def summary(cm: ConfusionMatrix) -> dict:
    per_class = {CLASS_NAMES[c]: cm.f1(c) for c in SCORED}
    pr = {CLASS_NAMES[c]: _precision_recall(*cm.tp_fp_fn([c])) for c in SCORED}
    return {"per_class_f1": per_class, "parts_f1": cm.merged_f1(SCORED), "mean_f1": cm.mean_f1(SCORED),
            "precision_recall": pr}


def _precision_recall(tp, fp, fn) -> tuple:
    return (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)


def _folder_labels(folder: Path):
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} is not a folder of label maps")
    return lambda image: cv2.imread(str(folder / f"{Path(image).stem}.png"), cv2.IMREAD_GRAYSCALE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", nargs="+", default=["combined"])
    add_user_path_arguments(ap)
    ap.add_argument("--labels", type=Path, nargs="+", default=[],
                    help="score folders of label maps written by --save-labels instead of running --model")
    ap.add_argument("--truth", type=Path, default=DEV, help="folder of *_parts.png label maps")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    pairs = dev_pairs(args.truth)
    if not pairs:
        raise SystemExit(f"error: no label maps in {args.truth} (python -m tools.make_parts_dev builds them)")
    results = {}
    print(f"parts dev set, {len(pairs)} real portraits, whole image ({args.repo.resolve().name}):")
    print("tier       " + " ".join(f"{CLASS_NAMES[c]:>11}" for c in SCORED) + "   parts    mean")
    runs = {str(d): _folder_labels(d) for d in args.labels} or {
        m: user_path_labels([i for i, _ in pairs], m, args.repo.resolve(), args.checkpoint) for m in args.model}
    for model, labels_of in runs.items():
        results[model] = summary(score(pairs, labels_of))
        r = results[model]
        print(f"{model[-10:]:10s} " + " ".join(f"{r['per_class_f1'][CLASS_NAMES[c]] or 0:11.3f}" for c in SCORED)
              + f"   {r['parts_f1']:.3f}   {r['mean_f1']:.3f}")
        print("  P / R    " + " ".join(f"{'%.2f/%.2f' % r['precision_recall'][CLASS_NAMES[c]]:>11}" for c in SCORED))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

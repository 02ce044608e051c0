"""The README's accuracy table: every tier that can run here, on the validation splits.

    python -m benchmarks.accuracy [--data data/faceparse] [--tiers landmarks rnng ...] [--json out/accuracy.json]
                                  [--person-mask] [--checkpoint PATH (one tier)] [--threads 1]

--person-mask adds a row per learned tier (and `combined`) with its hair and skin kept inside mediapipe's
person mask of the crop, as the live pipeline does (models/perception/person_mask.py).

FaceSynthetics validation (ids 64-79, full labels): per-class F1, Helen overall F1, LaPa mean F1.
LFW validation (persons never trained on, hair masks): hair F1 and IoU. ms/face: time in the
Parser call per LFW val face (batches of 8 aligned crops, the face mesh given; after the
FaceSynthetics pass, so start-up and first-call costs are not in it). Prints a
markdown table.
Synthetic faces: never to be read as a Helen or LaPa score.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from models.parsers import registry
from core.classes import CLASS_NAMES
from models.training.evaluate import evaluate_dir, hardware_string, set_threads

SHORT = {"background": "bg", "skin": "skin", "left_brow": "l-brow", "right_brow": "r-brow", "left_eye": "l-eye",
         "right_eye": "r-eye", "nose": "nose", "upper_lip": "u-lip", "inner_mouth": "mouth", "lower_lip": "l-lip",
         "hair": "hair"}


class PersonMasked:
    """A parser whose hair and skin are kept inside the person mask of each crop."""
    needs_mesh = False

    def __init__(self, parser):
        from models.perception.person_mask import PersonSegmenter
        self.parser, self.person = parser, PersonSegmenter()

    def __call__(self, crops, five, mesh=None):
        from models.perception.person_mask import keep_inside
        probs = np.array(self.parser(crops, five, mesh), np.float32)
        for p, crop in zip(probs, crops):
            keep_inside(p, self.person(crop))
        return probs


def score(tier: str, data: Path, person_mask: bool = False, checkpoint: Path | None = None) -> dict:
    parser = registry.create_parser(tier, device="cpu", checkpoint=checkpoint)
    if person_mask:
        parser = PersonMasked(parser)
    fs = evaluate_dir(parser, data, "val", sources=["facesynthetics"], progress=False)
    lfw = evaluate_dir(parser, data, "val", sources=["lfw_hair"], progress=False)
    return {"facesynthetics": fs, "lfw_hair": {"hair_f1": lfw["hair_f1"], "hair_iou": lfw["hair_iou"],
                                               "n_images": lfw["n_images"]},
            "ms_per_image": 1000 * lfw["seconds_per_image"]}   # 272 faces, warmed up by the first 16


def table(results: dict) -> str:
    names = [n for n in CLASS_NAMES if n != "background"]
    head = ["tier"] + [SHORT[n] for n in names] + ["overall", "mean", "LFW hair F1", "LFW hair IoU", "ms/face"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tier, r in results.items():
        fs, lfw = r["facesynthetics"], r["lfw_hair"]
        cells = [f"`{tier}`"] + [f"{fs['per_class_f1'][n]:.3f}" if fs["per_class_f1"][n] is not None else "-" for n in names]
        cells += [f"{fs['overall_f1']:.3f}", f"{fs['mean_f1']:.3f}", f"{lfw['hair_f1']:.3f}", f"{lfw['hair_iou']:.3f}",
                  f"{r['ms_per_image']:.1f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/faceparse"))
    ap.add_argument("--tiers", nargs="*", default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--checkpoint", type=Path, default=None, help="weights for the one tier of --tiers")
    ap.add_argument("--person-mask", action="store_true", help="also score learned tiers inside the person mask")
    ap.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads (1 on a shared machine)")
    args = ap.parse_args()
    set_threads(args.threads)
    tiers = args.tiers or registry.available_checkpoints()
    if args.checkpoint and len(tiers) != 1:
        ap.error("--checkpoint needs exactly one tier in --tiers")
    runs = [(t, t, False) for t in tiers]
    if args.person_mask:
        # the tiers the live pipeline masks: every one but the landmark tier, which masks inside its parser
        runs += [(f"{t} + person mask", t, True) for t in tiers if registry.tier(t).learned or registry.tier(t).uses]
    results = {}
    for name, tier, masked in runs:
        results[name] = score(tier, args.data, masked, args.checkpoint)
        print(f"{name}: overall {results[name]['facesynthetics']['overall_f1']:.3f} "
              f"LFW hair F1 {results[name]['lfw_hair']['hair_f1']:.3f}", flush=True)
    n_fs = next(iter(results.values()))["facesynthetics"]["n_images"]
    n_lfw = next(iter(results.values()))["lfw_hair"]["n_images"]
    print(f"\nFaceSynthetics val ({n_fs} faces) per-class F1, overall (Helen) and mean (LaPa) F1; "
          f"LFW val ({n_lfw} faces) hair. {hardware_string()}\n")
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()

"""The README's accuracy table: every tier that can run here, on the validation splits.

    python -m benchmarks.accuracy [--data data/faceparse] [--tiers landmarks rnng ...] [--json out/accuracy.json]

FaceSynthetics validation (ids 64-79, full labels): per-class F1, Helen overall F1, LaPa mean F1.
LFW validation (persons never trained on, hair masks): hair F1 and IoU. Prints a markdown table.
Synthetic faces: never to be read as a Helen or LaPa score.
"""
import argparse
import json
from pathlib import Path

from models import registry
from models.classes import CLASS_NAMES
from models.evaluate import evaluate_dir, hardware_string

SHORT = {"background": "bg", "skin": "skin", "left_brow": "l-brow", "right_brow": "r-brow", "left_eye": "l-eye",
         "right_eye": "r-eye", "nose": "nose", "upper_lip": "u-lip", "inner_mouth": "mouth", "lower_lip": "l-lip",
         "hair": "hair"}


def score(tier: str, data: Path) -> dict:
    parser = registry.create_parser(tier, device="cpu")
    fs = evaluate_dir(parser, data, "val", sources=["facesynthetics"], progress=False)
    lfw = evaluate_dir(parser, data, "val", sources=["lfw_hair"], progress=False)
    return {"facesynthetics": fs, "lfw_hair": {"hair_f1": lfw["hair_f1"], "hair_iou": lfw["hair_iou"],
                                               "n_images": lfw["n_images"]},
            "ms_per_image": 1000 * fs["seconds_per_image"]}


def table(results: dict) -> str:
    names = [n for n in CLASS_NAMES if n != "background"]
    head = ["tier"] + [SHORT[n] for n in names] + ["overall", "mean", "LFW hair F1", "LFW hair IoU"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tier, r in results.items():
        fs, lfw = r["facesynthetics"], r["lfw_hair"]
        cells = [f"`{tier}`"] + [f"{fs['per_class_f1'][n]:.3f}" if fs["per_class_f1"][n] is not None else "-" for n in names]
        cells += [f"{fs['overall_f1']:.3f}", f"{fs['mean_f1']:.3f}", f"{lfw['hair_f1']:.3f}", f"{lfw['hair_iou']:.3f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/faceparse"))
    ap.add_argument("--tiers", nargs="*", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tiers = args.tiers or registry.available_checkpoints()
    results = {}
    for tier in tiers:
        results[tier] = score(tier, args.data)
        print(f"{tier}: overall {results[tier]['facesynthetics']['overall_f1']:.3f} "
              f"LFW hair F1 {results[tier]['lfw_hair']['hair_f1']:.3f}", flush=True)
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

"""Fit and write a learned tier's prior correction (models/parsers/class_prior.py).

    python -m tools.fit_class_prior --model student bspnet        # measure: w, and tau on FaceSynthetics val
    python -m tools.fit_class_prior --model student --write       # + store the factors in checkpoints/student.pt
    python -m tools.fit_class_prior --model landmarks             # the landmark tier's eye factor (FS train)

For a learned tier: its training class weights w (the recipe's rule: the Student's and the
teacher's fixed sc weights; RNN-G's median-frequency weights and the seed models' inverse
square-root frequencies, from the label frequencies of data/faceparse's training split mixed as
the recipes' batches are, 8 FaceSynthetics faces to 12 real ones), then the factors
(w_skin / w_c) ** tau for the small parts (1 for background, skin and hair) for tau in 0, 0.25,
..., 1, scored over the whole 512x512 image of FaceSynthetics' 16 validation faces through the
photo pipeline (as run_live.py parses a photo, without the edge snap and part colours
that follow the correction there); the tau with the best mean F1 is kept. The real
parts dev set (benchmarks.parts_dev) is left for checking the result: it is not read here.
`--write` re-saves the checkpoint with config["class_prior"] (weights unchanged); RNN-G's ONNX
files are tied to its checkpoint, so re-export them after (python -m tools.export_onnx rnng).
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from core.classes import BACKGROUND, FLIP_PERMUTATION, HAIR, LEFT_EYE, NUM_CLASSES, RIGHT_EYE, SKIN
from core.types import Frame
from models.training.metrics import ConfusionMatrix

ROOT = Path(__file__).resolve().parents[1]
FACESYNTHETICS = ROOT.parent / "shared" / "data" / "facesynthetics"
TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
EYE_FACTORS = (1.0, 0.8, 0.7, 0.6, 0.5, 0.4)
KEEP = (BACKGROUND, SKIN, HAIR)   # factor 1: their balance is the hair fusion's


def label_frequencies(data: Path) -> np.ndarray:
    """Per-class pixel shares of the training labels, FaceSynthetics and real faces mixed 8:12."""
    counts = {True: np.zeros(256), False: np.zeros(256)}
    for line in (data / "index.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "train":
            label = cv2.imread(str(data / "labels" / f"{row['id']}.png"), cv2.IMREAD_GRAYSCALE)
            counts[row["source"] == "facesynthetics"] += np.bincount(label.ravel(), minlength=256)
    fs, real = (counts[k][:NUM_CLASSES] / counts[k][:NUM_CLASSES].sum() for k in (True, False))
    return 0.4 * fs + 0.6 * real


def training_weights(tier: str, config: dict, data: Path) -> np.ndarray:
    """The class weights the tier's recipe trained with (as the recipe computes them)."""
    import torch
    if tier in ("student", "teacher"):
        from models.training.distill import class_weight_vector
        return class_weight_vector(float(config["small_class_weight"])).numpy()
    freq = torch.from_numpy(label_frequencies(data))
    if tier == "rnng":
        from models.training.recipes.rnng import median_frequency_weights
        return median_frequency_weights(freq, config["class_weight_max"], config["class_weight_power"],
                                        config.get("class_weight_min", 0.0)).numpy()
    from models.training.recipes.rednet import weights_from_counts
    return weights_from_counts(freq, config.get("class_weight_power", 0.5)).numpy()


def factors_for(weights: np.ndarray, tau: float) -> np.ndarray:
    # left and right alike (training mirrors the faces; their counts differ by noise), so that a
    # face and its mirror image get mirrored answers
    weights = (weights + weights[FLIP_PERMUTATION]) / 2
    f = (weights[SKIN] / weights) ** tau
    f[list(KEEP)] = 1.0
    return f.astype(np.float32)


def whole_image_probs(tier: str, split: str) -> list:
    """[(probs of the largest face over its box, box, truth)] of FaceSynthetics `split`, parsed as
    run_live.py parses a photo, without any prior correction."""
    from models.data.readers.facesynthetics import image_pairs, whole_truth
    from stream import assemble
    pipe = assemble.build_pipeline(model=tier, static_images=True, effects=None, log=lambda *a: None)
    pipe.parser.prior = None
    pipe.refine_photos = False   # tau is chosen on the corrected parse itself, as in session 13 (photos are refined after it)
    out = []
    for image, seg in image_pairs(FACESYNTHETICS, split):
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        result = pipe.parse(pipe.track(Frame(rgb, 0, 0.0)))
        gt = whole_truth(seg)
        if not result.faces:
            out.append((None, None, gt))
            continue
        fp = max(result.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        out.append((fp.probs.copy(), fp.box, gt))
    pipe.close()
    return out


def score(items, factors) -> ConfusionMatrix:
    from models.parsers.class_prior import reweigh
    cm = ConfusionMatrix()
    for probs, box, gt in items:
        label = np.zeros_like(gt)
        if probs is not None:
            x0, y0, x1, y1 = box
            label[y0:y1, x0:x1] = reweigh(probs[None].copy(), factors)[0].argmax(0)
        cm.update(label, gt)
    return cm


def write(path: Path, factors: np.ndarray, note: str):
    from models.parsers import checkpoint as ckpt
    import torch
    blob = ckpt.read(path)
    blob["config"]["class_prior"] = [round(float(f), 5) for f in factors]
    blob.setdefault("card", {})["class_prior"] = note
    torch.save(blob, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", nargs="+", required=True)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "faceparse")
    ap.add_argument("--write", action="store_true", help="store the chosen factors in the checkpoint")
    args = ap.parse_args()
    from models.parsers import checkpoint as ckpt
    from models.parsers.registry import tier as tier_of
    for name in args.model:
        if name == "landmarks":   # no training weights: its eye factor, on the 64 training faces
            items = whole_image_probs(name, "train")
            for k in EYE_FACTORS:
                f = np.ones(NUM_CLASSES, np.float32)
                f[[LEFT_EYE, RIGHT_EYE]] = k
                cm = score(items, f)
                print(f"landmarks eyes x{k}: eyes {cm.f1(LEFT_EYE):.3f} {cm.f1(RIGHT_EYE):.3f} "
                      f"overall {cm.overall_f1():.3f} mean {cm.mean_f1():.3f}")
            continue
        path = tier_of(name).checkpoint
        config = ckpt.load(path, name)["config"]
        weights = training_weights(name, config, args.data)
        print(f"{name}: training class weights " + " ".join(f"{w:.3g}" for w in weights))
        items = whole_image_probs(name, "val")
        best = None
        for tau in TAUS:
            cm = score(items, factors_for(weights, tau))
            print(f"  tau {tau:.2f}: overall {cm.overall_f1():.3f} mean {cm.mean_f1():.3f} "
                  f"brows {cm.f1(2):.3f} {cm.f1(3):.3f} eyes {cm.f1(4):.3f} {cm.f1(5):.3f}")
            if best is None or cm.mean_f1() > best[1] + 1e-4:
                best = (tau, cm.mean_f1(), cm.overall_f1())
        tau = best[0]
        factors = factors_for(weights, tau)
        print(f"  chosen tau {tau}: factors " + " ".join(f"{f:.3g}" for f in factors))
        if args.write:
            write(path, factors, f"prior correction (tools/fit_class_prior.py): small parts' probabilities x "
                  f"(w_skin/w_c)**{tau} of the training class weights w, tau chosen on FaceSynthetics val by "
                  f"mean F1 (whole image {best[2]:.3f} / {best[1]:.3f} overall / mean)")
            print(f"  wrote {path}")


if __name__ == "__main__":
    main()

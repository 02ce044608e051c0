"""The fused teacher signal (models/data/readers/fused.py) measured against true labels, beside
its sources, and RNN-G checkpoints measured against the signal on held-out real faces.

    python -m benchmarks.signal                                   # the signal vs truth
    python -m benchmarks.signal --agreement checkpoints/rnng.pt runs/x/best.pt   # + checkpoints vs signal

Every face is aligned as the dataset builder aligns it (the pipeline's tracker, 256 crop) and
scored in the crop:
- "fs_val": FaceSynthetics ids 64-79 (true labels, all classes): per-class F1, Helen overall,
  LaPa mean, for "landmarks" (the landmark tier alone), "rnng" (RNN-G as the live pipeline runs
  it on a photo: person mask of the frame, whole-head hair fused in) and "fused"; pixels the
  fused label ignores are scored for every source as they are (the "fused" row leaves them out,
  "fused_ignored_acc" says how often the fused label would have been right on them).
- "lfw_val": the 272 LFW images of the validation persons (hair masks): hair F1.
- "dev": tests/fixtures/hair_dev (28 portraits, hand-checked hair; 128 unscored): hair F1.
--agreement: per checkpoint, RNN-G (as in the pipeline) against the fused signal of the
shipped models on the held-out real faces (LFW val, the dev set, every 30th frame of the
talking-head clips kept out of training): per-class F1, overall, mean. The signal's skin,
brows and nose are the shipped RNN-G's own, so those classes favour it; eyes and lips come
from the landmark tier, hair from the hair network.
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from core import align
from core.classes import CLASS_NAMES, HAIR, IGNORE
from models.data.readers import read_rgb
from models.data.readers.autolabel import AutoLabeler
from models.data.readers.facesynthetics import FaceSyntheticsReader
from models.data.readers.fused import FusedLabeler
from models.data.readers.lfw_hair import person_of, split_of_person
from models.training.evaluate import set_threads
from models.training.metrics import ConfusionMatrix

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEV = ROOT / "tests" / "fixtures" / "hair_dev"
UNSEEN_CLIPS = ("talking_d0", "talking_d12", "talking_d18", "talking_d19", "talking_d20")


def summary(cm: ConfusionMatrix) -> dict:
    return {"per_class_f1": {n: cm.f1(c) for c, n in enumerate(CLASS_NAMES)},
            "overall_f1": cm.overall_f1(), "mean_f1": cm.mean_f1(), "pixels": cm.n_pixels}


def hair_counts(pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[tp, fp, fn] of hair; mask 255 hair, 0 not hair, else unscored."""
    truth, scored = mask > 191, (mask < 64) | (mask > 191)
    hair = pred == HAIR
    return np.array([(hair & truth & scored).sum(), (hair & ~truth & scored).sum(), (~hair & truth & scored).sum()])


def f1(counts) -> float:
    tp, fp, fn = counts
    return float(2 * tp / max(2 * tp + fp + fn, 1))


def crop_of(labeler: AutoLabeler, image, face):
    crop, five, mesh = labeler.crop_face(image, face)
    return face.matrix, crop, five, mesh


def facesynthetics_val(fused: FusedLabeler) -> dict:
    reader = FaceSyntheticsReader()
    cms = {k: ConfusionMatrix() for k in ("landmarks", "rnng", "fused", "fused_all")}
    ignored_right = ignored = faces = no_mesh = 0
    for raw in reader.read(DATA / "facesynthetics"):
        if raw.split != "val":
            continue
        if raw.mesh is None:   # the landmark tier needs the mesh: such faces are not labelled at all
            no_mesh += 1
            continue
        m = align.alignment_matrix(raw.five)
        crop = align.warp_crop(raw.image, m)
        truth = cv2.warpAffine(raw.label, m, (align.CROP_SIZE,) * 2, flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        s = fused.sources(raw.image, m, crop, align.transform_points(raw.five, m), align.transform_points(raw.mesh, m))
        cms["landmarks"].update(s["landmarks"], truth)
        cms["rnng"].update(s["rnng"], truth)
        off = s["fused"] == IGNORE
        cms["fused"].update(np.where(off, 0, s["fused"]), np.where(off, IGNORE, truth))
        unfiltered = s["fused"].copy()
        # what the fused label would be without the ignore: the landmark tier's class there
        unfiltered[off] = s["landmarks"][off]
        cms["fused_all"].update(unfiltered, truth)
        scored = off & (truth != IGNORE)
        ignored += int(scored.sum())
        ignored_right += int((unfiltered[scored] == truth[scored]).sum())
        faces += 1
    reader.close()
    out = {k: summary(cm) for k, cm in cms.items()}
    out.update(faces=faces, no_mesh=no_mesh, ignored_pixels=ignored,
               fused_ignored_acc=ignored_right / max(ignored, 1))
    return out


def real_faces(which=("lfw_val", "dev")):
    """(set name, image, hair mask or None) of held-out real faces."""
    if "lfw_val" in which:
        for p in sorted((DATA / "lfw_hair" / "images").glob("*.jpg")):
            if split_of_person(person_of(p.stem)) == "val":
                yield "lfw_val", read_rgb(p), cv2.imread(str(DATA / "lfw_hair" / "hair_masks" / f"{p.stem}.png"), 0)
    if "dev" in which:
        for p in sorted(DEV.glob("*.jpg")):
            yield "dev", read_rgb(p), cv2.imread(str(p.with_name(f"{p.stem}_hair.png")), 0)
    if "clips" in which:
        import av
        for clip in UNSEEN_CLIPS:
            path = DATA / "videos" / f"{clip}.mp4"
            if not path.is_file():
                continue
            with av.open(str(path)) as c:
                for i, frame in enumerate(c.decode(video=0)):
                    if i % 30 == 0:
                        yield "clips", frame.to_ndarray(format="rgb24"), None


def hair_sets(fused: FusedLabeler, labeler: AutoLabeler) -> dict:
    counts, faces = {}, {}
    for name, image, mask in real_faces():
        face = labeler.best_face(image, count_drops=False)
        faces.setdefault(name, [0, 0])[face is None] += 1
        if face is None:   # scored with no hair predicted in the crop the default alignment would cut
            continue
        m, crop, five, mesh = crop_of(labeler, image, face)
        s = fused.sources(image, m, crop, five, mesh)
        truth = cv2.warpAffine(mask, m, (align.CROP_SIZE,) * 2, flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=128)
        for k in ("landmarks", "rnng", "fused"):
            counts.setdefault(name, {}).setdefault(k, np.zeros(3, np.int64))
            counts[name][k] += hair_counts(s[k], truth)
    return {name: {**{k: f1(c) for k, c in by.items()}, "faces": faces[name][0], "no_face": faces[name][1]}
            for name, by in counts.items()}


def agreement(checkpoints, labeler: AutoLabeler) -> dict:
    """Per checkpoint: RNN-G as in the pipeline vs the shipped models' fused signal."""
    signal = FusedLabeler()
    others = [FusedLabeler(rnng_checkpoint=c) for c in checkpoints]
    cms = {str(c): ConfusionMatrix() for c in checkpoints}
    n = 0
    for _, image, _ in real_faces(("lfw_val", "dev", "clips")):
        face = labeler.best_face(image, count_drops=False)
        if face is None:
            continue
        m, crop, five, mesh = crop_of(labeler, image, face)
        truth = signal.label_face(image, m, crop, five, mesh)
        for c, other in zip(checkpoints, others):
            cms[str(c)].update(other.rnng_probs(image, m, crop, five, mesh).argmax(0), truth)
        n += 1
    return {"faces": n, **{c: summary(cm) for c, cm in cms.items()}}


def print_rows(rows: dict):
    names = [n for n in CLASS_NAMES if n != "background"]
    print("| source | " + " | ".join(names) + " | overall | mean |")
    print("|---" * (len(names) + 3) + "|")
    for k, r in rows.items():
        cells = [f"{r['per_class_f1'][n]:.3f}" if r["per_class_f1"][n] is not None else "-" for n in names]
        print(f"| {k} | " + " | ".join(cells) + f" | {r['overall_f1']:.3f} | {r['mean_f1']:.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agreement", nargs="*", type=Path, default=None, metavar="CHECKPOINT",
                    help="RNN-G checkpoints to score against the signal on held-out real faces")
    ap.add_argument("--skip-truth", action="store_true", help="only --agreement")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    set_threads(1)
    labeler = AutoLabeler()
    result = {}
    if not args.skip_truth:
        fused = FusedLabeler()
        result["fs_val"] = fs = facesynthetics_val(fused)
        print(f"FaceSynthetics val: {fs['faces']} faces ({fs['no_mesh']} without a mesh left out); "
              f"ignored {fs['ignored_pixels']} labelled pixels, fused label right on {fs['fused_ignored_acc']:.1%} of them")
        print_rows({k: fs[k] for k in ("landmarks", "rnng", "fused", "fused_all")})
        result["hair"] = hair_sets(fused, labeler)
        for name, r in result["hair"].items():
            print(f"{name}: {r['faces']} faces ({r['no_face']} not found): hair F1 "
                  + " ".join(f"{k} {r[k]:.3f}" for k in ("landmarks", "rnng", "fused")))
    if args.agreement:
        result["agreement"] = ag = agreement(args.agreement, labeler)
        print(f"\nagreement with the fused signal, {ag['faces']} held-out real faces:")
        print_rows({c: ag[str(c)] for c in args.agreement})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Whole-image hair: F1 of the hair label over the whole image, and hair false positives on
LFW's empty hair masks, through the user's path (`run_live.py --input DIR --save-labels DIR`).

    python -m benchmarks.hair_whole --model rnng                 # LFW validation + empty masks + dev set
    python -m benchmarks.hair_whole --model rnng --repo ../main  # another checkout's run_live.py (before)
    python -m benchmarks.hair_whole --model rnng --checkpoint runs/x/best.pt   # other weights
    python -m benchmarks.hair_whole --sweep                      # head-crop sizes and fusion weights, in process
    python -m benchmarks.hair_whole --sweep --model combined --config '{"down": 1.0, "rule": "learned"}'

Sets: "lfw_val" = the 272 LFW images of the project's validation persons
(models.data.readers.lfw_hair.split_of_person); "lfw_empty" = the 75 LFW images whose hair
mask is empty (bald, shaved or hidden hair): false positives as a share of the image, also apart
for its training and validation people (lfw_empty_train, lfw_empty_val); "dev" =
tests/fixtures/hair_dev (public-domain portraits with hand-checked hair masks), and its bald heads
(dev_bald, the empty masks); "dev_x1.7" = the same portraits and masks enlarged 1.7x (faces ~110
pixels between the eyes, as in the issues' hidden 512-pixel portraits); "fs_val" = FaceSynthetics'
16 validation faces (512x512, synthetic; hair as labelled, beards and glasses unscored). Whole-dataset
pixel counts over the whole image (F1 = 2TP / (2TP + FP + FN)); an image without a found face
counts with no hair predicted.
"""
import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import add_user_path_arguments, user_path_labels
from core.classes import HAIR
from models.data.readers.facesynthetics import image_pairs, whole_truth
from models.data.readers.lfw_hair import person_of, split_of_person

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw_hair"
DEV = ROOT / "tests" / "fixtures" / "hair_dev"
FACESYNTHETICS = ROOT.parent / "shared" / "data" / "facesynthetics"
ENLARGE = 1.7


def image_sets(work: Path, names=None) -> dict:
    """{set name: [(image path, mask path)]} of the sets named (None: all); sets whose data is
    absent are left out. The derived sets (enlarged portraits, FaceSynthetics' hair masks) are
    written under `work`, only when asked for."""
    wanted = lambda name: names is None or name in names
    sets = {}
    if LFW.is_dir() and (wanted("lfw_val") or wanted("lfw_empty")):
        pairs = [(p, LFW / "hair_masks" / f"{p.stem}.png") for p in sorted((LFW / "images").glob("*.jpg"))]
        sets["lfw_val"] = [(i, m) for i, m in pairs if split_of_person(person_of(i.stem)) == "val"]
        if wanted("lfw_empty"):
            sets["lfw_empty"] = [(i, m) for i, m in pairs if not (cv2.imread(str(m), cv2.IMREAD_GRAYSCALE) > 127).any()]
    if DEV.is_dir():
        sets["dev"] = [(p, p.with_name(f"{p.stem}_hair.png")) for p in sorted(DEV.glob("*.jpg"))]
        if wanted("dev_x1.7"):
            sets["dev_x1.7"] = [enlarged(i, m, work / "dev_x1.7") for i, m in sets["dev"]]
    if FACESYNTHETICS.is_dir() and wanted("fs_val"):
        sets["fs_val"] = [hair_mask_of(i, seg, work / "fs_val") for i, seg in image_pairs(FACESYNTHETICS, "val")]
    return {name: pairs for name, pairs in sets.items() if wanted(name)}


def enlarged(image: Path, mask: Path, folder: Path) -> tuple:
    """The portrait and its mask ENLARGE times larger (bicubic, nearest), written into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    im, m = cv2.imread(str(image)), cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    size = (round(im.shape[1] * ENLARGE), round(im.shape[0] * ENLARGE))
    pair = folder / image.name, folder / mask.name
    cv2.imwrite(str(pair[0]), cv2.resize(im, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(pair[1]), cv2.resize(m, size, interpolation=cv2.INTER_NEAREST))
    return pair


def hair_mask_of(image: Path, seg: Path, folder: Path) -> tuple:
    """(image, a hair mask in the dev set's coding: 255 hair, 0 not, 128 unscored) of a FaceSynthetics face."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = whole_truth(seg)
    mask = np.where(truth == HAIR, 255, np.where(truth == 255, 128, 0)).astype(np.uint8)
    path = folder / f"{image.stem}_hair.png"
    cv2.imwrite(str(path), mask)
    return image, path


def score(pairs, hair_of) -> dict:
    """Pixel counts over the set; hair_of(image path) -> bool (H, W) hair prediction or None."""
    tp = fp = fn = pixels = 0
    for image, mask in pairs:
        m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
        truth, scored = m > 191, (m < 64) | (m > 191)   # 128: unscored (the dev set's beards)
        pred = hair_of(image)
        pred = np.zeros_like(truth) if pred is None else pred
        tp += int((pred & truth & scored).sum())
        fp += int((pred & ~truth & scored).sum())
        fn += int((~pred & truth & scored).sum())
        pixels += int(scored.sum())
    return {"images": len(pairs), "f1": 2 * tp / max(2 * tp + fp + fn, 1), "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1), "fp_share": fp / max(pixels, 1)}


def run_user_path(pairs, model: str, repo: Path = ROOT, checkpoint: Path | None = None):
    """Hair of every image by `run_live.py --input DIR --save-labels DIR` (one run per set)."""
    labels_of = user_path_labels([image for image, _ in pairs], model, repo, checkpoint)

    def hair_of(image):
        label = labels_of(image)
        return None if label is None else label == HAIR
    return hair_of


def sweep(sets, model: str, only=None, extra=None):
    """Head-crop geometry and the "mix" rule's parser weight, in process (one tracking per image).
    A configuration with "rule": "learned" keeps the tier's learned fusion as shipped (fitted and
    replayed by tools.fit_hair_fusion) and changes only the head crop."""
    from core.types import Frame
    from models.perception import hair as whole_hair
    from stream import assemble
    pipe = assemble.build_pipeline(model=model, static_images=True, effects=None, log=lambda *a: None)
    if pipe.hair.net is None:   # loaded at the first frame that needs it; the configurations share it
        pipe.hair.net = pipe.hair.load()
    net = pipe.hair.net
    # what README's Hair section reports: crop geometry (the hair network alone beside the
    # parser's face parts), the parser's weight in the mix, the "product" rule, the parse alone
    # (off), then the scalp and fringe rules
    plain = dict(scalp=False, fringe=0.0)
    configs = [dict(size=s, side=k, down=d, parser_weight=0.0, **plain) for s, k, d in
               [(256, 5, 1.0), (320, 6, 1.5), (384, 7, 1.5), (384, 6, 1.5), (448, 8, 2.0)]]
    base = dict(size=384, side=7, down=1.5)
    configs += [dict(base, parser_weight=w, **plain) for w in (0.25, 0.5, 0.75, 1.0)]
    configs += [dict(base, rule="product", parser_weight=0.5, **plain), dict(off=True)]
    configs += [dict(base, parser_weight=w, scalp=True, fringe=f) for w in (0.25, 0.4, 0.5) for f in (0.0, 0.9)]
    if only is not None or extra:
        configs = [configs[i] for i in only or []] + list(extra or [])
    tracked = {name: [(i, pipe.track(Frame(cv2.cvtColor(cv2.imread(str(i)), cv2.COLOR_BGR2RGB), 0, 0.0)))
                      for i, _ in pairs] for name, pairs in sets.items()}
    for cfg in configs:
        weight = cfg.pop("parser_weight", pipe.hair.parser_weight)
        rule = cfg.pop("rule", "mix")
        learned = rule == "learned"
        fringe = cfg.pop("fringe", whole_hair.FRINGE)
        whole_hair.SCALP = cfg.pop("scalp", True)
        off = cfg.pop("off", False)
        stage = None if off else whole_hair.HairStage(net, tier=model, **cfg)
        fuse = whole_hair.fuse
        if not learned:   # the pipeline's call, with this configuration's rule and weight
            def mixed(p, h, _w=None, w=weight, r=rule, f=fringe, crop=None, **_):
                return fuse(p, h, w, r, f, crop)
            whole_hair.fuse = mixed
        row = {}
        for name, items in tracked.items():
            labels = {}
            for path, r in items:
                # the mix-rule rows were measured without the person mask (README, Hair); the learned
                # rule is run as shipped, with it
                r.hair = stage(r.frame.image, r.faces, person=r.person_mask if learned else None) if stage else {}
                out = pipe.parse(type(r)(r.frame, list(r.faces), r.person_mask, r.hair))
                labels[path] = assemble.label_map(out) == HAIR
            row[name] = score(sets[name], labels.get)
        whole_hair.fuse = fuse
        print(json.dumps({**cfg, "parser_weight": weight, "rule": rule, "fringe": fringe, "scalp": whole_hair.SCALP, "off": off}),
              " ".join(f"{n}: F1 {s['f1']:.3f} fp {100 * s['fp_share']:.2f}%" for n, s in row.items()), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="rnng")
    add_user_path_arguments(ap)
    ap.add_argument("--sets", nargs="*", default=None)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--configs", type=int, nargs="*", help="with --sweep: which configurations (indices)")
    ap.add_argument("--config", type=json.loads, action="append", help="with --sweep: a configuration as JSON")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        sets = image_sets(Path(work), args.sets or None)
        if args.sweep:
            return sweep(sets, args.model, args.configs, args.config)
        rows = measure(sets, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def measure(sets: dict, args) -> dict:
    """Every set through the user's path; the rows printed as they come."""
    rows = {}
    for name, pairs in sets.items():
        hair_of = run_user_path(pairs, args.model, args.repo.resolve(), args.checkpoint)
        rows[name] = score(pairs, hair_of)
        if name == "lfw_empty":   # the learned fusion is fitted on training people: both halves apart
            for split in ("train", "val"):
                part = [(i, m) for i, m in pairs if split_of_person(person_of(i.stem)) == split]
                rows[f"{name}_{split}"] = score(part, hair_of)
        if name.startswith("dev"):   # the bald and shaved heads (empty masks): hair as a share of the image
            bald = [(i, m) for i, m in pairs if not (cv2.imread(str(m), cv2.IMREAD_GRAYSCALE) > 191).any()]
            rows[f"{name}_bald"] = score(bald, hair_of)
        for row in [k for k in rows if k == name or k.startswith(name + "_")]:
            s = rows[row]
            print(f"{args.model} {args.checkpoint or args.repo.resolve().name} {row:<15} {s['images']:4d} images: "
                  f"hair F1 {s['f1']:.3f} (P {s['precision']:.3f} R {s['recall']:.3f}), "
                  f"false hair {100 * s['fp_share']:.2f}% of pixels", flush=True)
    return rows


if __name__ == "__main__":
    main()

"""Fit the whole-head hair fusion (models/perception/hair.py) on LFW's training people.

    python -m tools.fit_hair_fusion --check                    # every tier: cache, fit, write checkpoints/hair_fusion.json
    python -m tools.fit_hair_fusion --model rnng --errors       # where the hair errors are (train people)

Step 1 (cached under data/hair_fusion/<model>/, reused): every LFW image once through the
pipeline's tracking, person mask, hair network and parser, keeping what the fusion starts from
(the parser's raw probabilities, the head crop's hair, the faces). Step 2: the fusion's inputs
over the aligned crop at its resolution (models.perception.hair_fusion.features) against the LFW
mask warped into the crop, its small MLP fitted (torch, seeded) on the training people only
(split_of_person), the weights written beside the checkpoints. Validation people are never read
by the fit.
Step 3 (`--check`): the whole pipeline's labels from the cache, old rule vs new, on both splits.
"""
import argparse
import json
import pickle
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.hair_whole import LFW, score
from core import align
from core.classes import BACKGROUND, HAIR, SKIN
from core.types import Frame
from models.data.readers.lfw_hair import person_of, split_of_person

ROOT = Path(__file__).resolve().parents[1]


def lfw_pairs():
    """[(image path, mask path, split)] of every LFW image."""
    return [(p, LFW / "hair_masks" / f"{p.stem}.png", split_of_person(person_of(p.stem)))
            for p in sorted((LFW / "images").glob("*.jpg"))]


def build_cache(model: str, folder: Path, log=print):
    """One pickle per image: faces, person mask, head hair and the parser's raw probabilities."""
    from stream import assemble
    folder.mkdir(parents=True, exist_ok=True)
    pipe = assemble.build_pipeline(model=model, static_images=True, effects=None, log=lambda *a: None)
    grabbed = {}
    parse_crops = pipe._parse_crops

    def keep_raw(*args, **kw):
        probs = parse_crops(*args, **kw)
        grabbed["probs"] = probs.copy()   # the pipeline fuses into these in place
        return probs
    pipe._parse_crops = keep_raw
    pairs = lfw_pairs()
    t0 = time.time()
    for n, (image, _, _) in enumerate(pairs):
        out = folder / f"{image.stem}.pkl"
        if out.exists():
            continue
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        r = pipe.track(Frame(rgb, 0, 0.0))
        item = {"faces": list(r.faces), "person_mask": r.person_mask, "hair": dict(r.hair), "probs": None}
        grabbed.clear()
        pipe.parse(r)
        if "probs" in grabbed:
            item["probs"] = grabbed["probs"].astype(np.float16)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.rename(out)
        if n % 100 == 0:
            log(f"cache {n}/{len(pairs)} {time.time() - t0:.0f} s")
    return pipe


def replay(pipe, image: Path, folder: Path):
    """The pipeline's FrameResult for a cached image, parsed from the cached probabilities (the
    fusion and everything after it run for real)."""
    from core.types import FrameResult
    item = pickle.loads((folder / f"{image.stem}.pkl").read_bytes())
    rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    r = FrameResult(Frame(rgb, 0, 0.0), item["faces"], person_mask=item["person_mask"], hair=item["hair"])
    probs = item["probs"]
    pipe._parse_crops = lambda *a, **k: probs.astype(np.float32)
    return pipe.parse(r), item


def centre_face(faces, shape):
    """The face nearest the image centre (the person LFW labels)."""
    h, w = shape
    return min(faces, key=lambda f: np.hypot(*(f.five[:2].mean(0) - (w / 2, h / 2))))


REGIONS = ("crown", "sides", "below chin")


def region_map(face, shape):
    """Per frame pixel: 0 crown (above the brows), 1 sides (brows to mouth, beside the face),
    2 below the chin, in the face's own frame (eye distances from the eye centre)."""
    h, w = shape
    eyes = face.five[:2].astype(np.float64)
    centre, d = eyes.mean(0), max(np.linalg.norm(eyes[1] - eyes[0]), 1.0)
    ux = (eyes[1] - eyes[0]) / d
    uy = np.array([-ux[1], ux[0]])
    ys, xs = np.mgrid[0:h, 0:w]
    v = (ys - centre[1]) * uy[1] + (xs - centre[0]) * uy[0]   # eye distances below the eyes (x d)
    return np.where(v < -0.35 * d, 0, np.where(v < 1.8 * d, 1, 2))


def errors(model: str, folder: Path, split: str = "train", worst: int = 12, out: Path | None = None):
    """Hair errors of today's rule on one split, by region and inside/outside the aligned crop."""
    from stream import assemble
    pipe = assemble.build_pipeline(model=model, static_images=True, effects=None, log=lambda *a: None)
    counts, per_image = {}, []
    for image, mask, s in lfw_pairs():
        if s != split:
            continue
        r, item = replay(pipe, image, folder)
        truth = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
        pred = assemble.label_map(r) == HAIR
        if not item["faces"]:
            per_image.append((int((truth).sum()), image.stem, "no face"))
            counts[("no face", "", "fn")] = counts.get(("no face", "", "fn"), 0) + int(truth.sum())
            continue
        face = centre_face(item["faces"], truth.shape)
        cover = align.plane_to_box(np.ones((align.CROP_SIZE,) * 2, np.float32), face.matrix,
                                   (0, 0, truth.shape[1], truth.shape[0])) > 0.5
        reg = region_map(face, truth.shape)
        for kind, m in (("fp", pred & ~truth), ("fn", ~pred & truth), ("tp", pred & truth)):
            for inside in (True, False):
                for k, name in enumerate(REGIONS):
                    key = ("in crop" if inside else "outside", name, kind)
                    counts[key] = counts.get(key, 0) + int((m & (cover == inside) & (reg == k)).sum())
        empty = not truth.any()
        per_image.append((int((pred ^ truth).sum()), image.stem, "empty mask" if empty else ""))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            vis = r.frame.image.copy()
            vis[pred & ~truth] = (0.4 * vis[pred & ~truth] + (153, 0, 0)).astype(np.uint8)     # FP red
            vis[~pred & truth] = (0.4 * vis[~pred & truth] + (0, 0, 153)).astype(np.uint8)     # FN blue
            vis[pred & truth] = (0.6 * vis[pred & truth] + (0, 100, 0)).astype(np.uint8)      # TP green
            cv2.imwrite(str(out / f"{(pred ^ truth).sum():06d}_{image.stem}.png"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    tp = sum(v for k, v in counts.items() if k[2] == "tp")
    fp = sum(v for k, v in counts.items() if k[2] == "fp")
    fn = sum(v for k, v in counts.items() if k[2] == "fn")
    print(f"{split}: F1 {2 * tp / (2 * tp + fp + fn):.3f}  tp {tp} fp {fp} fn {fn}")
    for key in sorted(counts):
        if key[2] != "tp":
            share = 100 * counts[key] / (fp + fn)
            print(f"  {key[2]} {key[0]:>8} {key[1]:<11} {counts[key]:8d}  ({share:.1f}% of errors)")
    for n, stem, note in sorted(per_image, reverse=True)[:worst]:
        print(f"  worst: {stem} {n} px wrong {note}")


def samples(folder: Path, split: str = "train"):
    """(features (N, F) float32, truth (N,) bool) from the centre face's aligned crop of every
    image of a split, computed as the pipeline does (models.perception.hair.fuse_learned), at
    the fusion's resolution: every pixel inside the image whose parser mass is mostly hair,
    skin or background (where the rule decides)."""
    from models.perception import hair as whole_hair
    from models.perception.hair_fusion import RES, features
    from models.perception.person_mask import keep_inside
    xs, ys = [], []
    small = lambda a: cv2.resize(a.astype(np.uint8), (RES, RES), interpolation=cv2.INTER_NEAREST) > 0
    for image, mask, s in lfw_pairs():
        if s != split:
            continue
        item = pickle.loads((folder / f"{image.stem}.pkl").read_bytes())
        if not item["faces"]:
            continue
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        face = centre_face(item["faces"], rgb.shape[:2])
        if face.id not in item["hair"]:
            continue
        probs = item["probs"][[f.id for f in item["faces"]].index(face.id)].astype(np.float32)
        person = None
        if item["person_mask"] is not None:
            person = align.warp_crop(item["person_mask"], face.matrix)
            keep_inside(probs, person)
        crop = align.warp_crop(rgb, face.matrix)
        hair = whole_hair.hair_in_crop(item["hair"][face.id], face.matrix, probs.shape[-1])
        mass = probs[BACKGROUND] + probs[HAIR] + probs[SKIN]
        inv = 1 / np.maximum(mass, 1e-6)
        feats = features(hair, probs[HAIR] * inv, probs[SKIN] * inv, whole_hair.skin_coloured(crop, probs[SKIN]), person)
        truth = align.warp_crop((cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8), face.matrix,
                                interpolation=cv2.INTER_NEAREST) > 0
        inside = align.warp_crop(np.ones(rgb.shape[:2], np.uint8), face.matrix, interpolation=cv2.INTER_NEAREST) > 0
        keep = small(inside & (mass > 0.5))
        xs.append(feats[:, keep].T)
        ys.append(small(truth)[keep])
    return np.concatenate(xs), np.concatenate(ys)


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: int = 24, epochs: int = 3, seed: int = 0,
              min_steps: int = 300) -> dict:
    """The fusion's MLP (inputs -> hidden -> hidden -> 1, ReLU) fitted by cross-entropy (Adam,
    one-cycle schedule, batches of 8192 pixels): its weights and input normalisation as lists.
    `epochs` passes over the pixels, more when that is under `min_steps` batches (a few images)."""
    import torch
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y.astype(np.float32))
    mu = xt.mean(0)
    sd = xt.std(0)
    sd = torch.where(sd > 1e-6, sd, torch.ones_like(sd))   # a constant input (no person mask) stays 0
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    batch = 8192
    epochs = max(epochs, -(-min_steps // -(-len(yt) // batch)))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * -(-len(yt) // batch))
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=order)
        for i in range(0, len(yt), batch):
            b = perm[i:i + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net((xt[b] - mu) / sd)[:, 0], yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    lists = lambda t: np.round(t.detach().numpy().astype(np.float64), 6).tolist()
    return {"mu": lists(mu), "sd": lists(sd), "w1": lists(net[0].weight), "b1": lists(net[0].bias),
            "w2": lists(net[2].weight), "b2": lists(net[2].bias), "w3": lists(net[4].weight), "b3": lists(net[4].bias)}


def check(model: str, folder: Path, fusion, splits=("train", "val")) -> dict:
    """Whole-image hair scores of the pipeline replayed from the cache with a fusion (None: the
    "mix" rule): {split: score, split + " empty": score on its empty masks}."""
    from stream import assemble
    pipe = assemble.build_pipeline(model=model, static_images=True, effects=None, log=lambda *a: None)
    pipe.hair.fusion = fusion
    sets = {}
    for image, mask, s in lfw_pairs():
        if s in splits:
            sets.setdefault(s, []).append((image, mask))
            if not (cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127).any():
                sets.setdefault(s + " empty", []).append((image, mask))
    labels = {}
    for image, _ in sets.get(splits[0], []) + [p for s in splits[1:] for p in sets.get(s, [])]:
        r, _ = replay(pipe, image, folder)
        labels[image] = assemble.label_map(r) == HAIR
    return {name: score(pairs, labels.get) for name, pairs in sets.items()}


def fit(model: str, folder: Path, log=print) -> dict:
    """The learned fusion's weights for one tier, from its training people (cross-entropy; no
    threshold tuned): {"inputs": [...], "mu": ..., "w1": ..., ...}."""
    from models.perception.hair_fusion import INPUTS
    x, y = samples(folder, "train")
    log(f"{model}: {len(y)} pixels of LFW training people, {100 * y.mean():.1f}% hair")
    return {"inputs": list(INPUTS), **train_mlp(x, y)}


def main(argv=None):
    from models.parsers import registry
    from models.perception import hair_fusion
    from models.perception.hair import FUSION_OF
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # every tier with hair of its own (`combined` uses RNN-G's fusion: hair.FUSION_OF)
    ap.add_argument("--model", nargs="+", default=[n for n in registry.TIERS if n not in FUSION_OF])
    ap.add_argument("--cache", type=Path, default=ROOT / "data" / "hair_fusion")
    ap.add_argument("--out", type=Path, default=hair_fusion.FUSION_FILE)
    ap.add_argument("--errors", action="store_true", help="only the error breakdown of the shipped rule (train people)")
    ap.add_argument("--overlays", type=Path, help="with --errors: PNG overlays here (red false, blue missed hair)")
    ap.add_argument("--check", action="store_true", help="after fitting: the rule before (when it was of this kind) and the fitted one, both splits, replayed")
    args = ap.parse_args(argv)
    if not LFW.is_dir():
        raise SystemExit(f"error: LFW hair data not found: {LFW}")
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    data.setdefault("tiers", {})
    old = {model: data["tiers"].get(model) for model in args.model}
    stale = [m for m in args.model if old[m] is not None and not hair_fusion.valid_weights(old[m])]
    if stale and not args.errors:   # weights of an older rule: the tiers refit start from the "mix" rule
        for model in stale:
            del data["tiers"][model]
        args.out.write_text(json.dumps(data) + "\n")
        print(f"dropped the stale fusion of {', '.join(stale)} from {args.out} before refitting")
    for model in args.model:
        build_cache(model, args.cache / model)
    if args.errors:
        for model in args.model:
            errors(model, args.cache / model, "train", out=args.overlays)
        return
    data["about"] = ("Learned whole-head hair fusion (models/perception/hair_fusion.py): per tier a small MLP "
                     "(inputs -> hidden -> hidden -> 1) over the per-pixel and context features 'inputs', "
                     "fitted on the pixels of LFW's training people (models.data.readers.lfw_hair.split_of_person) "
                     "by `python -m tools.fit_hair_fusion --model TIER`. Tiers not listed keep the 'mix' rule.")
    for model in args.model:
        data["tiers"][model] = fit(model, args.cache / model)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out}")
    if args.check:
        for model in args.model:
            before = [("before", hair_fusion.Fusion(old[model]))] if hair_fusion.valid_weights(old[model]) else []
            for name, fusion in before + [("learned", hair_fusion.Fusion(data["tiers"][model]))]:
                rows = check(model, args.cache / model, fusion)
                print(model, name, " ".join(f"{k}: F1 {v['f1']:.3f} false hair {100 * v['fp_share']:.2f}%"
                                            for k, v in rows.items()))


if __name__ == "__main__":
    main()

"""Evaluate a parser tier on a split of a compact dataset (models.data.dataset format).

    python -m models.evaluate --model rnng --data data/faceparse --split val --json out.json

Each source of the split is scored by what its labels can tell: all 11 classes, except a
"partial" source whose labels hold only 0 / 10 / 255 (LFW hair masks: not-hair / hair /
ignore), which is scored hair-vs-not-hair only. Auto-labelled and unlabelled sources are
skipped unless named with --source. The top-level scores merge the counts of all sources
scored on every class; hair_f1 / hair_iou come from the hair-mask sources when the split has
any (real hair), else from the fully labelled ones.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.classes import HAIR
from models.data.dataset import FaceParsingDataset
from models.training.metrics import ConfusionMatrix

EVAL_SIZE = 256  # scores are always at the canonical crop size, whatever the tier's input
KIND_ORDER = ("none", "auto", "partial", "full")  # a source with mixed kinds takes the weakest


def hardware_string(device=None) -> str:
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def set_threads(n: int | None):
    """Limit torch, numba and OpenCV to n CPU threads. numba's OpenMP layer would otherwise
    reset torch's thread count to all cores on its first parallel kernel."""
    if not n:
        return
    torch.set_num_threads(n)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(n)
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


def split_sources(data_dir, split: str) -> dict:
    """{source: label_kind} of the samples of `split`, read from DIR/index.jsonl."""
    kinds = {}
    with open(Path(data_dir) / "index.jsonl") as f:
        for line in f:
            if line.strip():
                s = json.loads(line)
                if s.get("split") == split:
                    kinds.setdefault(s["source"], set()).add(s.get("label_kind", "full"))
    return {src: min(ks, key=KIND_ORDER.index) for src, ks in kinds.items()}


def open_dataset(data_dir, split: str, size: int, sources=None, augment=None):
    return FaceParsingDataset(data_dir, split=split, size=size, augment=augment, sources=sources)


def to_crops(image: torch.Tensor) -> np.ndarray:
    """Batch image float (N, 3, S, S) in [0, 1] -> uint8 (N, S, S, 3), the Parser's input."""
    return (image * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def accumulate(parser, dataset, batch_size: int = 8, progress: bool = True, desc: str = "eval",
               num_workers: int = 0) -> tuple[ConfusionMatrix, int, float]:
    """Run `parser` over `dataset`; (confusion matrix, images, seconds spent in the parser)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    cm, n, seconds = ConfusionMatrix(), 0, 0.0
    for batch in tqdm(loader, desc=desc, disable=None if progress else True, leave=False):
        crops = to_crops(batch["image"])
        five = batch["five"].numpy()
        mesh = batch["mesh"].numpy() if "mesh" in batch else None
        start = time.perf_counter()
        probs = parser(crops, five, mesh)
        seconds += time.perf_counter() - start
        cm.update(np.asarray(probs).argmax(1), batch["label"])
        n += len(crops)
    return cm, n, seconds


def evaluate(parser, dataset, batch_size: int = 8, classes=None, progress: bool = True,
             desc: str = "eval", num_workers: int = 0) -> dict:
    """Scores of `parser` on one dataset (models.training.metrics.ConfusionMatrix.report keys) plus
    n_images and seconds_per_image. `classes` restricts scoring, e.g. (HAIR,) for hair masks."""
    cm, n, seconds = accumulate(parser, dataset, batch_size, progress, desc, num_workers)
    return {**cm.report(classes), "n_images": n, "seconds_per_image": seconds / n if n else None}


def is_hair_only(cm: ConfusionMatrix, kind: str) -> bool:
    """A partial source whose truth holds no class but background (= not hair) and hair."""
    truth = cm.counts.sum(1)
    return kind == "partial" and truth[HAIR] + truth[0] == truth.sum()


def evaluate_dir(parser, data_dir, split: str = "val", sources=None, batch_size: int = 8,
                 progress: bool = True, num_workers: int = 0) -> dict:
    """Evaluate every scoreable source of a split separately and merge them (module doc)."""
    kinds = split_sources(data_dir, split)
    if sources:  # exact names, or prefixes ending in ":" or "*" as in models.data.dataset ("video:")
        picked = {w: [s for s in kinds if s == w or (w.endswith((":", "*")) and s.startswith(w.rstrip("*")))]
                  for w in sources}
        missing = [w for w, found in picked.items() if not found]
        if missing:
            raise ValueError(f"no '{split}' samples from source(s) {', '.join(missing)} in {data_dir}; "
                             f"there are: {', '.join(kinds) or 'none'}")
        kinds = {s: kinds[s] for found in picked.values() for s in found}
    else:
        kinds = {s: k for s, k in kinds.items() if k in ("full", "partial")}
    if not kinds:
        raise ValueError(f"no labelled '{split}' samples in {data_dir}")

    by_source, full, hair = {}, ConfusionMatrix(), ConfusionMatrix()
    n_images, seconds = 0, 0.0
    for source, kind in sorted(kinds.items()):
        if kind == "none":
            continue
        dataset = open_dataset(data_dir, split, EVAL_SIZE, sources=[source])
        cm, n, sec = accumulate(parser, dataset, batch_size, progress, f"{split}/{source}", num_workers)
        hair_only = is_hair_only(cm, kind)
        by_source[source] = {"label_kind": kind, "scored": "hair" if hair_only else "all",
                             **cm.report((HAIR,) if hair_only else None), "n_images": n}
        n_images, seconds = n_images + n, seconds + sec
        if hair_only:
            hair += cm
        else:
            full += cm

    result = full.report() if full.n_pixels else hair.report((HAIR,))
    if hair.n_pixels:  # real hair masks are the hair yardstick when present
        hair_scores = hair.report((HAIR,))
        result.update(hair_f1=hair_scores["hair_f1"], hair_iou=hair_scores["hair_iou"])
    result["hair_sources"] = [s for s, r in by_source.items() if (r["scored"] == "hair") == bool(hair.n_pixels)]
    result.update(split=split, sources=sorted(by_source), by_source=by_source, n_images=n_images,
                  seconds_per_image=seconds / n_images if n_images else None)
    return result


def _fmt(x) -> str:
    return "   -  " if x is None else f"{x:6.4f}"


def format_table(result: dict) -> str:
    lines = [f"{'class':<12} {'F1':>6}  {'IoU':>6}"]
    for name in result["per_class_f1"]:
        lines.append(f"{name:<12} {_fmt(result['per_class_f1'][name])}  {_fmt(result['per_class_iou'][name])}")
    lines += [
        f"{'overall F1':<12} {_fmt(result.get('overall_f1'))}   (Helen: brows+eyes+nose+mouth merged)",
        f"{'mean F1':<12} {_fmt(result.get('mean_f1'))}   (LaPa: 10 foreground classes)",
        f"{'pixel acc':<12} {_fmt(result.get('pixel_accuracy'))}",
        f"{'hair F1':<12} {_fmt(result.get('hair_f1'))}   IoU {_fmt(result.get('hair_iou'))} "
        f"on {', '.join(result.get('hair_sources', [])) or '-'}",
    ]
    for src, r in result.get("by_source", {}).items():
        lines.append(f"  {src} ({r['label_kind']}, {r['n_images']} images): overall {_fmt(r.get('overall_f1'))} "
                     f"mean {_fmt(r.get('mean_f1'))} hair {_fmt(r.get('hair_f1'))}")
    return "\n".join(lines)


def build_argparser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="registry tier name (models.parsers.registry.TIERS)")
    ap.add_argument("--data", required=True, help="compact dataset folder (index.jsonl, images/, labels/)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--source", nargs="+", default=None,
                    help="score only these sources (e.g. facesynthetics lfw_hair); default: every labelled one")
    ap.add_argument("--checkpoint", default=None, help="default: checkpoints/<model>.pt")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", default=None, help="write the scores here")
    return ap


def main(argv=None) -> dict:
    args = build_argparser().parse_args(argv)
    from models.parsers.checkpoint import CheckpointError
    from models.parsers.registry import TIERS, UnknownModel, create_parser
    set_threads(args.threads)
    data = Path(args.data)
    if not (data / "index.jsonl").is_file():
        sys.exit(f"error: no dataset at {data} (expected {data / 'index.jsonl'})")
    try:
        parser = create_parser(args.model, device=args.device, checkpoint=args.checkpoint)
        hardware = hardware_string(getattr(parser, "device", None))  # before numba can touch threads
        result = evaluate_dir(parser, data, args.split, args.source, args.batch, progress=True)
    except (UnknownModel, CheckpointError, ValueError, ModuleNotFoundError) as exc:
        sys.exit(f"error: {exc}")
    tier = TIERS[args.model]
    result = {"model": args.model, "checkpoint": args.checkpoint or (str(tier.checkpoint) if tier.learned else None),
              "data": str(data), "hardware": hardware, **result}
    print(f"{args.model} on {data} [{args.split}], {result['n_images']} images, "
          f"{result['seconds_per_image'] * 1000:.1f} ms/image on {result['hardware']}")
    print(format_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, allow_nan=False))
    return result


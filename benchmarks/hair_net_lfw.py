"""Hair F1 / IoU of the ported MediaPipe hair network on LFW, and its speed.

    python -m benchmarks.hair_net_lfw                  # all 1,791 LFW images, 512 input
    python -m benchmarks.hair_net_lfw --limit 200 --size 256 --no-time

Whole-dataset pixel counts (TP, FP, FN summed over images, then F1 = 2TP / (2TP + FP + FN),
IoU = TP / (TP + FP + FN)), at the 250x250 label resolution: each image is stretched to
size x size, segmented with the previous-mask channel at 0, and the hair probability resized
back and thresholded at 0.5. Reported for all images and for the project's LFW validation
persons (models.data.readers.lfw_hair.split_of_person). Timing: median / min ms of the network
alone on one 512 (and 256) input, one torch thread.

No tflite runtime here runs MediaPipe's custom ops, so these results are the check of the
port: the README of ../shared/models reports ~0.77 F1 for the original on LFW.
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.common import timed
from models.parsers.hair_net import DEFAULT_CHECKPOINT, load_torch_hair_net
from models.data.readers.lfw_hair import person_of, split_of_person

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw_hair"


def lfw_pairs(root=LFW, limit=None, every=1):
    """(stem, image path, mask path), sorted by name; every k-th when `every` > 1."""
    images = sorted((Path(root) / "images").glob("*.jpg"))[::every][:limit]
    return [(p.stem, p, Path(root) / "hair_masks" / f"{p.stem}.png") for p in images]


def counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.array([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()], np.int64)


def scores(c) -> dict:
    tp, fp, fn = (int(v) for v in c)
    return {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "iou": tp / max(tp + fp + fn, 1),
            "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "pred_to_true": (tp + fp) / max(tp + fn, 1)}


def evaluate(net, pairs, size=512, threshold=0.5) -> dict:
    totals = {"all": np.zeros(3, np.int64), "val": np.zeros(3, np.int64)}
    images = {"all": 0, "val": 0}
    for stem, image_path, mask_path in pairs:
        rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
        truth = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
        c = counts(net.segment(rgb, None, size) > threshold, truth)
        splits = ["all", "val"] if split_of_person(person_of(stem)) == "val" else ["all"]
        for s in splits:
            totals[s] += c
            images[s] += 1
    return {s: {"images": images[s], **scores(totals[s])} for s in totals if images[s]}


def main(argv=None):
    ap = argparse.ArgumentParser(description="MediaPipe hair network (torch port) on LFW")
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--data", default=str(LFW))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--every", type=int, default=1, help="take every k-th image (a spread subset)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = load_torch_hair_net(args.checkpoint)
    pairs = lfw_pairs(args.data, args.limit, args.every)
    result = {"size": args.size, "threshold": 0.5, "prev_mask": 0, **evaluate(net, pairs, args.size)}
    for split in ("all", "val"):
        if split in result:
            r = result[split]
            print(f"LFW {split:3s} {r['images']:5d} images @ {args.size}: hair F1 {r['f1']:.4f}  IoU {r['iou']:.4f}  "
                  f"P {r['precision']:.3f}  R {r['recall']:.3f}  predicted/true {r['pred_to_true']:.2f}")
    if not args.no_time:
        result["timing"] = {}
        for size in (512, 256):
            x = torch.rand(1, 4, size, size)
            x[:, 3] = 0
            with torch.inference_mode():
                t = timed(lambda: net(x), args.repeats)
            result["timing"][size] = t
            print(f"network alone {size}x{size}, {args.threads} thread(s): median {t['median_ms']:.1f} ms, "
                  f"min {t['min_ms']:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

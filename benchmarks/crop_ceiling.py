"""What the aligned crop's resolution alone costs the thin parts: FaceSynthetics' true labels
taken into an aligned crop of side S (as soft one-hot planes, area-averaged) and back into the
512x512 image (bilinear, argmax), scored against themselves. A parser that were perfect in its
crop could score no higher. The parsers' crop is 256 with 51 pixels between the eyes; a photo
with E pixels between the eyes is parsed at 51/E of its resolution, which is what a crop of
side S = 256 * (51 / E) / (51 / 70) does to FaceSynthetics' faces (~70 pixels between the eyes).

    python -m benchmarks.crop_ceiling                     # S = 128 ... 512, all 80 faces
    python -m benchmarks.crop_ceiling --eye-distance 110  # the crop a 110-pixel face gets, and twice it

Hair is left out of the mean: beyond the crop it comes from the hair network (README, Hair).
"""
import argparse

import cv2
import numpy as np

from benchmarks.parts_whole import facesynthetics_pairs, truth
from core import align
from core.classes import CLASS_NAMES, HAIR, NUM_CLASSES
from models.training.metrics import ConfusionMatrix

SUPERSAMPLE = 4   # the crop is drawn 4x larger and area-averaged: a soft label, as a parser's


def through_crop(gt: np.ndarray, five: np.ndarray, side: int) -> np.ndarray:
    """The label map after a round trip through the aligned crop of side `side`."""
    matrix = align.alignment_matrix(five, side)
    big = align.scaled(matrix, SUPERSAMPLE)
    labels = np.where(gt == 255, 0, gt)
    h, w = gt.shape
    back = np.empty((NUM_CLASSES, h, w), np.float32)
    for c in range(NUM_CLASSES):
        plane = cv2.warpAffine((labels == c).astype(np.float32), big, (side * SUPERSAMPLE,) * 2, flags=cv2.INTER_LINEAR)
        crop = cv2.resize(plane, (side, side), interpolation=cv2.INTER_AREA)
        back[c] = cv2.warpAffine(crop, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderValue=1.0 if c == 0 else 0.0)
    return back.argmax(0).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 256, 384, 512])
    ap.add_argument("--eye-distance", type=float, help="also the sizes that a face this many pixels "
                    "between the eyes gets at the parsers' resolution and at twice it")
    args = ap.parse_args()
    pairs = facesynthetics_pairs("all")
    if not pairs:
        raise SystemExit("error: needs ../shared/data/facesynthetics")
    fives = [align.five_from_ibug68(np.loadtxt(str(p).replace(".png", "_ldmks.txt"))) for p, _ in pairs]
    eyes = float(np.median([np.linalg.norm(f[1] - f[0]) for f in fives]))
    crop_eyes = (align.TEMPLATE[1, 0] - align.TEMPLATE[0, 0]) * align.CROP_SIZE
    sizes = list(args.sizes)
    if args.eye_distance:
        one = round(align.CROP_SIZE * (crop_eyes / args.eye_distance) / (crop_eyes / eyes))
        sizes = [one, 2 * one]
    print(f"{len(pairs)} FaceSynthetics faces, median {eyes:.0f} pixels between the eyes; "
          f"the parsers' crop has {crop_eyes:.0f}")
    face = [c for c in range(1, NUM_CLASSES) if c != HAIR]
    print("side  eyes  " + " ".join(f"{CLASS_NAMES[c]:>11}" for c in face) + "  overall  mean(no hair)")
    for side in sizes:
        cm = ConfusionMatrix()
        for (_, seg), five in zip(pairs, fives):
            gt = truth(seg)
            cm.update(through_crop(gt, five, side), gt)
        print(f"{side:4d} {crop_eyes * side / align.CROP_SIZE:5.0f}  " + " ".join(f"{cm.f1(c):11.3f}" for c in face)
              + f"  {cm.overall_f1():7.3f}  {cm.mean_f1(face):7.3f}", flush=True)


if __name__ == "__main__":
    main()

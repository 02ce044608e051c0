"""Build the hair dev set (tests/fixtures/hair_dev) from public-domain portraits and recorded
corrections, and draw overlays to check the masks by eye.

    python -m tools.make_hair_dev                     # masks from corrections.json
    python -m tools.make_hair_dev --overlays out/dev  # + PNG overlays with a 50-pixel grid

A mask starts as the hair network's hair (models.parsers.hair_net at 512 on the whole
portrait, threshold 0.5); then each recorded correction, in order, fills a polygon (image
pixels) as hair ("add"), not hair ("remove") or unscored ("ignore": beards and moustaches,
whose class the benchmarks disagree on, and hair edges too fine to call). Masks: 255 hair,
0 not hair, 128 ignored. The images are copied as they are (US Government works, public domain).
"""
import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = ROOT.parent / "shared" / "data" / "portraits"
DEV = ROOT / "tests" / "fixtures" / "hair_dev"
VALUES = {"add": 255, "remove": 0, "ignore": 128}


def start_mask(net, rgb: np.ndarray) -> np.ndarray:
    return np.where(net.segment(rgb, None, 512) > 0.5, 255, 0).astype(np.uint8)


def apply_corrections(mask: np.ndarray, corrections: list) -> np.ndarray:
    mask = mask.copy()
    for c in corrections:
        cv2.fillPoly(mask, [np.round(np.asarray(c["polygon"], np.float64)).astype(np.int32)], VALUES[c["op"]])
    return mask


def overlay(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hair tinted magenta, ignored pixels yellow, a labelled 50-pixel grid (to write polygons)."""
    out = rgb.astype(np.float32)
    for value, colour in ((255, (255, 0, 255)), (128, (255, 255, 0))):
        sel = mask == value
        out[sel] = 0.5 * out[sel] + 0.5 * np.array(colour, np.float32)
    out = out.astype(np.uint8)
    h, w = mask.shape
    for x in range(0, w, 50):
        cv2.line(out, (x, 0), (x, h - 1), (0, 255, 0), 1)
        cv2.putText(out, str(x), (x + 1, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 255, 0), 1)
    for y in range(0, h, 50):
        cv2.line(out, (0, y), (w - 1, y), (0, 255, 0), 1)
        cv2.putText(out, str(y), (1, y + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 255, 0), 1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--portraits", type=Path, default=PORTRAITS)
    ap.add_argument("--out", type=Path, default=DEV)
    ap.add_argument("--overlays", type=Path, default=None)
    args = ap.parse_args()
    from models.parsers.hair_net import load_torch_hair_net
    net = load_torch_hair_net()
    spec = json.loads((DEV / "corrections.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, corrections in spec.items():
        src = args.portraits / name
        rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
        mask = apply_corrections(start_mask(net, rgb), corrections)
        if args.out.resolve() != src.parent.resolve():
            shutil.copyfile(src, args.out / name)
        cv2.imwrite(str(args.out / f"{Path(name).stem}_hair.png"), mask)
        if args.overlays:
            args.overlays.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.overlays / f"{Path(name).stem}.png"), cv2.cvtColor(overlay(rgb, mask), cv2.COLOR_RGB2BGR))
    print(f"{len(spec)} masks in {args.out}")


if __name__ == "__main__":
    main()

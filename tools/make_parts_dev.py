"""Build the real-face parts dev set (tests/fixtures/parts_dev): brows, eyes, lips and inner mouth
outlined by hand on the hair dev set's public-domain portraits (tests/fixtures/hair_dev), and the
zoomed views used to outline them.

    python -m tools.make_parts_dev views --out DIR          # zoomed, gridded views to outline from
    python -m tools.make_parts_dev                          # label maps from polygons.json
    python -m tools.make_parts_dev --overlays DIR           # + the outlines over the views, to check

The outlines were written by reading the views (each eye with its brow, and the mouth, enlarged
8x with a grid in image pixels; **no parser's output drawn on them**, so no tier is favoured),
then checked on the overlays. Coordinates are continuous image coordinates: pixel (x, y) spans
[x, x+1) x [y, y+1). A polygon is filled by area: a pixel takes a class when at least half of it
lies inside (4x4 samples a pixel). Label maps: the class id (core.classes) of the outlined part,
0 where none of the seven is, 255 unscored (`ignore` polygons: e.g. a glint or frame of glasses
hiding an edge). Skin, nose, hair and background are not outlined: they are not scored here
(hair has its own dev set, tests/fixtures/hair_dev, on the same portraits).
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from core.classes import (INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, RIGHT_BROW, RIGHT_EYE,
                          UPPER_LIP)

ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = ROOT / "tests" / "fixtures" / "hair_dev"   # the hair dev set's portraits (copies of ../shared's)
DEV = ROOT / "tests" / "fixtures" / "parts_dev"
IGNORE = 255
# drawing order: later parts win where outlines overlap (an eye over its brow, the mouth over the lips)
PARTS = {"left_brow": LEFT_BROW, "right_brow": RIGHT_BROW, "upper_lip": UPPER_LIP,
         "lower_lip": LOWER_LIP, "left_eye": LEFT_EYE, "right_eye": RIGHT_EYE,
         "inner_mouth": INNER_MOUTH, "ignore": IGNORE}
SCORED = tuple(v for v in PARTS.values() if v != IGNORE)
SAMPLES = 4   # samples per pixel side when filling a polygon by area
ZOOM = 8


def label_map(shape: tuple, outlines: dict) -> np.ndarray:
    """(h, w) uint8 label map from {part: [polygon, ...]} (polygons as [[x, y], ...])."""
    h, w = shape
    labels = np.zeros((h, w), np.uint8)
    for part, value in PARTS.items():
        for polygon in outlines.get(part, []):
            fine = np.zeros((h * SAMPLES, w * SAMPLES), np.uint8)
            pts = np.round(np.asarray(polygon, np.float64) * SAMPLES - 0.5).astype(np.int32)
            cv2.fillPoly(fine, [pts], 255)
            cover = cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA)
            labels[cover >= 128] = value
    return labels


def regions(five: np.ndarray) -> dict:
    """Boxes (x0, y0, x1, y1) around each eye with its brow and around the mouth, from five points."""
    d = float(np.linalg.norm(five[1] - five[0]))
    boxes = {}
    for name, eye in (("left", five[0]), ("right", five[1])):
        boxes[name] = (eye[0] - 0.5 * d, eye[1] - 0.55 * d, eye[0] + 0.5 * d, eye[1] + 0.3 * d)
    mouth = (five[3] + five[4]) / 2
    half = max(0.45 * d, 0.65 * float(np.linalg.norm(five[4] - five[3])))
    boxes["mouth"] = (mouth[0] - half, mouth[1] - 0.35 * d, mouth[0] + half, mouth[1] + 0.4 * d)
    return {k: tuple(int(round(v)) for v in b) for k, b in boxes.items()}


def zoom_view(bgr: np.ndarray, box: tuple, outlines: dict | None = None) -> np.ndarray:
    """The box enlarged ZOOM times with a grid every 5 image pixels (numbered every 10), and
    the outlines drawn over it when given."""
    h, w = bgr.shape[:2]
    x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    view = cv2.resize(bgr[y0:y1, x0:x1], None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_CUBIC)
    vh, vw = view.shape[:2]
    for x in range(x0 - x0 % 5, x1 + 1, 5):
        X = (x - x0) * ZOOM
        cv2.line(view, (X, 0), (X, vh), (255, 255, 255) if x % 10 == 0 else (150, 150, 150), 1)
        if x % 10 == 0:
            cv2.putText(view, str(x), (X + 2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 255, 255), 1)
    for y in range(y0 - y0 % 5, y1 + 1, 5):
        Y = (y - y0) * ZOOM
        cv2.line(view, (0, Y), (vw, Y), (255, 255, 255) if y % 10 == 0 else (150, 150, 150), 1)
        if y % 10 == 0:
            cv2.putText(view, str(y), (2, Y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 255, 255), 1)
    colours = [(0, 255, 0), (255, 0, 255), (0, 128, 255), (255, 255, 0)]
    for i, (part, polygons) in enumerate((outlines or {}).items()):
        for polygon in polygons:
            pts = np.round((np.asarray(polygon, np.float64) - (x0, y0)) * ZOOM).astype(np.int32)
            cv2.polylines(view, [pts], True, colours[i % len(colours)], 1, cv2.LINE_AA)
    return view


def write_views(portraits: Path, names: list, out: Path, outlines: dict | None = None):
    from models.perception.tracker import FaceTracker
    tracker = FaceTracker(max_faces=1, static_images=True)
    out.mkdir(parents=True, exist_ok=True)
    boxes = {}
    for name in names:
        bgr = cv2.imread(str(portraits / name))
        faces = tracker.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if not faces:
            print(f"{name}: no face")
            continue
        boxes[name] = regions(faces[0].five)
        for region, box in boxes[name].items():
            mine = outlines.get(name, {}) if outlines is not None else None
            cv2.imwrite(str(out / f"{Path(name).stem}_{region}.png"), zoom_view(bgr, box, mine))
    tracker.close()
    (out / "boxes.json").write_text(json.dumps(boxes, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", nargs="?", choices=["build", "views"], default="build")
    ap.add_argument("names", nargs="*", help="portrait file names (views; default: the hair dev set's)")
    ap.add_argument("--portraits", type=Path, default=PORTRAITS)
    ap.add_argument("--out", type=Path, default=DEV)
    ap.add_argument("--overlays", type=Path, default=None)
    ap.add_argument("--polygons", type=Path, default=DEV / "polygons.json")
    args = ap.parse_args()
    if args.command == "views":
        names = args.names or sorted(p.name for p in args.portraits.glob("*.jpg"))
        write_views(args.portraits, names, args.out)
        return
    spec = json.loads(args.polygons.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, outlines in spec.items():
        bgr = cv2.imread(str(args.portraits / name))
        cv2.imwrite(str(args.out / f"{Path(name).stem}_parts.png"), label_map(bgr.shape[:2], outlines))
    if args.overlays:
        write_views(args.portraits, list(spec), args.overlays, spec)
    print(f"{len(spec)} label maps in {args.out}")


if __name__ == "__main__":
    main()

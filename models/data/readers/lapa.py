"""LaPa (Liu et al. 2020), the release layout:

    {train,val,test}/images/<name>.jpg
    {train,val,test}/labels/<name>.png       class ids 0..10 in LaPa order (= ours)
    {train,val,test}/landmarks/<name>.txt    first line 106, then 106 lines "x y"

Aligned with five points from its own 106-point layout (JD-106): eye centres = pupils 104/105
(or the eye contours 52-57 / 58-63), nose = lower nose 47-51, mouth corners 84 / 90. The two
sides are ordered by the image (the eye nearer the image's left is "left"), so the five points
follow our convention whatever the layout's; left/right label classes are fixed per image the
same way (models.data.readers.fix_left_right). No mesh (NaN): LaPa has no face-mesh points.
"""
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from models.data.readers import RawSample, fix_left_right, read_rgb

SOURCE = "lapa"
SPLITS = ("train", "val", "test")


def load_landmarks(path) -> np.ndarray:
    values = np.array(Path(path).read_text().split(), np.float32)
    n = int(values[0])
    return values[1:1 + 2 * n].reshape(n, 2)


def five_from_lapa106(p: np.ndarray) -> np.ndarray:
    eyes = p[[104, 105]] if len(p) >= 106 else np.stack([p[52:58].mean(0), p[58:64].mean(0)])
    five = np.vstack([eyes, p[47:52].mean(0), p[84], p[90]]).astype(np.float32)
    if five[0, 0] > five[1, 0]:      # order the sides by the image
        five = five[[1, 0, 2, 4, 3]]
    return five


class LapaReader:
    def __init__(self):
        self.drops = Counter()
        self.stats = Counter()

    def read(self, root, limit: int | None = None):
        root = Path(root)
        items = [(split, p) for split in SPLITS if (root / split / "images").is_dir()
                 for p in sorted((root / split / "images").glob("*.jpg"))]
        for split, path in items[:limit]:
            label_path = root / split / "labels" / f"{path.stem}.png"
            lmk_path = root / split / "landmarks" / f"{path.stem}.txt"
            if not label_path.exists() or not lmk_path.exists():
                self.drops["missing_file"] += 1
                continue
            label, swapped = fix_left_right(cv2.imread(str(label_path), cv2.IMREAD_GRAYSCALE))
            self.stats["left_right_swapped" if swapped else "left_right_as_named"] += 1
            yield RawSample(f"lapa_{path.stem}", split, SOURCE, "full", read_rgb(path), label,
                            five_from_lapa106(load_landmarks(lmk_path)))

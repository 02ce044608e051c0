"""LFW Part Labels (Kae et al. 2013), the release layout:

    lfw_funneled/<Name>/<Name>_<NNNN>.jpg                 250x250 funneled images
    parts_lfw_funneled_gt_images/<Name>_<NNNN>.ppm        superpixel ground truth as colours:
                                                          R = hair, G = face skin, B = background
    parts_train.txt (1500), parts_validation.txt (500), parts_test.txt (927): lines "<Name> <n>"

LFW-PL has three classes; its "skin" covers brows, eyes, nose and mouth too. So:
- train (label_kind "partial"): hair -> 10, background -> 0, skin -> the landmark auto-label's
  face class (1..9) where it has one, else 255 (see models.data.readers.lfw_hair for the same rule).
- val/test (ground truth only, label_kind "partial"): hair -> 10, background -> 0, skin -> 1
  (skin *with* the parts): evaluate LFW-PL the standard way, with classes 1..9 merged into skin.
Aligned with the pipeline's tracker (face nearest the image centre) or, when it finds none,
funneled LFW's median five points.
"""
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from core import align
from models.data.readers.autolabel import AutoLabeler, inside_frame
from core.classes import BACKGROUND, HAIR, IGNORE, SKIN
from models.data.readers import RawSample, read_rgb
from models.data.readers.lfw_hair import FUNNELED_FIVE

SOURCE = "lfw_parts"
SPLIT_FILES = {"train": "parts_train.txt", "val": "parts_validation.txt", "test": "parts_test.txt"}


def read_split_file(path) -> list[str]:
    stems = []
    for line in Path(path).read_text().split("\n"):
        parts = line.split()
        if len(parts) >= 2:
            stems.append(f"{parts[0]}_{int(parts[1]):04d}")
    return stems


def load_gt(path) -> np.ndarray:
    """(H, W) 0 background, 1 skin, 2 hair from the colour-coded .ppm."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    b, g, r = bgr[..., 0], bgr[..., 1], bgr[..., 2]
    return np.select([(r >= g) & (r >= b), (g >= b)], [2, 1], 0).astype(np.uint8)


class LfwPartsReader:
    def __init__(self, autolabel: bool = True, labeler: AutoLabeler | None = None):
        self.labeler = labeler or AutoLabeler()
        self.autolabel = autolabel
        self.drops = self.labeler.drops
        self.stats = Counter()

    def read(self, root, limit: int | None = None):
        root = Path(root)
        items = [(split, s) for split, name in SPLIT_FILES.items() if (root / name).exists()
                 for s in read_split_file(root / name)]
        for split, stem in items[:limit]:
            name = stem.rsplit("_", 1)[0]
            image_path = root / "lfw_funneled" / name / f"{stem}.jpg"
            gt_path = root / "parts_lfw_funneled_gt_images" / f"{stem}.ppm"
            if not image_path.exists() or not gt_path.exists():
                self.drops["missing_file"] += 1
                continue
            yield self.sample(read_rgb(image_path), load_gt(gt_path), stem, split)

    def sample(self, image, gt, stem, split) -> RawSample:
        h, w = image.shape[:2]
        faces = self.labeler.finder.faces(image)
        face = min(faces, key=lambda f: np.linalg.norm(f.five.mean(0) - (w / 2, h / 2))) if faces else None
        matrix = face.matrix if face is not None else align.alignment_matrix(FUNNELED_FIVE)
        five = face.five if face is not None else FUNNELED_FIVE
        mesh = face.mesh if face is not None else None
        crop = align.warp_crop(image, matrix)
        gt_crop = align.warp_crop(gt, matrix, interpolation=cv2.INTER_NEAREST)
        inside = inside_frame((h, w), matrix)
        five_c = align.transform_points(five, matrix)
        mesh_c = None if mesh is None else align.transform_points(mesh, matrix)
        if split == "train":
            label = np.full(gt_crop.shape, IGNORE, np.uint8)
            if self.autolabel and face is not None and self.labeler.reject_reason(face) is None:
                auto = self.labeler.label_crop(crop, five_c, mesh_c)
                face_part = (auto >= 1) & (auto <= 9)
                label[(gt_crop == 1) & face_part] = auto[(gt_crop == 1) & face_part]
                self.stats["train_with_auto"] += 1
            else:
                self.stats["train_without_auto"] += 1
        else:
            label = np.full(gt_crop.shape, SKIN, np.uint8)
        label[gt_crop == 0] = BACKGROUND
        label[gt_crop == 2] = HAIR
        label[~inside] = BACKGROUND
        return RawSample(f"lfwpl_{stem}", split, SOURCE, "partial", crop, label, five_c, mesh_c,
                         matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]]))

    def close(self):
        self.labeler.close()

"""CelebAMask-HQ (Lee et al. 2020), the release layout:

    CelebA-HQ-img/<i>.jpg                                  1024x1024, i = 0..29999
    CelebAMask-HQ-mask-anno/<i // 2000>/<i:05d>_<part>.png 512x512 binary part masks
    CelebA-HQ-to-CelebA-mapping.txt    "idx orig_idx orig_file" (header line first)
    list_eval_partition.txt            (CelebA's) "<orig_file> <0 train | 1 val | 2 test>"

Parts are painted in the release's own order (later parts over earlier ones, as its
g_mask.py does) and mapped to ours: skin 1, nose 6, l/r_eye 4/5, l/r_brow 2/3, mouth 8,
u_lip 7, l_lip 9, hair 10; eye_g (glasses) 255 (what lies under frames is unknown, as for
FaceSynthetics); ears, hat, earrings, necklace, neck, cloth -> background. Left/right classes
are fixed per image to the image's left/right (models.data.readers.fix_left_right). Without the two
split files every image is "train". No landmarks of its own: aligned with the tracker.
"""
from pathlib import Path

import cv2
import numpy as np

from models.data.readers import TrackedReader, read_rgb

SOURCE = "celebamask"
PART_ORDER = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
              "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
PART_TO_CLASS = {"skin": 1, "nose": 6, "eye_g": 255, "l_eye": 4, "r_eye": 5, "l_brow": 2, "r_brow": 3,
                 "l_ear": 0, "r_ear": 0, "mouth": 8, "u_lip": 7, "l_lip": 9, "hair": 10, "hat": 0,
                 "ear_r": 0, "neck_l": 0, "neck": 0, "cloth": 0}
PARTITION = {"0": "train", "1": "val", "2": "test"}


def load_splits(root: Path) -> dict:
    """HQ index -> split, through the CelebA file names; {} when the files are missing."""
    mapping, partition = root / "CelebA-HQ-to-CelebA-mapping.txt", root / "list_eval_partition.txt"
    if not mapping.exists() or not partition.exists():
        return {}
    part = dict(line.split()[:2] for line in partition.read_text().splitlines() if len(line.split()) >= 2)
    splits = {}
    for line in mapping.read_text().splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3 and cols[2] in part:
            splits[int(cols[0])] = PARTITION[part[cols[2]]]
    return splits


def load_label(root: Path, index: int, shape: tuple) -> np.ndarray:
    folder = root / "CelebAMask-HQ-mask-anno" / str(index // 2000)
    label = None
    for part in PART_ORDER:
        path = folder / f"{index:05d}_{part}.png"
        if not path.exists():
            continue
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if label is None:
            label = np.zeros(mask.shape, np.uint8)
        label[mask > 127] = PART_TO_CLASS[part]
    if label is None:
        raise FileNotFoundError(folder / f"{index:05d}_*.png")
    return cv2.resize(label, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


class CelebAMaskReader(TrackedReader):
    def read(self, root, limit: int | None = None):
        root = Path(root)
        splits = load_splits(root)
        paths = sorted((root / "CelebA-HQ-img").glob("*.jpg"), key=lambda p: int(p.stem))
        for path in paths[:limit]:
            index = int(path.stem)
            image = read_rgb(path)
            try:
                label = load_label(root, index, image.shape[:2])
            except FileNotFoundError:
                self.drops["missing_file"] += 1
                continue
            sample = self.tracked_sample(f"celebamask_{index}", splits.get(index, "train"), SOURCE, "full",
                                         image, label)
            if sample is not None:
                yield sample

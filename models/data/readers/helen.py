"""HELEN face parsing as released by Smith et al. 2013 (SmithCVPR2013_dataset_resized):

    images/<id>.jpg
    labels/<id>/<id>_lbl00.png ... <id>_lbl10.png   soft per-class maps (0-255), argmax = class
    exemplars.txt (2000 train), tuning.txt (230 val), testing.txt (100 test): lines "<n> , <id>"

lbl00..lbl10 = background, face skin, left brow, right brow, left eye, right eye, nose, upper
lip, inner mouth, lower lip, hair: the same order as ours (LaPa's). Left/right: HELEN's
naming convention is not stated in the release, so each image's left/right classes are fixed
to mean the *image's* left/right from the label map itself (models.data.readers.fix_left_right;
the build reports how many were swapped, which tells the convention). Aligned with the
pipeline's tracker (HELEN's 194 points are a different layout), the face the labels cover.
"""
from pathlib import Path

import cv2
import numpy as np

from models.data.readers import TrackedReader, read_rgb

SOURCE = "helen"
SPLIT_FILES = {"train": "exemplars.txt", "val": "tuning.txt", "test": "testing.txt"}


def read_split_file(path) -> list[str]:
    ids = []
    for line in Path(path).read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[1]:
            ids.append(parts[1])
        elif parts[0]:
            ids.append(parts[0])
    return ids


def load_label(root: Path, sample_id: str) -> np.ndarray:
    maps = [cv2.imread(str(root / "labels" / sample_id / f"{sample_id}_lbl{k:02d}.png"), cv2.IMREAD_GRAYSCALE)
            for k in range(11)]
    if any(m is None for m in maps):
        raise FileNotFoundError(root / "labels" / sample_id)
    return np.argmax(np.stack(maps), 0).astype(np.uint8)


class HelenReader(TrackedReader):
    def read(self, root, limit: int | None = None):
        root = Path(root)
        items = [(split, i) for split, name in SPLIT_FILES.items() if (root / name).exists()
                 for i in read_split_file(root / name)]
        for split, sample_id in items[:limit]:
            try:
                image, label = read_rgb(root / "images" / f"{sample_id}.jpg"), load_label(root, sample_id)
            except FileNotFoundError:
                self.drops["missing_file"] += 1
                continue
            sample = self.tracked_sample(f"helen_{sample_id}", split, SOURCE, "full", image, label)
            if sample is not None:
                yield sample

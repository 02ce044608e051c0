"""Microsoft FaceSynthetics sample (../shared/data/facesynthetics): {id}.png, {id}_seg.png
(19 class ids), {id}_ldmks.txt (70 points: iBUG 68 + two pupils). Fixed split: ids
000000-000063 train, 000064-000079 val. Its "left" is the image's left, like ours.

Class mapping (FaceSynthetics -> ours), decided:
- skin, nose, eyes, brows, mouth interior, top/bottom lip, hair: direct.
- ears, neck, clothing, headwear -> background: LaPa/Helen have no such classes and label
  them background (ears are not "skin" in LaPa).
- beard -> 255 (ignore): benchmarks disagree (CelebAMask-HQ and Helen fold facial hair into
  skin, LaPa labels "by visible texture", which reads as hair); ignoring it lets the model
  decide from real data instead of teaching it one arbitrary convention from renders.
- glasses -> 255: the rendered glasses class covers frames *and* lenses, so under it lie
  eyes, brows and skin that we cannot recover; teaching "background" on the eyes would be
  wrong, teaching "skin" on the frames would be wrong over eyes. Ignore.
- facewear -> 255: an occluder over the nose/mouth, same reasoning (no pixels in these 80).
- 255 stays 255.
"""
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from core import align
from core.classes import (BACKGROUND, HAIR, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NOSE,
                            RIGHT_BROW, RIGHT_EYE, SKIN, UPPER_LIP)
from models.data.readers import FaceFinder, RawSample, read_rgb, remap

SOURCE = "facesynthetics"
NUM_TRAIN = 64  # ids 0..63 train, 64..79 val (README of the sample)

CLASS_MAP = {
    0: BACKGROUND, 1: SKIN, 2: NOSE, 3: RIGHT_EYE, 4: LEFT_EYE, 5: RIGHT_BROW, 6: LEFT_BROW,
    7: BACKGROUND, 8: BACKGROUND,            # right / left ear
    9: INNER_MOUTH, 10: UPPER_LIP, 11: LOWER_LIP,
    12: BACKGROUND,                          # neck
    13: HAIR,
    14: 255,                                 # beard: ignore (see module docstring)
    15: BACKGROUND,                          # clothing
    16: 255,                                 # glasses: ignore
    17: BACKGROUND,                          # headwear
    18: 255,                                 # facewear: ignore
    255: 255,
}


def split_of(sample_id: str) -> str:
    return "train" if int(sample_id) < NUM_TRAIN else "val"


def image_pairs(root, which: str = "val") -> list:
    """[(image path, seg path)] of the sample's split ("val", "train" or "all"), whole images."""
    images = sorted(p for p in Path(root).glob("*.png") if p.stem.isdigit())
    return [(p, p.with_name(f"{p.stem}_seg.png")) for p in images if which == "all" or split_of(p.stem) == which]


def whole_truth(seg_path) -> np.ndarray:
    """Our 11 classes from a seg map (255: not scored), as the reader maps them."""
    return remap(cv2.imread(str(seg_path), cv2.IMREAD_GRAYSCALE), CLASS_MAP)


def load_landmarks(path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.float32).reshape(-1, 2)


class FaceSyntheticsReader:
    """Aligns with the pipeline's face mesh when it finds the face (five from the mesh, mesh
    recorded); otherwise with the sample's own 70 landmarks (five_from_ibug68, mesh NaN)."""

    def __init__(self, use_tracker: bool = True):
        self.finder = FaceFinder() if use_tracker else None
        self.drops = Counter()
        self.alignment = Counter()   # "mesh" / "landmarks": how each sample was aligned

    def read(self, root, limit: int | None = None):
        root = Path(root)
        ids = sorted(p.stem for p in root.glob("*.png") if p.stem.isdigit())
        for sample_id in ids[:limit]:
            image = read_rgb(root / f"{sample_id}.png")
            seg = cv2.imread(str(root / f"{sample_id}_seg.png"), cv2.IMREAD_UNCHANGED)
            points = load_landmarks(root / f"{sample_id}_ldmks.txt")
            five, mesh = align.five_from_ibug68(points), None
            if self.finder is not None:
                face = self.finder.nearest(image, five)
                if face is not None and face.mesh is not None:
                    five, mesh = face.five, face.mesh
            self.alignment["mesh" if mesh is not None else "landmarks"] += 1
            yield RawSample(f"fs_{sample_id}", split_of(sample_id), SOURCE, "full", image,
                            remap(seg, CLASS_MAP), five, mesh)

    def close(self):
        if self.finder is not None:
            self.finder.close()


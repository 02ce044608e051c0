"""LFW hair masks (../shared/data/lfw_hair): images/{Person_Name}_{NNNN}.jpg (250x250 funneled)
and hair_masks/{same}.png (255 hair, 0 not hair: LFW Part Labels with skin and background merged).

Split by person (name = file stem without _NNNN): md5(name) mod 100 < 17 -> val, else train
(272 images = 15%, 177 of 1271 persons), so no one is in both. The 75 empty masks (bald, shaved, hidden hair) are kept: they are labels.

Labels (label_kind "partial"), in the aligned crop:
- val: hair (mask) -> 10, not hair -> 0. Ground truth only, no auto-label of a val person
  anywhere: read only the hair metrics (hair F1 / IoU) from these; 0 here means "not hair",
  so skin/part metrics on lfw_hair val are meaningless.
- train, when the landmark auto-labeller (models.data.readers.autolabel) accepts the face:
    mask hair                                -> 10 (the mask wins over every auto class)
    mask not hair, auto face class (1..9)    -> that class
    mask not hair, auto background           -> 0
    mask not hair, auto hair, skin-coloured  -> 255 (the mask says not hair, so it is skin or
                                                background, and nobody says which: checked by eye,
                                                these are often receding-hairline forehead skin,
                                                which 0 would teach as background)
    mask not hair, auto hair, not skin colour -> 0 (caps, hats, helmets, dark backdrops: LFW's
                                                empty masks are mostly hats, which the parsers
                                                took for hair while this was ignore)
- train, when it does not (no mesh, extreme pose, tiny face): hair -> 10, not hair -> 255
  (no source vouches for skin vs background there).
- crop pixels outside the 250x250 frame (black) -> 0 in every case, as in FaceSynthetics.
Alignment: the pipeline's tracker (face nearest the image centre: LFW labels the centred
person); if it finds nothing, the median five points of funneled LFW (measured here on 199
images), since funneled images are already roughly aligned.
"""
import hashlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from core import align
from models.data.readers.autolabel import AutoLabeler, inside_frame
from core.classes import BACKGROUND, HAIR, IGNORE, SKIN
from models.data.readers import RawSample, read_rgb
from models.perception.hair import skin_coloured

SOURCE = "lfw_hair"
VAL_PERCENT = 17  # md5 buckets: 17 of 100 gives 272 images (15.2%), 177 persons
FUNNELED_FIVE = np.array([[103.7, 114.3], [147.1, 113.3], [125.4, 145.2], [107.8, 161.0], [145.2, 159.9]],
                         np.float32)


def person_of(stem: str) -> str:
    return stem.rsplit("_", 1)[0]


def split_of_person(name: str) -> str:
    h = int(hashlib.md5(name.encode()).hexdigest(), 16) % 100
    return "val" if h < VAL_PERCENT else "train"


def combine_labels(hair: np.ndarray, inside: np.ndarray, auto: np.ndarray | None,
                   crop: np.ndarray | None = None) -> np.ndarray:
    """Partial label from a hair mask (bool), the in-frame mask (bool) and an auto label or None;
    with the crop (RGB), auto hair that the mask denies and that is not the face's skin colour
    (caps, hats, a dark backdrop) is background, not ignore."""
    if auto is None:
        label = np.full(hair.shape, IGNORE, np.uint8)
    else:
        label = np.where(((auto >= 1) & (auto <= 9)) | (auto == IGNORE), auto, BACKGROUND).astype(np.uint8)
        denied = auto == HAIR
        label[denied] = IGNORE
        if crop is not None:
            skin_like = skin_coloured(crop, (auto == SKIN).astype(np.float32)) >= 0.5
            label[denied & ~skin_like] = BACKGROUND
    label[~inside] = BACKGROUND
    label[hair] = HAIR
    return label


class LfwHairReader:
    def __init__(self, autolabel: bool = True, labeler: AutoLabeler | None = None):
        self.labeler = labeler or AutoLabeler()
        self.autolabel = autolabel
        self.drops = Counter()   # nothing is dropped; "stats" counts how labels were made
        self.stats = Counter()

    def read(self, root, limit: int | None = None):
        root = Path(root)
        for path in sorted((root / "images").glob("*.jpg"))[:limit]:
            mask_path = root / "hair_masks" / f"{path.stem}.png"
            if not mask_path.exists():
                self.drops["no_mask"] += 1
                continue
            yield self.sample(path, mask_path)

    def sample(self, path: Path, mask_path: Path) -> RawSample:
        image = read_rgb(path)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        split = split_of_person(person_of(path.stem))
        h, w = image.shape[:2]
        faces = self.labeler.finder.faces(image)
        face = min(faces, key=lambda f: np.linalg.norm(f.five.mean(0) - (w / 2, h / 2))) if faces else None
        if face is None:
            matrix, five, mesh = align.alignment_matrix(FUNNELED_FIVE), FUNNELED_FIVE, None
            self.stats["aligned_by_default_five"] += 1
        else:
            matrix, five, mesh = face.matrix, face.five, face.mesh
            self.stats[f"aligned_by_{face.source}"] += 1
        crop = align.warp_crop(image, matrix)
        hair = align.warp_crop(mask, matrix, interpolation=cv2.INTER_NEAREST) > 127
        inside = inside_frame((h, w), matrix)
        five_c = align.transform_points(five, matrix)
        mesh_c = None if mesh is None else align.transform_points(mesh, matrix)
        auto = None
        if split == "val":
            label = np.where(hair, HAIR, BACKGROUND).astype(np.uint8)
            self.stats["val_binary"] += 1
        else:
            if self.autolabel and face is not None:
                reason = self.labeler.reject_reason(face)
                if reason is None:
                    auto = self.labeler.label_face(image, face, crop, five_c, mesh_c)
                else:
                    self.stats[f"hair_only_{reason}"] += 1
            elif self.autolabel:
                self.stats["hair_only_no_face"] += 1
            label = combine_labels(hair, inside, auto, crop)
            self.stats["train_with_auto" if auto is not None else "train_hair_only"] += 1
        if not hair.any():
            self.stats["empty_mask"] += 1
        return RawSample(f"lfw_{path.stem}", split, SOURCE, "partial", crop, label, five_c, mesh_c,
                         matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]]))

    def close(self):
        self.labeler.close()

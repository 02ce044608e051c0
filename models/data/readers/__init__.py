"""Dataset readers: each yields RawSample objects in frame coordinates; `align_sample` cuts the
aligned 256x256 crop (image, label, five, mesh) that models.data.dataset.DatasetWriter stores.

Every reader is a class (models.data.build.READERS maps --from names to them) with
`read(path, limit=None) -> Iterator[RawSample]`, a `drops` Counter of skipped samples and why
(filled while iterating), optionally a `stats` Counter, and `close()`.
"""
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from core import align
from core.classes import BACKGROUND


@dataclass
class RawSample:
    id: str
    split: str
    source: str
    label_kind: str
    image: np.ndarray                 # (H, W, 3) uint8 RGB frame
    label: np.ndarray | None          # (H, W) uint8 our class ids, 255 ignore; None when unlabelled
    five: np.ndarray                  # (5, 2) frame px
    mesh: np.ndarray | None = None    # (478, 2) frame px, None when unknown
    matrix: np.ndarray | None = None  # (2, 3) frame -> crop; None = align.alignment_matrix(five)


def align_sample(raw: RawSample, size: int = align.CROP_SIZE, outside_label: int = BACKGROUND) -> dict:
    """Aligned crop of a RawSample as DatasetWriter.add keyword args. Pixels outside the
    frame are black in the image (as in the pipeline's warp_crop) and `outside_label` in the label."""
    m = raw.matrix if raw.matrix is not None else align.alignment_matrix(raw.five, size)
    crop = align.warp_crop(raw.image, m, size)
    label = None
    if raw.label is not None:
        label = cv2.warpAffine(raw.label, m, (size, size), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=int(outside_label))
    mesh = None if raw.mesh is None else align.transform_points(raw.mesh, m)
    return dict(sample_id=raw.id, split=raw.split, source=raw.source, label_kind=raw.label_kind,
                image=crop, label=label, five=align.transform_points(raw.five, m), mesh=mesh)


def read_rgb(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def remap(label: np.ndarray, table: dict, default: int = 255) -> np.ndarray:
    """Map class ids through a lookup table {source id: our id}; unknown ids -> default."""
    lut = np.full(256, default, np.uint8)
    for k, v in table.items():
        lut[k] = v
    return lut[label]


class FaceFinder:
    """The pipeline's own face tracker (models.perception.tracker, mediapipe) in still-image mode, built
    on first use, so that readers align exactly as the live pipeline does."""

    def __init__(self, max_faces: int = 4):
        self.max_faces = max_faces
        self._tracker = None

    def faces(self, image: np.ndarray) -> list:
        if self._tracker is None:
            from models.perception.tracker import FaceTracker  # mediapipe: only the build needs it
            self._tracker = FaceTracker(max_faces=self.max_faces, static_images=True)
        return self._tracker.process(image)

    def nearest(self, image: np.ndarray, five: np.ndarray | None = None):
        """The face matching `five` (within 0.5 eye distances) or, with no hint, the largest
        face; None when there is none."""
        faces = self.faces(image)
        if not faces:
            return None
        eye_dist = lambda f: float(np.linalg.norm(f[1] - f[0]))
        if five is None:
            return max(faces, key=lambda f: (f.source == "mesh", eye_dist(f.five)))
        d = [np.linalg.norm(f.five.mean(0) - five.mean(0)) / max(eye_dist(five), 1.0) for f in faces]
        best = int(np.argmin(d))
        return faces[best] if d[best] < 0.5 else None

    def close(self):
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None


LEFT_RIGHT_PAIRS = ((2, 3), (4, 5))  # (left, right) brows and eyes, our ids


def fix_left_right(label: np.ndarray) -> tuple[np.ndarray, bool]:
    """Make left/right classes mean the image's left/right whatever the dataset's convention:
    when both classes of a pair are present and the "left" one lies right of the "right" one,
    swap them. Decided on the eyes when both are visible, else on the brows; returns
    (label, swapped)."""
    for left, right in LEFT_RIGHT_PAIRS[::-1]:
        xl, xr = np.nonzero(label == left)[1], np.nonzero(label == right)[1]
        if len(xl) and len(xr):
            if xl.mean() <= xr.mean():
                return label, False
            lut = np.arange(256, dtype=np.uint8)
            for a, b in LEFT_RIGHT_PAIRS:
                lut[a], lut[b] = b, a
            return lut[label], True
    return label, False


def choose_labelled_face(faces: list, label: np.ndarray, min_fraction: float = 0.3):
    """The tracked face that the label map annotates: the one whose eye-to-mouth region is most
    covered by face classes (1..9). None when no face overlaps the annotation enough."""
    face_px = (label >= 1) & (label <= 9)
    best, best_frac = None, min_fraction
    h, w = label.shape
    for f in faces:
        centre = f.five.mean(0)
        r = max(float(np.linalg.norm(f.five[1] - f.five[0])) * 0.6, 2.0)
        x0, y0 = int(max(centre[0] - r, 0)), int(max(centre[1] - r, 0))
        x1, y1 = int(min(centre[0] + r, w)), int(min(centre[1] + r, h))
        if x1 <= x0 or y1 <= y0:
            continue
        frac = float(face_px[y0:y1, x0:x1].mean())
        if frac > best_frac:
            best, best_frac = f, frac
    return best


class TrackedReader:
    """Base for readers of labelled datasets without landmarks of their own: align each image
    with the tracked face its label map annotates; left/right classes fixed per image."""

    def __init__(self, finder: FaceFinder | None = None):
        self.finder = finder or FaceFinder()
        self.drops = Counter()
        self.stats = Counter()

    def tracked_sample(self, sample_id, split, source, label_kind, image, label) -> "RawSample | None":
        label, swapped = fix_left_right(label)
        self.stats["left_right_swapped" if swapped else "left_right_as_named"] += 1
        faces = self.finder.faces(image)
        if not faces:
            self.drops["no_face"] += 1
            return None
        face = choose_labelled_face(faces, label)
        if face is None:
            self.drops["face_not_labelled"] += 1
            return None
        self.stats[f"aligned_by_{face.source}"] += 1
        return RawSample(sample_id, split, source, label_kind, image, label, face.five, face.mesh, face.matrix)

    def close(self):
        self.finder.close()

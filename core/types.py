"""The small data types that travel between the pipeline's stages."""
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from core import channels
from core.regions import bounds


@dataclass
class Frame:
    image: np.ndarray                 # (H, W, 3) uint8 RGB
    index: int                        # 0-based position in the source
    time: float                       # seconds since the source's start
    pts: int | None = None            # presentation timestamp in time_base units (video files)
    time_base: Fraction | None = None


@dataclass
class Face:
    """One tracked face in one frame. Points are in frame pixels."""
    id: int                           # stable across frames while the face is tracked
    five: np.ndarray                  # (5, 2) see core.align for the order
    matrix: np.ndarray                # (2, 3) frame -> aligned crop (core.align.CROP_SIZE)
    mesh: np.ndarray | None = None    # (478, 2) face-mesh points; None when only the detector found it
    score: float = 1.0                # detection confidence
    source: str = "mesh"              # "mesh" or "detector"


class FaceParse:
    """A face's parse over a box of the frame: probabilities warped back from the aligned crop.

    Built from the crop's probabilities, it warps back only what is asked for: `probs` (all 11
    planes over the box, for label maps and overlays) on first use, `class_prob` the summed
    planes of a few classes over the box or a part of it (what each effect needs)."""

    def __init__(self, face: Face, box: tuple, probs: np.ndarray | None = None,
                 crop_probs: np.ndarray | None = None, whole_hair: bool = False):
        if probs is None and crop_probs is None:
            raise ValueError("FaceParse needs probs or crop_probs")
        self.face = face
        self.box = tuple(int(v) for v in box)          # (x0, y0, x1, y1) frame pixels
        self.crop_probs = crop_probs                    # (11, S, S) in the aligned crop (smoothed)
        self._probs = probs                             # (11, y1-y0, x1-x0) float32, when warped
        self._planes: dict = {}
        self.whole_hair = whole_hair                    # the box holds all of the head's hair (models.perception.hair)

    @property
    def shape(self) -> tuple:
        """(height, width) of the box."""
        x0, y0, x1, y1 = self.box
        return max(y1 - y0, 0), max(x1 - x0, 0)

    @property
    def probs(self) -> np.ndarray:
        """(11, y1-y0, x1-x0) float32 over the box: every class (warped on first use)."""
        if self._probs is None:
            from core import align
            h, w = self.shape
            self._probs = np.zeros((self.crop_probs.shape[0], h, w), np.float32)
            if h and w:
                for c, plane in enumerate(self.crop_probs):
                    self._probs[c] = align.plane_to_box(plane, self.face.matrix, self.box, outside=float(c == 0))
            self._planes.clear()
        return self._probs

    def class_bounds(self, classes, threshold: float, pad: int = 0):
        """Slices (ys, xs) of the box around where the summed probability of `classes` exceeds
        `threshold`, padded; None where it nowhere does. Found in the crop and carried into the
        frame (a little larger than the part itself when the face is tilted), so that an effect
        warps only that part back."""
        classes = tuple(classes)
        found = bounds(channels.summed(self._probs if self._probs is not None else self.crop_probs, classes),
                       threshold)
        if found is None:
            return None
        (y0, y1), (x0, x1) = (found[0].start, found[0].stop), (found[1].start, found[1].stop)
        h, w = self.shape
        if self._probs is None:   # the crop rectangle's corners in the box (+1 pixel: bilinear reaches a neighbour)
            from core import align
            corners = np.array([(x0 - 1, y0 - 1), (x1 + 1, y0 - 1), (x0 - 1, y1 + 1), (x1 + 1, y1 + 1)], np.float64)
            pts = align.transform_points(corners, align.invert(self.face.matrix)) - np.array(self.box[:2])
            x0, y0 = np.floor(pts.min(0)).astype(int)
            x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        y0, x0 = max(int(y0) - pad, 0), max(int(x0) - pad, 0)
        y1, x1 = min(int(y1) + pad, h), min(int(x1) + pad, w)
        if y1 <= y0 or x1 <= x0:
            return None
        return slice(y0, y1), slice(x0, x1)

    def class_prob(self, classes, sub=None) -> np.ndarray:
        """Summed probability of `classes` over the box, or over its part `sub` ((ys, xs) slices
        in box coordinates): a new float32 array. Warping is linear, so the crop's planes are
        summed first and warped once, and only over `sub`."""
        classes = tuple(classes)
        if self._probs is not None:
            return channels.summed(self._probs if sub is None else self._probs[:, sub[0], sub[1]], classes)
        h, w = self.shape
        ys, xs = sub if sub is not None else (slice(0, h), slice(0, w))
        ys, xs = slice(*ys.indices(h)[:2]), slice(*xs.indices(w)[:2])
        key = (classes, ys.start, ys.stop, xs.start, xs.stop)
        if key not in self._planes:
            from core import align
            x0, y0 = self.box[0] + xs.start, self.box[1] + ys.start
            rect = (x0, y0, x0 + max(xs.stop - xs.start, 0), y0 + max(ys.stop - ys.start, 0))
            if rect[2] <= rect[0] or rect[3] <= rect[1]:
                self._planes[key] = np.zeros((rect[3] - rect[1], rect[2] - rect[0]), np.float32)
            else:  # background (class 0) is 1 outside the crop, every other class 0
                plane = channels.summed(self.crop_probs, classes)
                self._planes[key] = align.plane_to_box(plane, self.face.matrix, rect, outside=float(classes.count(0)))
        return self._planes[key].copy()


@dataclass
class FrameResult:
    frame: Frame
    faces: list = field(default_factory=list)   # list[FaceParse]
    person_mask: np.ndarray | None = None       # (H, W) float32 person probability (learned tiers)
    hair: dict = field(default_factory=dict)    # face id -> models.perception.hair.HeadHair
    output: np.ndarray | None = None            # rendered RGB image
    timings: dict = field(default_factory=dict) # stage -> seconds
    classes: frozenset | None = None            # the classes parsed and smoothed (None: all)

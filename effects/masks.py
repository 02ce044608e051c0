"""Soft masks for the effects, and the per-face working region they share.

Masks come from the per-class probabilities (never the argmax), feathered by a blur that
scales with the face, so every effect fades in and out over a few pixels.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from effects.colour import clip, gaussian, rgb_to_lab
from core.align import CROP_SIZE, TEMPLATE, crop_per_frame
from core.regions import bounds


@dataclass
class FaceRegion:
    """One face's working region of the frame. Both its Lab colours and its probabilities are
    made on demand, for the parts the effects ask for: lipstick alone converts and warps the
    lips' box, not the face's. Effects edit `lab` in place (after box_lab/ensure_lab) and mark
    what they changed; render writes only those pixels back."""
    rgb: np.ndarray        # (h, w, 3) uint8 view of the region in the frame
    origin: tuple          # (x, y) of the region's top-left corner in the frame
    box_offset: tuple      # (x, y) of the parse box inside the region
    parse: object          # core.types.FaceParse: probabilities over its box, warped on demand
    mesh: np.ndarray | None  # (478, 2) in box coordinates, or None
    matrix: np.ndarray     # (2, 3) frame -> aligned crop
    eye_dist: float        # pixels between the eye centres in the frame: the face's scale
    lab: np.ndarray = None      # (h, w, 3) float32 Lab, valid where `converted`
    touched: np.ndarray = None  # (h, w) bool: pixels some effect changed
    converted: np.ndarray = None  # (h, w) bool: pixels of `lab` converted so far

    def __post_init__(self):
        h, w = self.rgb.shape[:2]
        self.lab = np.empty((h, w, 3), np.float32)   # allocated, filled only where asked
        self.touched = np.zeros((h, w), bool)
        self.converted = np.zeros((h, w), bool)

    @property
    def probs(self) -> np.ndarray:
        """(11, bh, bw) every class over the box (warps them all: prefer prob())."""
        return self.parse.probs

    @property
    def whole_hair(self) -> bool:
        """The parse's box holds all of the head's hair: nothing to grow beyond it."""
        return getattr(self.parse, "whole_hair", False)

    @property
    def box_shape(self) -> tuple:
        return self.parse.shape

    def prob(self, classes, sub=None) -> np.ndarray:
        """Summed probability of `classes` over the box or its part `sub` (box coordinates)."""
        return self.parse.class_prob(classes, sub)

    def bounds(self, classes, threshold: float, pad: int = 0):
        """The part of the box (ys, xs) where `classes` exceed `threshold`, padded (or None)."""
        return self.parse.class_bounds(classes, threshold, pad)

    @property
    def box_slice(self):
        ox, oy = self.box_offset
        h, w = self.box_shape
        return slice(oy, oy + h), slice(ox, ox + w)

    def lab_at(self, ys: slice, xs: slice) -> np.ndarray:
        """The Lab view of region[ys, xs], converted from RGB where not done yet (only the
        bounding box of those pixels: effects' regions overlap, mostly at their edges)."""
        lab, converted = self.lab[ys, xs], self.converted[ys, xs]
        missing = ~converted
        todo = (slice(None), slice(None)) if missing.all() else bounds(missing, 0.5)
        if todo is not None:
            new = rgb_to_lab(self.rgb[ys, xs][todo])
            part, done = lab[todo], converted[todo]
            if done.any():
                new = cv2.copyTo(part, done.view(np.uint8), new)   # keep the Lab effects edited
            part[...] = new
            done[...] = True
        return lab

    def ensure_lab(self, rows: int) -> None:
        """Convert the region's rows above `rows` (all columns) to Lab, if not done yet."""
        self.lab_at(slice(0, rows), slice(None))

    def box_lab(self, sub=None) -> np.ndarray:
        """Lab of the box, or of its part `sub` ((ys, xs) in box coordinates), converted."""
        ys, xs = self.box_slice
        if sub is not None:
            ys = slice(ys.start + sub[0].start, ys.start + sub[0].stop)
            xs = slice(xs.start + sub[1].start, xs.start + sub[1].stop)
        return self.lab_at(ys, xs)

    def mark(self, weight: np.ndarray, sub) -> None:
        """Record which pixels of the box sub-region `sub` an effect changed."""
        ys, xs = self.box_slice
        tys, txs = sub
        view = self.touched[ys, xs][tys, txs]
        view |= weight > (0.5 / 255.0)


def face_scale(matrix: np.ndarray) -> float:
    """Eye distance in frame pixels, from the alignment (works for detector-only faces too)."""
    return (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * CROP_SIZE / crop_per_frame(matrix)


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    return mask if sigma < 0.3 else gaussian(mask, sigma, cv2.BORDER_CONSTANT)


def polygon(shape: tuple, points: np.ndarray, origin=(0, 0)) -> np.ndarray:
    """Filled polygon (float32 0/1, anti-aliased) of points given relative to `origin`."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round((np.asarray(points, np.float64) - origin) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) * (1.0 / 255.0)


def ellipse(shape: tuple, centre, axis_u, sigma_u: float, sigma_v: float, origin=(0, 0)) -> np.ndarray:
    """Gaussian blob exp(-(u^2/su^2 + v^2/sv^2)/2) with u along the unit vector axis_u."""
    h, w = shape
    xs = np.arange(w, dtype=np.float32) + (origin[0] - centre[0])
    ys = np.arange(h, dtype=np.float32) + (origin[1] - centre[1])
    ux, uy = float(axis_u[0]), float(axis_u[1])
    u = xs[None, :] * ux + ys[:, None] * uy
    v = ys[:, None] * ux - xs[None, :] * uy
    return np.exp(-0.5 * ((u / sigma_u) ** 2 + (v / sigma_v) ** 2)).astype(np.float32)


def resample(points: np.ndarray, n: int) -> np.ndarray:
    """n points evenly spaced by arc length along a polyline (K, 2)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, t[-1], n)
    return np.stack([np.interp(s, t, points[:, 0]), np.interp(s, t, points[:, 1])], 1)


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = clip((x - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)

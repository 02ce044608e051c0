"""Soft masks for the effects, and the per-face working region they share.

Masks come from the per-class probabilities (never the argmax), feathered by a blur that
scales with the face, so every effect fades in and out over a few pixels.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from effects.colour import clip, gaussian, rgb_to_lab
from core.align import CROP_SIZE, TEMPLATE


@dataclass
class FaceRegion:
    """One face's working region of the frame, converted to Lab once; effects edit `lab` in place.
    Rows below `lab_rows` (the hair's extension below the box) are converted on demand."""
    lab: np.ndarray        # (h, w, 3) float32 Lab of the region (valid above lab_rows)
    origin: tuple          # (x, y) of the region's top-left corner in the frame
    box_offset: tuple      # (x, y) of the parse box inside the region
    probs: np.ndarray      # (11, bh, bw) the parse's probabilities over its box (or the face's part of it)
    mesh: np.ndarray | None  # (478, 2) in the coordinates of `probs`, or None
    matrix: np.ndarray     # (2, 3) frame -> aligned crop
    eye_dist: float        # pixels between the eye centres in the frame: the face's scale
    touched: np.ndarray    # (h, w) bool: pixels some effect changed
    rgb: np.ndarray | None = None  # (h, w, 3) uint8 of the region, for the rows converted later
    lab_rows: int | None = None    # rows of `lab` converted so far (None: all)
    whole_hair: bool = False       # probs hold all of the head's hair: nothing to grow beyond the box

    def ensure_lab(self, rows: int) -> None:
        """Convert the region's rows up to `rows` to Lab, if not done yet."""
        if self.lab_rows is not None and rows > self.lab_rows:
            self.lab[self.lab_rows:rows] = rgb_to_lab(self.rgb[self.lab_rows:rows])
            self.lab_rows = rows

    @property
    def box_slice(self):
        ox, oy = self.box_offset
        h, w = self.probs.shape[1:]
        return slice(oy, oy + h), slice(ox, ox + w)

    def box_lab(self):
        return self.lab[self.box_slice]

    def mark(self, weight: np.ndarray, sub) -> None:
        """Record which pixels of the box sub-region `sub` an effect changed."""
        ys, xs = self.box_slice
        tys, txs = sub
        view = self.touched[ys, xs][tys, txs]
        view |= weight > (0.5 / 255.0)


def face_scale(matrix: np.ndarray) -> float:
    """Eye distance in frame pixels, from the alignment (works for detector-only faces too)."""
    crop_per_frame = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))
    return (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * CROP_SIZE / max(crop_per_frame, 1e-6)


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    return mask if sigma < 0.3 else gaussian(mask, sigma, cv2.BORDER_CONSTANT)


def class_prob(probs: np.ndarray, classes) -> np.ndarray:
    out = probs[classes[0]].copy()
    for c in classes[1:]:
        out += probs[c]
    return out


def bounds(mask: np.ndarray, threshold: float = 0.01, pad: int = 0):
    """Slices (ys, xs) of the bounding box of mask > threshold, padded; None when empty."""
    rows = np.flatnonzero((mask > threshold).any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((mask[rows[0]:rows[-1] + 1] > threshold).any(0))
    h, w = mask.shape
    return (slice(max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, h)),
            slice(max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, w)))


def points_bounds(points: np.ndarray, pad: float, shape: tuple):
    """Slices (ys, xs) around points (N, 2) in box coordinates, padded; None when off the box."""
    h, w = shape
    x0, y0 = np.floor(points.min(0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


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

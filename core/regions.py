"""Bounding boxes of masks: the part of a face's box where an effect, the hair fusion or a
photo's refinement needs to work."""
import cv2
import numpy as np


def bounds(mask: np.ndarray, threshold: float = 0.01, pad: int = 0):
    """Slices (ys, xs) of the bounding box of mask > threshold (of a bool mask: its True
    pixels), padded and kept inside the mask; None when it is empty."""
    rows = np.flatnonzero((mask > threshold).any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((mask[rows[0]:rows[-1] + 1] > threshold).any(0))
    h, w = mask.shape
    return (slice(max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, h)),
            slice(max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, w)))


def bounds_of_any(planes, threshold: float = 0.01, pad: int = 0):
    """bounds() of where any of the (H, W) planes exceeds `threshold` (their pixelwise maximum)."""
    peak = planes[0]
    for plane in planes[1:]:
        peak = cv2.max(peak, plane)
    return bounds(peak, threshold, pad)


def points_bounds(points: np.ndarray, pad: float, shape: tuple):
    """Slices (ys, xs) around points (N, 2) in box coordinates, padded and kept inside a box of
    `shape` (h, w); None when off the box."""
    h, w = shape
    x0, y0 = np.floor(points.min(0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)

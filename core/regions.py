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

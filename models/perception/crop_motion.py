"""Image motion between consecutive aligned crops of one face (dense optical flow).

A five-point alignment takes out where the head is, not how it turns or how the mouth moves,
so a face's labels still move inside its crop. The smoother moves its memory along with the
face before blending, and the flicker meter compares labels with where they were a frame ago.
"""
import cv2
import numpy as np


class CropFlow:
    """DIS optical flow (OpenCV, preset FAST: ~1 ms at 256x256 on one CPU core).
    One instance per user: the OpenCV object is not meant to be shared between threads."""

    def __init__(self):
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._grid = None

    def sample_map(self, gray: np.ndarray, prev_gray: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32: for each pixel of `gray`, where it was in `prev_gray`."""
        flow = self._dis.calc(gray, prev_gray, None)
        if self._grid is None or self._grid.shape != flow.shape:
            h, w = gray.shape
            self._grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
        return flow + self._grid


def gray(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def pull_labels(label: np.ndarray, sample_map: np.ndarray) -> np.ndarray:
    """(H, W) uint8 label map moved to the current crop (nearest label)."""
    return cv2.remap(label.astype(np.uint8), sample_map, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)

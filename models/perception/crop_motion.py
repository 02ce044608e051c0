"""Image motion between consecutive aligned crops of one face (dense optical flow).

A five-point alignment takes out where the head is, not how it turns or how the mouth moves,
so a face's labels still move inside its crop. The smoother moves its memory along with the
face before blending, and the flicker meter compares labels with where they were a frame ago.
"""
import cv2
import numpy as np


class CropFlow:
    """Dense optical flow between crops: "dis" (OpenCV's DIS, preset FAST: ~1 ms at 256x256 on one
    CPU core; the smoother's) or "farneback" (Farnebäck's polynomial expansion, a different
    method: the flicker meter's independent check on the smoother, ~10x slower).
    One instance per user: the OpenCV object is not meant to be shared between threads."""

    def __init__(self, method: str = "dis"):
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown optical flow {method!r}: dis or farneback")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST) if method == "dis" else None
        self._grid = None

    def sample_map(self, gray: np.ndarray, prev_gray: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32: for each pixel of `gray`, where it was in `prev_gray`."""
        if self._dis is not None:
            flow = self._dis.calc(gray, prev_gray, None)
        else:   # OpenCV's documented example parameters
            flow = cv2.calcOpticalFlowFarneback(gray, prev_gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        if self._grid is None or self._grid.shape != flow.shape:
            h, w = gray.shape
            self._grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
        return flow + self._grid


def gray(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def pull_labels(label: np.ndarray, sample_map: np.ndarray) -> np.ndarray:
    """(H, W) uint8 label map moved to the current crop (nearest label)."""
    return cv2.remap(label.astype(np.uint8), sample_map, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)

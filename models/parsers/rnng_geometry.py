"""RNN-G's component layout and the numpy geometry its torch-free CPU path needs.

Shared by the network (models.parsers.rnng, torch: training, GPU) and its ONNX Runtime path
(models.parsers.rnng_ort, no torch): where the four component crops sit, which classes they
carry, and torch's bilinear resizing with antialias, which the ONNX Runtime path reproduces in
numpy and OpenCV.
"""
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from core.align import template_points
from core.classes import INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NOSE, RIGHT_BROW, RIGHT_EYE, UPPER_LIP


@dataclass(frozen=True)
class Component:
    """A crop placed by the five points, in units of the face scale d, in the face frame
    (u along the eye line, v down): centre = anchor + d (a u' + b v), half sizes (ha, hb)."""
    net: str
    anchor: str             # "left_eye" | "right_eye" | "nose" | "mouth"
    centre: tuple           # (a, b)
    half: tuple             # (ha, hb)
    size: tuple             # (height, width) in pixels
    classes: tuple          # our class ids, in the net's output order after "other"
    mirror: bool = False    # crop mirrored (u' = -u) so one net serves both sides


# Boxes: the 10-90th percentile part extents on the 64 FaceSynthetics train faces, measured
# once in the face frame (brow+eye from its eye centre, nose from the nose point, lips from
# the mouth centre), plus the paper's 20% margin, squared or 2:1 to keep the aspect ratio of
# the network input (sec. 5.1). They hold 98-100% of each part's pixels on every source.
COMPONENTS = {
    "nose": Component("nose", "nose", (0.0, -0.37), (0.57, 0.57), (64, 64), (NOSE,)),
    "left_eye": Component("eye", "left_eye", (0.02, -0.15), (0.55, 0.55), (64, 64), (LEFT_BROW, LEFT_EYE)),
    "right_eye": Component("eye", "right_eye", (0.02, -0.15), (0.55, 0.55), (64, 64), (RIGHT_BROW, RIGHT_EYE), True),
    "mouth": Component("mouth", "mouth", (0.0, 0.04), (0.84, 0.42), (32, 64), (UPPER_LIP, INNER_MOUTH, LOWER_LIP)),
}
COMPONENT_NETS = {"eye": 3, "nose": 2, "mouth": 4}  # outputs: "other" + the part classes
# Nose and mouth are left-right symmetric: at inference their nets also parse the mirrored
# crop and the two answers are averaged (FaceSynthetics val: inner mouth 0.773 -> 0.807, lower
# lip 0.779 -> 0.800, under 1 ms a face). Eye crops are always seen in one orientation (the right
# one is mirrored to look like the left), so a mirrored eye crop would be new to the net.
MIRROR_AVERAGED = ("nose", "mouth")
FEATHER = 0.2  # crop border band (fraction of the half size) over which stage 2 fades out
MEAN = (0.5, 0.45, 0.4)  # input normalisation (RGB in [0, 1])
STD = (0.25, 0.25, 0.25)


def template_five(size: int) -> np.ndarray:
    """Five points of the alignment template (corners spread 0.35 of the eye distance)."""
    (lx, ly), (rx, ry), (mx, my) = template_points(size)
    spread = 0.35 * (rx - lx)
    nose = (mx, (ly + my) / 2 + 0.05 * size)
    return np.array([(lx, ly), (rx, ry), nose, (mx - spread, my), (mx + spread, my)], np.float32)


def face_frame(five: np.ndarray, size: int):
    """numpy twin of rnng.face_frame for one face's (5, 2) points: anchors, eye-line axis u,
    its normal v and face scale d (unknown or degenerate points: the template)."""
    five = np.where(np.isnan(five), template_five(size), np.asarray(five, np.float32))
    if np.linalg.norm(five[1] - five[0]) < 0.02 * size:
        five = template_five(size)
    mouth = (five[3] + five[4]) / 2
    eye_vec = five[1] - five[0]
    eye_dist = max(float(np.linalg.norm(eye_vec)), 1e-3)
    u = eye_vec / eye_dist
    v = np.array([-u[1], u[0]], np.float32)
    d = max(eye_dist, float(np.linalg.norm(mouth - (five[0] + five[1]) / 2)) / 1.1)
    return {"left_eye": five[0], "right_eye": five[1], "nose": five[2], "mouth": mouth}, u, v, d


def crop_axes(comp: Component, frame) -> np.ndarray:
    """(3, 2): the crop's centre and its half axes in input pixels: crop coordinates (s, t) in
    [-1, 1] sit at centre + s axis_s + t axis_t (rnng.crop_theta, before normalising)."""
    anchors, u, v, d = frame
    a, b = comp.centre
    us = -u if comp.mirror else u
    centre = anchors[comp.anchor] + d * (a * us + b * v)
    return np.stack([centre, us * comp.half[0] * d, v * comp.half[1] * d]).astype(np.float32)


@lru_cache(maxsize=None)
def resize_taps(size_in: int, size_out: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (size_out, K) of torch's bilinear resize (align_corners=False):
    a triangle filter, widened by the scale when shrinking with antialias."""
    scale = size_in / size_out
    support = max(scale, 1.0) if antialias else 1.0
    centres = scale * (np.arange(size_out) + 0.5)
    first = np.maximum((centres - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centres + support + 0.5).astype(np.int64), size_in)
    taps = int((last - first).max())
    index = first[:, None] + np.arange(taps)
    weight = np.clip(1 - np.abs((index - centres[:, None] + 0.5) / support), 0, None) * (index < last[:, None])
    weight /= weight.sum(1, keepdims=True)
    return np.minimum(index, size_in - 1), weight.astype(np.float32)


@lru_cache(maxsize=None)
def _halving_norm(size: int) -> np.ndarray:
    """1 / the summed taps of `_halve` per output pixel (size, size, 1): 1 inside, 8/7 on the
    edge rows and columns, where torch drops the tap beyond the image and renormalises."""
    ones = np.ones((2 * size, 2 * size), np.float32)
    return (1 / _halve_unnormalised(ones))[..., None]


def _halve_unnormalised(image: np.ndarray) -> np.ndarray:
    # taps (1, 3, 3, 1) / 8 = a (1, 2, 1) / 4 blur, then the mean of each 2x2 block; zeros outside
    k = np.array([0.25, 0.5, 0.25], np.float32)
    blurred = cv2.sepFilter2D(image, cv2.CV_32F, k, k, borderType=cv2.BORDER_CONSTANT)
    return cv2.resize(blurred, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


def resize(image: np.ndarray, size: int, antialias: bool = True) -> np.ndarray:
    """(H, W, C) float image -> (size, size, C), as F.interpolate(mode="bilinear", antialias=...)."""
    if antialias and image.shape[:2] == (2 * size, 2 * size) and image.ndim == 3 and image.shape[2] <= 4:
        # halving (RNN-G's 256 -> 128 input): the same taps by OpenCV, 3x faster than below
        return _halve_unnormalised(np.asarray(image, np.float32)) * _halving_norm(size)
    for axis in (0, 1):
        index, weight = resize_taps(image.shape[axis], size, antialias)
        shape = [1, 1, 1]
        shape[axis] = size
        out = 0
        for k in range(index.shape[1]):
            out = out + np.take(image, index[:, k], axis) * weight[:, k].reshape(shape)
        image = out
    return image.astype(np.float32)

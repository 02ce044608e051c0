"""Photos: the brows and lips re-decided with the photo's own colours.

A brow is dark hair on skin and a lip is red on skin, but at the parsers' 256x256 crop a brow is
a few pixels high and its tail fades: the parse's outline is too wide in places and misses
thin hair in others. After the edge snap, each brow and lip is given a colour model fitted on
this face alone: a Gaussian in CIE Lab of the part's confident pixels (p > FG) and one of the
confident other pixels around it (p < BG). Each pixel's log-likelihood ratio between the two,
clipped, times ALPHA, is added to the part's log-odds near the part; the other classes share
the rest in their own proportions, so the planes still sum to one.

Chosen on FaceSynthetics' validation faces and half of the hand-outlined parts dev set (the
other half and LFW were only read; README "Accuracy"): ALPHA 0.5, FG 0.5, BG 0.2, the
model's box the part's (p > 0.3) padded by 3 crop pixels. The eyes are left alone: their
eyeball is white and dark at once, and the same rule lost 0.02-0.05 F1 on the real eyes.
"""
import cv2
import numpy as np

from core.classes import LEFT_BROW, LOWER_LIP, RIGHT_BROW, SKIN, UPPER_LIP
from core.regions import bounds

PARTS = (LEFT_BROW, RIGHT_BROW, UPPER_LIP, LOWER_LIP)
ALPHA = 0.5        # weight of the colour evidence (log-likelihood ratio) against the parse's log-odds
FG, BG = 0.5, 0.2  # the part's own pixels / the pixels around it that fit the two colour models
CLIP = 6.0         # a colour alone never outvotes the parse by more than e^(0.5 * 6) = 20 : 1
PAD = 3            # crop pixels around the part where its colours are fitted and applied
NEAR = 0.02        # only where the parse gives the part at least this (dilated by a pixel)
MIN_PIXELS = 5     # fewer pixels on either side: no model, the part is left as it is


def refine(probs: np.ndarray, rgb: np.ndarray, frame_per_crop: float) -> np.ndarray:
    """(C, h, w) class probabilities over a face's box, the brows and lips re-weighed by the
    colours of its (h, w, 3) uint8 RGB pixels; in place (the result is `probs`)."""
    pad = max(1, int(round(PAD * frame_per_crop)))
    for c in PARTS:
        sub = bounds(probs[c], 0.3, pad)   # the part, padded
        if sub is not None:
            _reweigh(probs[(slice(None),) + sub], c, rgb[sub])
    return probs


def _reweigh(probs: np.ndarray, c: int, rgb: np.ndarray) -> None:
    part = probs[c]
    fg, bg = part > FG, part < BG
    if fg.sum() < MIN_PIXELS or bg.sum() < MIN_PIXELS:
        return
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    evidence = _log_likelihood(lab, lab[fg.ravel()]) - _log_likelihood(lab, lab[bg.ravel()])
    near = cv2.dilate((part > NEAR).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    evidence = np.clip(evidence.reshape(part.shape), -CLIP, CLIP) * (ALPHA * near)
    p = np.clip(part, 1e-4, 1.0 - 1e-4)
    new = 1.0 / (1.0 + (1.0 - p) / p * np.exp(-evidence))   # sigmoid(log-odds + evidence)
    rest = probs.sum(0) - part                               # the other classes' share
    share = np.divide(1.0 - new, rest, out=np.zeros_like(rest), where=rest > 1e-6)
    for k in range(probs.shape[0]):
        if k != c:
            probs[k] *= share
    probs[SKIN] += np.where(rest > 1e-6, 0.0, 1.0 - new)     # nothing else there: the rest is skin
    probs[c] = new


def _log_likelihood(x: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Log-density of the rows of x under a Gaussian fitted to `sample` (both (n, 3) Lab in
    OpenCV's 8-bit scale), its covariance widened by 2 levels so a flat region stays finite."""
    mean = sample.mean(0)
    d = sample - mean
    cov = d.T @ d / len(sample) + 4.0 * np.eye(3, dtype=np.float32)
    inv = np.linalg.inv(cov).astype(np.float32)
    d = x - mean
    return -0.5 * ((d @ inv * d).sum(1) + np.log(np.linalg.det(cov)))

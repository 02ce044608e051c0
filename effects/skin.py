"""Skin smoothing: an edge-preserving guided filter (He et al. 2013; the fast subsampled form of
He & Sun 2015) on the skin's box only, blended in by the skin probability, so eyes, brows,
lips and the jaw line keep their edges."""
import cv2
import numpy as np

from effects.colour import clip
from effects.masks import FaceRegion, feather
from effects.spec import EffectParams
from core.classes import NOSE, SKIN

EPS = 5.0 ** 2      # L variations below about 5 (of 100) count as texture and are smoothed
KEEP = 0.15         # even at full strength some pore texture stays: skin, not plastic


def apply(region: FaceRegion, p: EffectParams) -> None:
    s = region.eye_dist
    sub = region.bounds((SKIN, NOSE), 0.5, pad=2)
    if sub is None:
        return
    # only well inside the skin: the soft edge stops short of eyes, lips and the hairline
    mask = clip((feather(region.prob((SKIN, NOSE), sub), 0.02 * s) - 0.5) * 2.5, 0.0, 1.0)
    lab = region.box_lab(sub)
    radius = max(2, int(round(0.07 * s)))
    smooth = guided_filter(np.ascontiguousarray(lab[..., 0]), lab, radius, EPS, max(1, round(radius / 3)))
    weight = mask * (p.strength * (1.0 - KEEP))
    smooth -= lab                # in place: no more face-sized temporaries (each costs page faults)
    smooth *= weight[..., None]
    lab += smooth
    region.mark(weight, sub)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, factor: int = 1) -> np.ndarray:
    """Guided filter of src (h, w, c) by a one-channel guide (h, w); the linear coefficients are
    computed `factor` times smaller and upsampled (He & Sun 2015, "Fast Guided Filter")."""
    h, w = guide.shape
    g, p, r = guide, src, radius
    if factor > 1:
        size = ((w + factor - 1) // factor, (h + factor - 1) // factor)
        g = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
        p = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        r = max(1, radius // factor)
    k = (2 * r + 1, 2 * r + 1)
    mean_g = cv2.blur(g, k)
    var_g = cv2.blur(g * g, k) - mean_g * mean_g
    mean_p = cv2.blur(p, k)
    cov = cv2.blur(p * g[..., None], k) - mean_p * mean_g[..., None]
    a = cov / (var_g + eps)[..., None]
    b = mean_p - a * mean_g[..., None]
    a, b = cv2.blur(a, k), cv2.blur(b, k)
    if factor > 1:
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)
    a *= guide[..., None]
    a += b
    return a

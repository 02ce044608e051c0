"""Lipstick: the lip probabilities recoloured in Lab, with a matte or gloss finish."""
import cv2
import numpy as np

from effects.colour import blur, clip, colour_lab, recolour
from effects.masks import FaceRegion, feather
from effects.spec import EffectParams
from core import channels
from core.classes import LOWER_LIP, UPPER_LIP

L_PULL = 0.8   # how far the lips' local lightness moves toward the lipstick's


def apply(region: FaceRegion, p: EffectParams) -> None:
    s = region.eye_dist
    sub = region.bounds((UPPER_LIP, LOWER_LIP), 0.02, pad=int(0.1 * s) + 2)
    if sub is None:
        return
    mask = feather(region.prob((UPPER_LIP, LOWER_LIP), sub), 0.02 * s)
    lab = region.box_lab(sub)
    original_l = lab[..., 0].copy()
    weight = mask * p.strength
    recolour(lab, weight, colour_lab(p.colour), L_PULL, sigma=0.06 * s)
    if p.finish == "gloss":
        _gloss(lab, original_l, mask, weight, s)
    else:
        _matte(lab, weight, s)
    region.mark(weight, sub)


def _gloss(lab, original_l, mask, weight, s) -> None:
    """Specular highlights where the lips are already lit: the brightest part of the lip
    shading (relative to the lips' own mean and spread) is pushed toward white."""
    inside = mask > 0.5
    if inside.sum() < 8:
        return
    mean, std = float(original_l[inside].mean()), float(original_l[inside].std()) + 1.0
    lit = clip((original_l - mean) / std - 0.3, 0.0, 2.0) * 0.5   # 0..1
    shine = blur(lit * lit, 0.015 * s) * weight
    L, A, B = channels.split(lab)   # contiguous planes: numpy on the strided Lab was 2-3x slower
    L += shine * 0.7 * (100.0 - L)
    fade = 1.0 - 0.6 * shine
    A *= fade
    B *= fade
    # a little more contrast in the lip lines: the wet look
    detail = L - blur(L, 0.04 * s)
    L += 0.25 * weight * detail
    cv2.merge((L, A, B), dst=lab)


def _matte(lab, weight, s) -> None:
    """Flatten the highlights: the positive part of the lightness detail is mostly removed."""
    L = lab[..., 0]
    detail = L - blur(L, 0.06 * s)
    L -= 0.6 * weight * np.maximum(detail, 0.0)

"""Teeth whitening: inside the mouth, on the bright low-saturation pixels only (teeth, not
tongue or gums): less yellow (b*), less red (a*), a little lighter (L)."""
import numpy as np

from effects.masks import FaceRegion, feather, smoothstep
from effects.spec import EffectParams
from core.classes import INNER_MOUTH


def apply(region: FaceRegion, p: EffectParams) -> None:
    s = region.eye_dist
    sub = region.bounds((INNER_MOUTH,), 0.05, pad=2)
    if sub is None:
        return
    mouth = region.prob((INNER_MOUTH,), sub)
    lab = region.box_lab(sub)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    inside = mouth > 0.5
    # "bright" relative to this mouth: teeth in shadow are still the brightest thing inside it
    ref = float(np.percentile(L[inside], 90)) if inside.sum() > 8 else 70.0
    bright = smoothstep(L, 0.55 * ref, 0.85 * ref)
    pale = 1.0 - smoothstep(np.hypot(a, b * 0.7), 14.0, 28.0)  # gums and tongue are red: a* high
    weight = feather(mouth, 0.01 * s) * bright * pale * p.strength
    L += weight * 0.35 * (100.0 - L)
    a -= weight * 0.6 * a
    b -= weight * (0.85 * b + 1.0)  # a touch past neutral: white reads slightly cool
    region.mark(weight, sub)

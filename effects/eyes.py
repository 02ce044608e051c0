"""Eyeshadow (the lid between the lash line and the brow, from the face mesh) and brow tint
(from the brow probabilities)."""
import numpy as np

from effects.colour import clip, colour_lab, recolour
from core.regions import points_bounds
from effects.masks import FaceRegion, feather, polygon, resample
from effects.spec import EffectParams
from core.classes import LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
from core.mesh import LEFT_EYE_UPPER, RIGHT_EYE_UPPER

# lower edge of each brow, outer end first (mediapipe face-mesh indices, image left/right)
LEFT_BROW_LOWER = (46, 53, 52, 65, 55)
RIGHT_BROW_LOWER = (276, 283, 282, 295, 285)
# how far up toward the brow the shadow reaches, at the outer and the inner end of the lid
REACH_OUTER, REACH_INNER = 0.6, 0.35
AVOID = (LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW)


def eyeshadow(region: FaceRegion, p: EffectParams) -> None:
    if region.mesh is None:
        return  # needs landmarks: skipped for detector-only faces
    m, s = region.mesh, region.eye_dist
    target = colour_lab(p.colour)
    for lid_idx, brow_idx in ((LEFT_EYE_UPPER, LEFT_BROW_LOWER), (RIGHT_EYE_UPPER[::-1], RIGHT_BROW_LOWER)):
        lid = resample(m[list(lid_idx)], 12)          # outer corner -> inner corner
        brow = resample(m[list(brow_idx)], 12)
        reach = np.linspace(REACH_OUTER, REACH_INNER, 12)[:, None]
        top = lid + reach * (brow - lid)
        low = lid + 0.5 * reach * (brow - lid)
        # a short wing past the outer corner, up and out along the lid's direction
        out_dir = (lid[0] - lid[-1]) / (np.linalg.norm(lid[0] - lid[-1]) + 1e-6)
        wing = lid[0] + 0.12 * s * out_dir + 0.3 * (top[0] - lid[0])
        sub = points_bounds(np.vstack([lid, top, wing[None]]), 0.25 * s, region.box_shape)
        if sub is None:
            continue
        origin = (sub[1].start, sub[0].start)
        shape = (sub[0].stop - sub[0].start, sub[1].stop - sub[1].start)
        # denser near the lash line: the lower half of the lid counts twice
        shade = (0.55 * polygon(shape, np.vstack([lid, top[::-1], wing[None]]), origin)
                 + 0.45 * polygon(shape, np.vstack([lid, low[::-1], wing[None]]), origin))
        # never on the eye itself nor on the brow
        avoid = clip(1.5 * feather(region.prob(AVOID, sub), 0.02 * s), 0.0, 1.0)
        weight = feather(shade, 0.07 * s) * (1.0 - avoid) * p.strength
        recolour(region.box_lab(sub), weight, target, l_pull=0.35, sigma=0.05 * s, chroma=0.8)
        region.mark(weight, sub)


def brows(region: FaceRegion, p: EffectParams) -> None:
    s = region.eye_dist
    sub = region.bounds((LEFT_BROW, RIGHT_BROW), 0.02, pad=int(0.05 * s) + 2)
    if sub is None:
        return
    weight = feather(region.prob((LEFT_BROW, RIGHT_BROW), sub), 0.015 * s) * p.strength
    recolour(region.box_lab(sub), weight, colour_lab(p.colour), l_pull=0.5, sigma=0.04 * s, chroma=0.8)
    region.mark(weight, sub)

"""Blush: a soft ellipse on each cheek apple, placed from the face mesh and limited to skin."""
import numpy as np

from effects.colour import clip, colour_lab, recolour
from core.regions import points_bounds
from effects.masks import FaceRegion, ellipse, feather
from effects.spec import EffectParams
from core.classes import LEFT_EYE, RIGHT_EYE, SKIN
from core.mesh import LEFT_CHEEK_PTS, RIGHT_CHEEK_PTS

PEAK = 0.8   # the blush never fully replaces the skin's colour


def apply(region: FaceRegion, p: EffectParams) -> None:
    if region.mesh is None:
        return  # needs landmarks: skipped for detector-only faces
    m, s = region.mesh, region.eye_dist
    across = m[263] - m[33]                                  # outer eye corners, image left -> right
    across /= np.linalg.norm(across) + 1e-6
    up = np.array([across[1], -across[0]])                   # toward the forehead
    target = colour_lab(p.colour)
    for idx, outward in ((LEFT_CHEEK_PTS, -across), (RIGHT_CHEEK_PTS, across)):
        centre = m[list(idx)].mean(0) + 0.1 * s * outward
        axis = outward + 0.45 * up                           # swept up toward the temple
        axis /= np.linalg.norm(axis)
        sub = points_bounds(centre[None], 0.8 * s, region.box_shape)
        if sub is None:
            continue
        origin = (sub[1].start, sub[0].start)
        shape = (sub[0].stop - sub[0].start, sub[1].stop - sub[1].start)
        blob = ellipse(shape, centre, axis, 0.3 * s, 0.18 * s, origin)
        # keep a gap below the lower lid: blush sits on the cheekbone, not on the eye
        away = 1.0 - clip(3.0 * feather(region.prob((LEFT_EYE, RIGHT_EYE), sub), 0.08 * s), 0.0, 1.0)
        weight = blob * feather(region.prob((SKIN,), sub), 0.03 * s) * away * (PEAK * p.strength)
        recolour(region.box_lab(sub), weight, target, l_pull=0.25, sigma=0.1 * s, chroma=0.7)
        region.mark(weight, sub)

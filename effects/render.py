"""Render the enabled effects onto a frame: each face's region is converted to Lab once, every
effect edits it in place, and only the pixels some effect touched are written back."""
import time

import cv2
import numpy as np

from effects import cheeks, eyes, hair, lips, skin, teeth
from effects.colour import lab_to_rgb, rgb_to_lab
from effects.masks import FaceRegion, bounds, face_scale
from effects.spec import EffectSettings
from core.classes import BACKGROUND, HAIR

# in EFFECT_NAMES order: the skin is smoothed before colour goes on it
APPLY = {"smooth": skin.apply, "blush": cheeks.apply, "eyeshadow": eyes.eyeshadow, "brows": eyes.brows,
         "lipstick": lips.apply, "teeth": teeth.apply, "hair": hair.apply}


def render(frame: np.ndarray, parses: list, settings: EffectSettings, timings: dict | None = None) -> np.ndarray:
    """A new RGB frame with the effects of `settings` on every parsed face (the input is not
    modified). `timings`, when given, collects seconds per effect summed over faces."""
    out = frame.copy()
    active = settings.active()
    if not active:
        return out
    for parse in parses:
        _render_face(out, parse, settings, active, timings)
    return out


def _render_face(out, parse, settings, active, timings) -> None:
    x0, y0, x1, y1 = parse.box
    if x1 <= x0 or y1 <= y0 or parse.probs.size == 0:
        return
    probs = parse.probs
    if "hair" in active:   # the hair may grow below and beside the box (unless the box holds it all)
        rx0, ry0, rx1, ry1 = parse.box if parse.whole_hair else hair.extended_box(parse.box, out.shape[:2])
    else:                  # only the face's own pixels: the box minus its hair and background margin
        sub = bounds(1.0 - probs[BACKGROUND] - probs[HAIR], 0.01, pad=2)
        if sub is None:
            return
        probs = probs[:, sub[0], sub[1]]
        x0, y0 = x0 + sub[1].start, y0 + sub[0].start
        rx0, ry0, rx1, ry1 = x0, y0, x0 + probs.shape[2], y0 + probs.shape[1]
    rgb = out[ry0:ry1, rx0:rx1]
    # Lab for the box's rows now; the hair converts the rows below when it grows into them
    rows = y0 - ry0 + probs.shape[1]
    lab = np.empty(rgb.shape, np.float32)
    lab[:rows] = rgb_to_lab(rgb[:rows])
    mesh = None if parse.face.mesh is None else np.asarray(parse.face.mesh, np.float32) - (x0, y0)
    region = FaceRegion(lab=lab, origin=(rx0, ry0), box_offset=(x0 - rx0, y0 - ry0),
                        probs=probs, mesh=mesh, matrix=parse.face.matrix, eye_dist=face_scale(parse.face.matrix),
                        touched=np.zeros(rgb.shape[:2], bool), rgb=rgb, lab_rows=rows,
                        whole_hair=parse.whole_hair)
    for name in active:
        t = time.perf_counter() if timings is not None else 0.0
        APPLY[name](region, settings.params(name))
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
    changed = bounds(region.touched, 0.5)
    if changed is not None:   # back to RGB only where some effect wrote
        dst = rgb[changed]
        mask = np.ascontiguousarray(region.touched[changed]).view(np.uint8)
        dst[...] = cv2.copyTo(lab_to_rgb(region.lab[changed]), mask, dst.copy())  # numpy's where= is 50x slower

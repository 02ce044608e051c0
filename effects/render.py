"""Render the enabled effects onto a frame in one pass per face: the face's region is converted to
Lab only where some effect works (lazily, once per pixel), its probabilities are warped back
from the crop only for the classes and parts the effects ask for, every effect edits the Lab
in place, and only the pixels some effect touched go back to RGB."""
import time

import cv2
import numpy as np

from effects import cheeks, eyes, hair, lips, skin, teeth
from effects.colour import lab_to_rgb
from effects.masks import FaceRegion, face_scale
from effects.spec import EffectSettings
from core.classes import (BACKGROUND, HAIR, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NOSE, NUM_CLASSES,
                          RIGHT_BROW, RIGHT_EYE, SKIN, UPPER_LIP)
from core.regions import bounds

# in EFFECT_NAMES order: the skin is smoothed before colour goes on it
APPLY = {"smooth": skin.apply, "blush": cheeks.apply, "eyeshadow": eyes.eyeshadow, "brows": eyes.brows,
         "lipstick": lips.apply, "teeth": teeth.apply, "hair": hair.apply}
# the classes each effect reads: without label maps the parse stage computes and smooths only
# these (tests/effects/test_effects.py renders each effect with only them and compares)
READS = {"smooth": (SKIN, NOSE), "blush": (SKIN, LEFT_EYE, RIGHT_EYE), "eyeshadow": eyes.AVOID,
         "brows": (LEFT_BROW, RIGHT_BROW), "lipstick": (UPPER_LIP, LOWER_LIP), "teeth": (INNER_MOUTH,),
         "hair": tuple(range(NUM_CLASSES))}   # its colour gates and region growing read them all
# with whole-head hair (models/perception/hair.py) the hair effect paints the fused hair as it
# is; the fusion reads the parser's hair, skin and background
READS_WHOLE_HAIR = dict(READS, hair=(BACKGROUND, SKIN, HAIR))


def classes_read(settings: EffectSettings | None, whole_hair: bool = False) -> frozenset:
    """The classes the enabled effects of `settings` read (`whole_hair`: every face gets the
    hair network's whole-head hair)."""
    active = settings.active() if settings is not None else ()
    reads = READS_WHOLE_HAIR if whole_hair else READS
    return frozenset(c for name in active for c in reads[name])


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
    if x1 <= x0 or y1 <= y0:
        return
    if "hair" in active:   # the hair may grow below and beside the box (unless the box holds it all)
        rx0, ry0, rx1, ry1 = parse.box if parse.whole_hair else hair.extended_box(parse.box, out.shape[:2])
    else:
        rx0, ry0, rx1, ry1 = parse.box
    rgb = out[ry0:ry1, rx0:rx1]
    mesh = None if parse.face.mesh is None else np.asarray(parse.face.mesh, np.float32) - (x0, y0)
    region = FaceRegion(rgb=rgb, origin=(rx0, ry0), box_offset=(x0 - rx0, y0 - ry0), parse=parse, mesh=mesh,
                        matrix=parse.face.matrix, eye_dist=face_scale(parse.face.matrix))
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

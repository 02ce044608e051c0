"""Photos' brows and lips re-weighed by the photo's colours (models/perception/part_colours.py),
and the whole photo refinement (edge snap, then colours) against hand-drawn outlines."""
from pathlib import Path

import cv2
import numpy as np

from core.classes import HAIR, LEFT_BROW, LOWER_LIP, NUM_CLASSES, RIGHT_BROW, SKIN
from core.types import Frame
from models.perception import part_colours
from stream import assemble
from stream.assemble import label_map

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PARTS = (LEFT_BROW, RIGHT_BROW, 4, 5, 7, 8, LOWER_LIP)   # the seven outlined parts


def _brow_scene():
    """A dark brow band (rows 10-13) with a thin tail (row 12, x 30-41) on light skin, and a
    parse (as the crop's resolution leaves it) a row too wide on either side (0.6), and unsure
    of the tail (0.35 over three rows)."""
    rng = np.random.default_rng(0)
    rgb = np.full((28, 56, 3), (200, 160, 140), np.float32)
    rgb[10:14, 8:30] = (70, 50, 40)
    rgb[12, 30:42] = (70, 50, 40)
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    probs = np.zeros((NUM_CLASSES, 28, 56), np.float32)
    probs[LEFT_BROW, 9:15, 8:30] = 0.6
    probs[LEFT_BROW, 10:14, 8:30] = 0.9
    probs[LEFT_BROW, 11:14, 30:42] = 0.35
    probs[SKIN] = 1.0 - probs[LEFT_BROW]
    return rgb, probs


def test_the_brow_follows_its_dark_hair_and_the_planes_still_sum_to_one():
    rgb, probs = _brow_scene()
    truth = np.zeros((28, 56), bool)
    truth[10:14, 8:30] = True
    truth[12, 30:42] = True
    before = probs.argmax(0) == LEFT_BROW
    part_colours.refine(probs, rgb, frame_per_crop=1.0)
    after = probs.argmax(0) == LEFT_BROW

    def f1(pred):
        return 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    assert f1(after) > f1(before) + 0.2, (f1(before), f1(after))
    assert after[12, 30:42].all()                            # the tail is taken
    assert not after[9, 8:30].any() and not after[14, 8:30].any()   # the skin beside the band is not
    assert np.allclose(probs.sum(0), 1.0, atol=1e-5)
    assert not probs[[c for c in range(NUM_CLASSES) if c not in (LEFT_BROW, SKIN)]].any()


def test_other_classes_keep_their_proportions_and_far_pixels_are_untouched():
    rgb, probs = _brow_scene()
    probs[HAIR] = 0.25 * probs[SKIN]     # skin and hair share the rest 3 : 1
    probs[SKIN] *= 0.75
    far = probs[:, 24:, :].copy()        # rows the brow never reaches
    part_colours.refine(probs, rgb, frame_per_crop=1.0)
    rest = probs[SKIN] + probs[HAIR]
    some = rest > 1e-3
    assert np.allclose(probs[HAIR][some] / rest[some], 0.25, atol=1e-4)
    assert np.array_equal(probs[:, 24:, :], far)


def test_a_part_too_small_to_fit_a_colour_model_is_left_as_it_is():
    rgb, probs = _brow_scene()
    probs[:] = 0.0
    probs[SKIN] = 1.0
    probs[LOWER_LIP, 5, 5], probs[SKIN, 5, 5] = 0.6, 0.4   # 1 pixel: no model can be fitted
    before = probs.copy()
    part_colours.refine(probs, rgb, frame_per_crop=1.0)
    assert np.array_equal(probs, before)


def test_refined_photos_fit_the_hand_outlined_parts_better():
    """The landmark tier through the photo pipeline on 8 portraits of the parts dev set, with
    and without the refinement (edge snap and part colours). The odd-numbered portraits: the
    colours' parameters were chosen on the even ones (and FaceSynthetics), never on these."""
    pipeline = assemble.build_pipeline(model="landmarks", static_images=True)
    counts = {True: np.zeros(3), False: np.zeros(3)}
    try:
        for truth_path in sorted((FIXTURES / "parts_dev").glob("*_parts.png"))[1::2][:8]:
            image = cv2.cvtColor(cv2.imread(str(FIXTURES / "hair_dev" / truth_path.name.replace("_parts.png", ".jpg"))),
                                 cv2.COLOR_BGR2RGB)
            truth = cv2.imread(str(truth_path), cv2.IMREAD_GRAYSCALE)
            for refine in (True, False):
                pipeline.refine_photos = refine
                label = label_map(pipeline.parse(pipeline.track(Frame(image, 0, 0.0))))
                scored = truth != 255
                for c in PARTS:
                    counts[refine] += [((label == c) & (truth == c)).sum(), ((label == c) & (truth != c) & scored).sum(),
                                       ((label != c) & (truth == c)).sum()]
    finally:
        pipeline.close()
    f1 = {k: 2 * tp / (2 * tp + fp + fn) for k, (tp, fp, fn) in counts.items()}
    assert f1[True] > f1[False] + 0.01, f1

"""The whole-image benchmarks score what run_live.py writes: labels come from the user's path,
and a perfect answer scores 1."""
from pathlib import Path

import numpy as np
import pytest

from benchmarks import parts_whole
from benchmarks.common import user_path_labels
from core.classes import BACKGROUND, HAIR, NUM_CLASSES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_user_path_labels_are_what_run_live_writes_for_each_image():
    images = sorted(FIXTURES.glob("portrait_*.jpg"))[:2]
    labels_of = user_path_labels(images, "landmarks")
    for image in images:
        label = labels_of(image)
        assert label is not None and label.dtype == np.uint8 and label.max() < NUM_CLASSES
        assert (label == HAIR).mean() > 0.02 and (label == BACKGROUND).mean() > 0.2   # a portrait, parsed
    assert labels_of(FIXTURES / "nothing.jpg") is None


@pytest.mark.skipif(not parts_whole.FACESYNTHETICS.is_dir(), reason="needs ../shared/data/facesynthetics")
def test_parts_whole_scores_the_truth_as_perfect_and_background_as_nothing():
    pairs = parts_whole.facesynthetics_pairs("val")[:3]
    assert len(parts_whole.facesynthetics_pairs("val")) == 16 and len(parts_whole.facesynthetics_pairs("all")) == 80
    perfect = parts_whole.score(pairs, lambda image: np.where(
        parts_whole.truth(image.with_name(f"{image.stem}_seg.png")) == 255, 0,
        parts_whole.truth(image.with_name(f"{image.stem}_seg.png"))).astype(np.uint8))
    assert perfect.overall_f1() == 1.0 and perfect.mean_f1() == 1.0
    empty = parts_whole.score(pairs, lambda image: None)
    assert empty.overall_f1() == 0.0 and empty.f1(HAIR) == 0.0


@pytest.mark.skipif(not parts_whole.FACESYNTHETICS.is_dir(), reason="needs ../shared/data/facesynthetics")
def test_crop_ceiling_loses_thin_parts_only_as_the_crop_shrinks():
    from benchmarks import crop_ceiling
    from core import align
    from core.classes import LEFT_BROW, LEFT_EYE, SKIN
    from models.training.metrics import ConfusionMatrix
    # the validation face with the largest brows and eyes (some are far away or turned)
    image, seg = max(parts_whole.facesynthetics_pairs("val"), key=lambda pair: min(
        np.bincount(parts_whole.truth(pair[1]).ravel(), minlength=256)[[LEFT_BROW, LEFT_EYE]]))
    gt = parts_whole.truth(seg)
    five = align.five_from_ibug68(np.loadtxt(str(image).replace(".png", "_ldmks.txt")))
    scores = {}
    for side in (128, 256, 1024):
        labels = crop_ceiling.through_crop(gt, five, side)
        assert labels.shape == gt.shape and labels.dtype == np.uint8
        scores[side] = ConfusionMatrix().update(labels, gt)
    # a crop with more pixels between the eyes than the image has keeps the labels nearly as they are
    assert all(scores[1024].f1(c) > 0.95 for c in (SKIN, LEFT_BROW, LEFT_EYE))
    assert scores[128].f1(LEFT_BROW) < scores[256].f1(LEFT_BROW) < scores[1024].f1(LEFT_BROW)
    assert scores[128].f1(SKIN) > 0.9   # large parts survive a small crop


def test_real_agreement_of_a_tier_with_itself_is_one_and_with_nothing_zero():
    from benchmarks.real_agreement import GROUPS, agreement
    images = sorted(FIXTURES.glob("portrait_*.jpg"))[:1]
    labels_of = user_path_labels(images, "landmarks")
    same = agreement(labels_of, {"rnng": labels_of, "landmarks": labels_of}, images)
    assert set(same) == set(GROUPS) and all(score == 1.0 for score in same.values())
    nothing = agreement(lambda image: np.zeros_like(labels_of(image)), {"rnng": labels_of, "landmarks": labels_of}, images)
    assert all(score == 0.0 for score in nothing.values())


def test_an_outline_fills_the_pixels_it_covers_by_area():
    from tools.make_parts_dev import label_map
    from core.classes import LEFT_EYE, UPPER_LIP, INNER_MOUTH
    # continuous coordinates: [10, 20) x [10, 15) is 10 x 5 pixels; a half-pixel shift takes half-covered ones
    labels = label_map((40, 40), {"left_eye": [[[10, 10], [20, 10], [20, 15], [10, 15]]]})
    assert (labels == LEFT_EYE).sum() == 50 and labels[10:15, 10:20].min() == LEFT_EYE
    labels = label_map((40, 40), {"left_eye": [[[10.25, 10], [20.25, 10], [20.25, 15], [10.25, 15]]]})
    assert (labels == LEFT_EYE).sum() == 50 and labels[12, 10] == LEFT_EYE and labels[12, 20] == 0
    # the inner mouth is drawn over the lips it overlaps
    labels = label_map((40, 40), {"upper_lip": [[[5, 5], [30, 5], [30, 12], [5, 12]]],
                                  "inner_mouth": [[[10, 10], [25, 10], [25, 20], [10, 20]]]})
    assert labels[11, 12] == INNER_MOUTH and labels[6, 6] == UPPER_LIP


def test_parts_dev_set_is_what_its_outlines_make_and_scores_truth_as_perfect():
    """The committed label maps are the committed outlines rasterised (nothing edited by hand
    after), every portrait has both eyes and both lips (brows: all but a hat's and bangs'), and
    the benchmark scores the truth as perfect and an empty answer as nothing."""
    import json
    import cv2
    from benchmarks import parts_dev
    from tools.make_parts_dev import label_map
    spec = json.loads((parts_dev.DEV / "polygons.json").read_text())
    pairs = parts_dev.dev_pairs()
    assert len(pairs) == len(spec) == 28
    for image, truth in pairs:
        outlines = spec[image.name]
        assert {"left_eye", "right_eye", "upper_lip", "lower_lip"} <= set(outlines)
        gt = cv2.imread(str(truth), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(gt, label_map(cv2.imread(str(image)).shape[:2], outlines))
    perfect = parts_dev.summary(parts_dev.score(pairs, lambda image: np.where(
        cv2.imread(str(parts_dev.DEV / f"{image.stem}_parts.png"), 0) == 255, 0,
        cv2.imread(str(parts_dev.DEV / f"{image.stem}_parts.png"), 0)).astype(np.uint8)))
    assert perfect["parts_f1"] == 1.0 and perfect["mean_f1"] == 1.0
    assert parts_dev.summary(parts_dev.score(pairs, lambda image: None))["parts_f1"] == 0.0
    assert sum("left_brow" in o and "right_brow" in o for o in spec.values()) == 26

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

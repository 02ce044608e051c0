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

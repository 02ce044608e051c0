"""Metrics against numbers computed by hand on tiny label maps."""
import json

import numpy as np
import pytest
import torch

from core.classes import HAIR, IGNORE
from models.training.metrics import ConfusionMatrix, binary_scores

# 2x4 image; the pixel at (1, 2) is ignored (its prediction must count nowhere)
LABEL = np.array([[0, 1, 1, 1],
                  [4, 4, IGNORE, 10]], np.uint8)
PRED = np.array([[0, 1, 1, 0],
                 [4, 5, 1, 10]], np.int64)


def test_per_class_f1_iou_and_pixel_accuracy():
    cm = ConfusionMatrix().update(PRED, LABEL)
    rep = cm.report()
    f1, iou = rep["per_class_f1"], rep["per_class_iou"]
    # background: truth (0,0); predicted at (0,0), (0,3) -> TP 1, FP 1, FN 0 -> 2/(2+1) = 2/3
    assert f1["background"] == pytest.approx(2 / 3)
    # skin: truth (0,1) (0,2) (0,3); predicted (0,1) (0,2) (the ignored (1,2) does not count)
    # -> TP 2, FP 0, FN 1 -> F1 4/5, IoU 2/3
    assert f1["skin"] == pytest.approx(0.8)
    assert iou["skin"] == pytest.approx(2 / 3)
    # left_eye: truth (1,0) (1,1); predicted (1,0) -> TP 1, FN 1 -> F1 2/3, IoU 1/2
    assert f1["left_eye"] == pytest.approx(2 / 3)
    assert iou["left_eye"] == pytest.approx(0.5)
    # right_eye: never true, predicted once -> TP 0, FP 1 -> F1 0 (a score, not absent)
    assert f1["right_eye"] == 0.0
    # hair: TP 1 -> 1
    assert f1["hair"] == pytest.approx(1.0)
    # brows, nose, lips, inner mouth: no TP, FP or FN -> absent
    for name in ("left_brow", "right_brow", "nose", "upper_lip", "inner_mouth", "lower_lip"):
        assert f1[name] is None and iou[name] is None
    # pixel accuracy: 7 labelled pixels, correct (0,0) (0,1) (0,2) (1,0) (1,3) -> 5/7
    assert rep["pixel_accuracy"] == pytest.approx(5 / 7)
    assert rep["n_pixels"] == 7


def test_mean_f1_leaves_absent_classes_out():
    rep = ConfusionMatrix().update(PRED, LABEL).report()
    # foreground classes with a score: skin 4/5, left_eye 2/3, right_eye 0, hair 1
    # (background is not in LaPa's mean) -> (12/15 + 10/15 + 0 + 15/15) / 4 = 37/60
    assert rep["mean_f1"] == pytest.approx(37 / 60)


def test_overall_f1_merges_parts_and_excludes_skin_and_hair():
    rep = ConfusionMatrix().update(PRED, LABEL).report()
    # merged parts (brows, eyes, nose, mouth): truth (1,0) (1,1) = eyes; predicted (1,0) = 4,
    # (1,1) = 5, both inside the merged class -> TP 2, FP 0, FN 0 -> 1.0, although the
    # left/right eye confusion costs the per-class scores. Skin's miss at (0,3) is left out.
    assert rep["overall_f1"] == pytest.approx(1.0)
    assert rep["group_f1"]["eyes"] == pytest.approx(1.0)

    # one nose pixel predicted as skin, one skin pixel predicted as nose, hair predicted as
    # upper lip: merged TP 1 (the lip/inner-mouth pixel), FP 2 (skin->nose, hair->lip),
    # FN 1 (nose->skin) -> 2*1 / (2*1 + 2 + 1) = 2/5
    label = np.array([6, 1, 10, 8])
    pred = np.array([1, 6, 7, 7])
    assert ConfusionMatrix().update(pred, label).overall_f1() == pytest.approx(0.4)


def test_no_parts_anywhere_gives_no_overall():
    rep = ConfusionMatrix().update(np.array([0, 1, 10]), np.array([0, 1, 10])).report()
    assert rep["overall_f1"] is None
    assert rep["mean_f1"] == pytest.approx(1.0)  # skin 1, hair 1; the 8 absent parts left out
    json.dumps(rep, allow_nan=False)  # None, never NaN, in the JSON report


def test_ignore_pixels_count_nowhere():
    label = np.full((3, 3), IGNORE, np.uint8)
    label[0, 0] = 1
    pred = np.full((3, 3), 10)  # every ignored pixel predicted as hair
    pred[0, 0] = 1
    cm = ConfusionMatrix().update(pred, label)
    assert cm.n_pixels == 1
    assert cm.f1(HAIR) is None  # no FP from ignored pixels
    assert cm.pixel_accuracy() == 1.0


def test_accumulating_over_images_is_not_per_image_averaging():
    cm = ConfusionMatrix()
    # image A: 4 skin pixels, all right -> F1 1 on its own
    cm.update(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1]))
    # image B: 1 skin pixel missed -> F1 0 on its own; per-image mean would be (1 + 0) / 2 = 0.5
    cm.update(np.array([0, 0, 0, 0]), np.array([1, 0, 0, 0]))
    # summed counts: TP 4, FP 0, FN 1 -> 8 / 9
    assert cm.f1(1) == pytest.approx(8 / 9)


def test_torch_and_numpy_inputs_agree():
    a = ConfusionMatrix().update(PRED, LABEL)
    b = ConfusionMatrix().update(torch.from_numpy(PRED), torch.from_numpy(LABEL))
    assert np.array_equal(a.counts, b.counts)
    c = ConfusionMatrix.from_counts(a.counts)
    c += b
    assert c.n_pixels == 14


def test_hair_only_labels():
    # LFW hair masks: 0 = not hair, 10 = hair, 255 = ignore
    label = np.array([[10, 10, 0, IGNORE]])
    pred = np.array([[10, 1, 10, 10]])  # predicting skin counts as "not hair"
    s = binary_scores(pred == HAIR, label == HAIR, valid=label != IGNORE)
    # TP (0,0), FN (0,1), FP (0,2); (0,3) ignored -> F1 2/(2+1+1) = 1/2, IoU 1/3, accuracy 1/3
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 1, 1, 0)
    assert s["f1"] == pytest.approx(0.5)
    assert s["iou"] == pytest.approx(1 / 3)
    assert s["accuracy"] == pytest.approx(1 / 3)
    rep = ConfusionMatrix().update(pred, label).report(classes=(HAIR,))
    assert rep["per_class_f1"] == {"hair": pytest.approx(0.5)}
    assert rep["hair_iou"] == pytest.approx(1 / 3)
    assert rep["hair_accuracy"] == pytest.approx(1 / 3)
    assert rep["overall_f1"] is None and rep["mean_f1"] is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        ConfusionMatrix().update(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        ConfusionMatrix().update(np.array([11]), np.array([0]))

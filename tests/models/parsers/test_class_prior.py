"""The prior correction (models/parsers/class_prior.py): the learned tiers' small parts come out
at their size, not inflated by the class weights of their training, on real faces."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core import align
from core.classes import FLIP_PERMUTATION, LEFT_EYE, NUM_CLASSES, RIGHT_EYE, SKIN
from models.parsers import checkpoint as ckpt
from models.parsers import registry
from models.parsers.class_prior import reweigh

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PARTS_DEV, HAIR_DEV = FIXTURES / "parts_dev", FIXTURES / "hair_dev"


def test_reweigh_keeps_a_distribution_and_moves_mass_only_from_the_corrected_classes():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=(2, 8, 8)).transpose(0, 3, 1, 2).astype(np.float32)
    factors = np.ones(NUM_CLASSES, np.float32)
    assert np.array_equal(reweigh(probs.copy(), factors), probs)
    factors[[LEFT_EYE, RIGHT_EYE]] = 0.5
    out = reweigh(probs.copy(), factors)
    assert np.allclose(out.sum(1), 1.0, atol=1e-5)
    assert (out[:, LEFT_EYE] < probs[:, LEFT_EYE]).all() and (out[:, SKIN] > probs[:, SKIN]).all()
    # the others keep their ratios: what the eyes lose is shared in proportion
    assert np.allclose(out[:, SKIN] / out[:, 0], probs[:, SKIN] / probs[:, 0], rtol=1e-4)
    # = p_c f_c / sum_j p_j f_j
    expect = probs * factors[None, :, None, None]
    assert np.allclose(out, expect / expect.sum(1, keepdims=True), atol=1e-6)


def test_reweigh_works_only_where_a_corrected_part_is_and_changes_nothing_elsewhere():
    # the landmark tier's answer: one-hot planes, the eyes a small patch (or absent, when only
    # the lips were asked for); the box-limited correction equals the formula everywhere
    probs = np.zeros((2, NUM_CLASSES, 64, 64), np.float32)
    probs[:, SKIN] = 1.0
    probs[0, SKIN, 20:30, 10:25], probs[0, LEFT_EYE, 20:30, 10:25] = 0.3, 0.7
    factors = np.ones(NUM_CLASSES, np.float32)
    factors[[LEFT_EYE, RIGHT_EYE]] = 0.6
    expect = probs * factors[None, :, None, None]
    expect /= expect.sum(1, keepdims=True)
    out = reweigh(probs.copy(), factors)
    assert np.array_equal(out[1], probs[1])                      # no eyes: untouched
    assert np.allclose(out, expect, atol=1e-7)
    assert np.array_equal(out[0, :, :20], probs[0, :, :20])      # outside the eye's box: bit for bit


@pytest.mark.parametrize("tier", ["rnng", "student", "teacher", "rednet", "bspnet", "stn-icnn"])
def test_every_shipped_learned_tier_carries_its_correction(tier):
    factors = ckpt.class_prior(ckpt.load(registry.tier(tier).checkpoint, tier)["config"])
    assert factors is not None and factors[[0, 1, 10]].tolist() == [1, 1, 1]   # background, skin, hair kept
    assert (factors[2:10] <= 1).all() and (factors[[LEFT_EYE, RIGHT_EYE]] < 0.6).all()
    assert np.array_equal(factors, factors[FLIP_PERMUTATION])   # a mirrored face, a mirrored answer
    assert registry.create_parser(tier, device="cpu").prior is not None


def test_a_wrong_correction_in_a_checkpoint_is_a_one_line_error(tmp_path):
    blob = ckpt.read(registry.tier("rnng").checkpoint)
    blob["config"]["class_prior"] = [1.0, 0.5]
    torch.save(blob, tmp_path / "rnng.pt")
    with pytest.raises(ckpt.CheckpointError, match="class_prior must be 11 positive numbers"):
        registry.create_parser("rnng", device="cpu", checkpoint=tmp_path / "rnng.pt")


def test_corrected_eyes_fit_the_hand_outlined_eyes_of_real_portraits_better():
    """BSPNet's eyes (training weights ~11x skin's) before and after, against the parts dev set's
    outlines, through the crop and back as the pipeline does; the correction was fitted on
    FaceSynthetics, never on these portraits."""
    from models.perception.tracker import FaceTracker
    parser = registry.create_parser("bspnet", device="cpu")
    tracker = FaceTracker(static_images=True, max_faces=1)
    scores = {"raw": [0, 0, 0], "corrected": [0, 0, 0]}
    for name in ("B000740", "C001127", "G000596"):
        image = cv2.cvtColor(cv2.imread(str(HAIR_DEV / f"{name}.jpg")), cv2.COLOR_BGR2RGB)
        face = tracker.process(image)[0]
        crop = align.warp_crop(image, face.matrix)[None]
        five = align.transform_points(face.five, face.matrix)[None]
        mesh = align.transform_points(face.mesh, face.matrix)[None]
        truth = cv2.imread(str(PARTS_DEV / f"{name}_parts.png"), cv2.IMREAD_GRAYSCALE)
        corrected = parser(crop, five, mesh)[0]
        prior, parser.prior = parser.prior, None
        raw = parser(crop, five, mesh)[0]
        parser.prior = prior
        for key, probs in (("raw", raw), ("corrected", corrected)):
            (x0, y0, x1, y1), back = align.probs_to_frame(probs, face.matrix, image.shape[:2])
            label = np.zeros(image.shape[:2], np.uint8)
            label[y0:y1, x0:x1] = back.argmax(0)
            for c in (LEFT_EYE, RIGHT_EYE):
                scores[key][0] += ((label == c) & (truth == c)).sum()
                scores[key][1] += ((label == c) & (truth != c) & (truth != 255)).sum()
                scores[key][2] += ((label != c) & (truth == c)).sum()
    tracker.close()
    f1 = {k: 2 * tp / (2 * tp + fp + fn) for k, (tp, fp, fn) in scores.items()}
    assert f1["corrected"] > f1["raw"] + 0.05, f1
    assert scores["corrected"][1] < 0.6 * scores["raw"][1]   # far fewer false eye pixels

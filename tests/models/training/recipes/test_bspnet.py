"""BSPNet's training recipe (models.training.recipes.bspnet): boundary ground truth, the balanced
BCE, the boundary-weighted fusion loss and training on real faces."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.training.recipes.bspnet import BSPNetRecipe, balanced_bce, boundary_map, boundary_weights
from models.training.trainable import Stage
from core.classes import IGNORE
from tests.models.parsers.test_rednet import facesynthetics_faces, to_batch


@pytest.fixture(scope="module")
def faces(shared_dir):
    torch.set_num_threads(1)
    return facesynthetics_faces(shared_dir, 4, 128)


def test_boundary_map_and_weights_on_a_hand_made_label():
    label = torch.tensor([[
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 4, 4, 0, 0],
        [0, 0, 4, 4, 0, 0],
        [0, 0, 0, 0, 0, 255],
        [1, 1, 1, 1, 255, 255],
    ]])
    expected = torch.tensor([[
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0, 0],   # 0|1 across rows 4-5; the 0|255 pair at (4,4)-(4,5) does not count
        [1, 1, 1, 1, 0, 0],   # the 1|255 pair at (5,3)-(5,4) does not count either
    ]], dtype=torch.bool)
    assert torch.equal(boundary_map(label), expected)
    w = boundary_weights(label, alpha=200.0)
    assert torch.equal(w, torch.where(expected, torch.tensor(201.0), torch.tensor(1.0)))


def test_balanced_bce_weights_each_side_by_the_other_share():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0]])
    target = torch.tensor([[1, 0, 0, 0]], dtype=torch.bool)
    valid = torch.tensor([[True, True, True, False]])
    # 3 valid pixels, 1 positive: positives weigh 2/3, negatives 1/3 (HED balancing)
    bce = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")
    by_hand = (2 / 3 * bce[0, 0] + 1 / 3 * bce[0, 1] + 1 / 3 * bce[0, 2]) / 3
    assert balanced_bce(logits, target, valid).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_fusion_loss_weighs_boundary_pixels_on_real_labels(faces):
    images, labels, fives = faces
    batch = to_batch(images, labels, fives)
    edges = boundary_map(batch["label"])
    share = edges.float().mean().item()
    assert 0.01 < share < 0.25  # part outlines are a thin share of the crop
    recipe = BSPNetRecipe()
    cfg = {**recipe.default_config(), "width": 8, "semantic_features": 16, "boundary_features": 8,
           "fusion_features": 16, "class_weight_power": 0.0}
    torch.manual_seed(0)
    model = recipe.build(cfg).eval()
    _, plain = recipe.loss(model, batch, Stage(config={**cfg, "alpha": 0.0}))
    _, weighted = recipe.loss(model, batch, Stage(config={**cfg, "alpha": 10.0}))
    out = model(batch["image"])
    ce = F.cross_entropy(out["fusion"], batch["label"], ignore_index=IGNORE, reduction="none")
    n = (batch["label"] != IGNORE).sum()
    assert plain["fusion"] == pytest.approx((ce.sum() / n).item(), rel=1e-4)
    assert weighted["fusion"] == pytest.approx(((ce * (1 + 10.0 * edges)).sum() / n).item(), rel=1e-4)


def test_a_few_steps_lower_the_loss_on_real_faces(faces):
    torch.manual_seed(0)
    images, labels, fives = faces
    recipe = BSPNetRecipe()
    stage = Stage(config={**recipe.default_config(), "width": 8, "semantic_features": 32, "boundary_features": 8,
                          "fusion_features": 16})
    model = recipe.build(stage.config)
    batch = to_batch(images, labels, fives)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss, logs = recipe.loss(model, batch, stage)
        assert set(logs) >= {"semantic", "boundary", "fusion"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert np.isfinite(losses).all() and losses[-1] < losses[0] * 0.8, losses

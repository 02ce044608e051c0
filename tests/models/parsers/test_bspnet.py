"""BSPNet (models.parsers.bspnet): boundary ground truth and weights, balanced BCE, branches, training."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.parsers.bspnet import BSPNet, BSPNetTrainable, balanced_bce, boundary_map, boundary_weights
from core.classes import IGNORE, NUM_CLASSES
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


def test_branches_shapes_and_output_stride_16():
    model = BSPNet(width=8, semantic_features=16, boundary_features=8, fusion_features=16).eval()
    x = torch.rand(2, 3, 128, 128)
    c1, c2, c3, c4 = model.backbone(x)
    assert [c.shape[-1] for c in (c1, c2, c3, c4)] == [32, 16, 8, 8]  # stage 4 dilated, not strided
    with torch.no_grad():
        out = model(x)
    assert out["semantic"].shape == out["fusion"].shape == (2, NUM_CLASSES, 128, 128)
    assert out["boundary"].shape == (2, 1, 128, 128)
    probs = BSPNetTrainable().predict(model, {"image": x})
    assert torch.allclose(probs.sum(1), torch.ones(2, 128, 128), atol=1e-5)


def test_fusion_loss_weighs_boundary_pixels_on_real_labels(faces):
    images, labels, fives = faces
    batch = to_batch(images, labels, fives)
    edges = boundary_map(batch["label"])
    share = edges.float().mean().item()
    assert 0.01 < share < 0.25  # part outlines are a thin share of the crop
    trainable = BSPNetTrainable()
    cfg = {"width": 8, "semantic_features": 16, "boundary_features": 8, "fusion_features": 16,
           "class_weight_power": 0.0}
    torch.manual_seed(0)
    model = trainable.build({**cfg, "alpha": 0.0}).eval()
    _, plain = trainable.loss(model, batch)
    model.loss_config["alpha"] = 10.0
    _, weighted = trainable.loss(model, batch)
    out = model(batch["image"])
    ce = F.cross_entropy(out["fusion"], batch["label"], ignore_index=IGNORE, reduction="none")
    n = (batch["label"] != IGNORE).sum()
    assert plain["fusion"] == pytest.approx((ce.sum() / n).item(), rel=1e-4)
    assert weighted["fusion"] == pytest.approx(((ce * (1 + 10.0 * edges)).sum() / n).item(), rel=1e-4)


def test_a_few_steps_lower_the_loss_on_real_faces(faces):
    torch.manual_seed(0)
    images, labels, fives = faces
    trainable = BSPNetTrainable()
    model = trainable.build({"width": 8, "semantic_features": 32, "boundary_features": 8, "fusion_features": 16})
    batch = to_batch(images, labels, fives)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss, logs = trainable.loss(model, batch)
        assert set(logs) >= {"semantic", "boundary", "fusion"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert np.isfinite(losses).all() and losses[-1] < losses[0] * 0.8, losses

"""RNN-G's training recipe: the stability constraints, the losses and training on real faces."""
import numpy as np
import pytest
import torch

from models.parsers.rnng import COMPONENTS, crop_theta, face_frame
from models.training.recipes.rnng import RNNGRecipe, boundary_target, component_labels
from models.training.trainable import Stage
from tests.models.parsers.test_rnng import astronaut_crop, landmark_label, one_thread, real_batch  # noqa: F401 (autouse fixture)


@pytest.fixture
def recipe():
    return RNNGRecipe()


def stage_of(recipe, **overrides) -> Stage:
    return Stage(config={**recipe.default_config(), **overrides})


def test_norm_and_gate_bounds_after_a_step(recipe, astronaut):
    torch.manual_seed(2)
    stage = stage_of(recipe, stage2=False)
    model = recipe.build(stage.config).train()
    with torch.no_grad():
        model.rnn.weight.copy_(3 * torch.randn_like(model.rnn.weight))  # far outside the ball
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = real_batch(astronaut, 2)
    for _ in range(2):
        opt.zero_grad()
        loss, _ = recipe.loss(model, batch, stage)
        loss.backward()
        opt.step()
        assert torch.linalg.matrix_norm(model.rnn.transition(), 2) <= 1 + 1e-5
    recipe.loss(model, batch, stage)  # the projection runs at the start of each step
    assert torch.linalg.matrix_norm(model.rnn.weight, 2) <= 1 + 1e-5
    gate = model.stage1(batch["image"], backend="torch")["gate"]
    assert gate.min() >= 0 and gate.max() <= 1


def test_training_steps_reduce_the_loss(recipe, astronaut):
    torch.manual_seed(3)
    stage = stage_of(recipe)
    model = recipe.build(stage.config).train()
    batch = real_batch(astronaut, 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss, logs = recipe.loss(model, batch, stage)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert set(logs) >= {"coarse", "gate", "final", "components", "loss"}
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses


def test_boundary_target_marks_class_edges():
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[:, :, 4:] = 1
    label[:, 0, 0] = 255
    target, valid = boundary_target(label, 1)
    assert (target[0, 0, :, 3:5] == 0).all() and (target[0, 0, 1:, :2] == 1).all()
    assert not valid[0, 0, 0, 0] and valid[0, 0, 4, 4]


def test_component_crops_hold_their_parts(astronaut):
    """On a real crop, each component box holds its part of the drawn label, and the right
    eye's crop is the mirror of a left eye (brow above, nose side toward the crop's right)."""
    crop, five = astronaut_crop(astronaut, 128)
    label = torch.from_numpy(landmark_label(five, 128).astype(np.int64))[None]
    frame = face_frame(torch.from_numpy(five)[None], 128)
    for name, comp in COMPONENTS.items():
        lab = component_labels(label, crop_theta(comp, frame, 128), comp)
        for k in range(1, len(comp.classes) + 1):
            assert (lab == k).sum() > 20, (name, k)
    left = component_labels(label, crop_theta(COMPONENTS["left_eye"], frame, 128), COMPONENTS["left_eye"])
    right = component_labels(label, crop_theta(COMPONENTS["right_eye"], frame, 128), COMPONENTS["right_eye"])
    overlap = ((left == 2) & (right == 2)).sum() / ((left == 2) | (right == 2)).sum()
    assert overlap > 0.5  # the mirrored right eye lands where the left eye does


def test_component_loss_weights_scale_one_crop(astronaut):
    batch = real_batch(astronaut, 2)
    logs = {}
    for weights in ({}, {"mouth": 3.0}):
        torch.manual_seed(4)
        recipe = RNNGRecipe()  # fresh running class counts: the same class weights in both
        stage = stage_of(recipe, component_loss_weights=weights)
        model = recipe.build(stage.config).train()
        torch.manual_seed(5)  # the same crop jitter in both
        logs[len(weights)] = recipe.loss(model, batch, stage)[1]
    assert logs[1]["components"] > logs[0]["components"]
    assert logs[1]["final"] == pytest.approx(logs[0]["final"])  # nothing else changes

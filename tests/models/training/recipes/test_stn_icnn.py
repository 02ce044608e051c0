"""STN-iCNN's training recipe (models.training.recipes.stn_icnn): eq. 14 affines, the label crops
and the three stages of the shared loop, each training what it should."""
import numpy as np
import pytest
import torch

from core.classes import IGNORE, LEFT_BROW, NOSE, NUM_CLASSES, SKIN
from models.parsers.stn_icnn import PARTS, crop, invert_theta, paste
from models.training.recipes.stn_icnn import STNiCNNRecipe, crop_label, local_label, theta_from_label
from models.training.train import build_optimizer
from models.training.trainable import Stage
from tests.models.parsers.test_rednet import facesynthetics_faces, to_batch
from tests.models.parsers.test_stn_icnn import SMALL


@pytest.fixture(scope="module")
def faces(shared_dir):
    torch.set_num_threads(1)
    return facesynthetics_faces(shared_dir, 4, 256)


def test_theta_from_label_follows_eq14_on_a_hand_made_label():
    label = torch.zeros(1, 64, 64, dtype=torch.long)
    label[0, 10:13, 20:25] = LEFT_BROW   # centre row 11, column 22
    label[0, 40:44, 30:34] = NOSE        # centre (31.5, 41.5) -> rounded to (32, 42)
    sizes = [9, 9, 7, 7, 15, 21]
    theta, valid = theta_from_label(label, sizes)
    assert valid.tolist() == [[True, False, False, False, True, False]]
    w = 64
    brow = theta[0, 0]
    assert brow[0, 0].item() == pytest.approx(9 / w) and brow[1, 1].item() == pytest.approx(9 / w)
    assert brow[0, 1].item() == 0 and brow[1, 0].item() == 0
    assert brow[0, 2].item() == pytest.approx(-1 + 2 * (22 + 0.5) / w)
    assert brow[1, 2].item() == pytest.approx(-1 + 2 * (11 + 0.5) / w)
    nose = theta[0, 4]
    assert nose[0, 2].item() == pytest.approx(-1 + 2 * (32 + 0.5) / w)
    assert nose[1, 2].item() == pytest.approx(-1 + 2 * (42 + 0.5) / w)


def test_odd_patch_crop_is_a_plain_slice_and_pastes_back(faces):
    """The ground-truth crop of an odd patch samples whole pixels (section 3.3), and pasting it
    back with the inverse transform reproduces the region and leaves the rest empty."""
    images, labels, fives = faces
    batch = to_batch(images, labels, fives)
    sizes = STNiCNNRecipe().default_config()["patch_sizes"]
    theta, valid = theta_from_label(batch["label"], sizes)
    assert valid[:, [0, 4, 5]].all()  # brows, nose, mouth are visible on these faces
    for p in (0, 4, 5):
        side, k = sizes[p], sizes[p] // 2
        patch = crop(batch["image"], theta[:, p], side)
        for i in range(len(images)):
            cx = round((theta[i, p, 0, 2].item() + 1) * 256 / 2 - 0.5)
            cy = round((theta[i, p, 1, 2].item() + 1) * 256 / 2 - 0.5)
            x0, y0 = max(cx - k, 0), max(cy - k, 0)
            region = batch["image"][i, :, y0:cy + k + 1, cx - k + (x0 - (cx - k)):cx + k + 1]
            sub = patch[i, :, y0 - (cy - k):, x0 - (cx - k):][:, :region.shape[1], :region.shape[2]]
            assert torch.allclose(sub, region, atol=1e-5)
        back = paste(patch, theta[:, p], (256, 256))
        mask = paste(torch.ones(len(images), 1, side, side), theta[:, p], (256, 256))
        assert torch.allclose((back - batch["image"]) * mask, torch.zeros_like(back), atol=1e-4)
        assert torch.all((mask < 1e-4) | (mask > 1 - 1e-4))      # whole pixels: a hard-edged box
        assert torch.allclose(back * (mask < 0.5), torch.zeros_like(back), atol=1e-4)
        # the label cut by the same theta holds the part, centred
        lab = crop_label(batch["label"], theta[:, p], side)
        part = local_label(lab, PARTS[p][1])
        assert (part[:, k - 2:k + 3, k - 2:k + 3] > 0).float().mean() > 0.5


def test_invert_theta_and_label_crop_outside_is_ignore():
    theta = torch.tensor([[[0.3, 0.0, 0.9], [0.0, 0.2, -0.95]]])
    inv = invert_theta(theta)
    full = lambda t: torch.cat([t[0], torch.tensor([[0.0, 0.0, 1.0]])])
    assert torch.allclose(full(theta) @ full(inv), torch.eye(3), atol=1e-6)
    label = torch.full((1, 32, 32), SKIN)
    cut = crop_label(label, theta, 11)
    assert (cut == IGNORE).any() and (cut == SKIN).any()  # the patch hangs over the image edge


def test_three_stages_train_what_they_should(faces):
    torch.manual_seed(0)
    images, labels, fives = faces
    batch = to_batch(images, labels, fives)
    recipe = STNiCNNRecipe()
    config = {**recipe.default_config(), **SMALL, "weight_decay": 0.0, "betas": [0.9, 0.999]}
    model = recipe.build(config)
    for name, epochs, overrides in recipe.stages(config, {}):
        stage = Stage(name, 0, epochs, {**config, **overrides})
        optimizer = build_optimizer(recipe.parameters_for(model, stage), stage.config)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        logs = [recipe.train_step(model, batch, optimizer, stage) for _ in range(3)]
        after = model.state_dict()
        changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
        if name == "coarse":
            assert changed == {"coarse"} and logs[-1]["coarse"] < logs[0]["coarse"]
        elif name == "localizer":  # K frozen, batch-norm statistics included
            assert changed == {"localizer"} and np.isfinite([l["theta"] for l in logs]).all()
        else:
            assert changed == {"coarse", "localizer", "part_nets"}
            assert set(logs[0]) >= {"parts", "coarse", "theta"}
    if name == "end2end":
        lrs = sorted(g["lr"] for g in optimizer.param_groups)
        assert lrs[0] == pytest.approx(config["lr_pretrained_e2e"]) and lrs[1] == pytest.approx(config["lr_parts"])
    model.eval()
    with torch.no_grad():
        probs = model.predict(batch)
    assert probs.shape == (len(images), NUM_CLASSES, 256, 256)
    assert torch.allclose(probs.sum(1), torch.ones(len(images), 256, 256), atol=1e-4)

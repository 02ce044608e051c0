"""STN-iCNN (models.parsers.stn_icnn): eq. 14 affines, differentiable crop and paste, merging, stages."""
import contextlib

import numpy as np
import pytest
import torch

from core.classes import IGNORE, LEFT_BROW, NOSE, NUM_CLASSES, SKIN, UPPER_LIP
from models.parsers.stn_icnn import (ICNN, PARTS, STNiCNNTrainable, crop, crop_label, invert_theta, local_label,
                             merge_part, paste, theta_from_label)
from models.training.train import Stage, build_optimizer
from tests.models.parsers.test_rednet import facesynthetics_faces, to_batch

SMALL = {"channels": [4, 8, 8, 8], "loc_channels": [4, 4, 8, 8]}


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
    sizes = STNiCNNTrainable().default_config()["patch_sizes"]
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


def test_merge_part_replaces_part_classes_inside_the_patch_only():
    probs = torch.zeros(1, NUM_CLASSES, 1, 3)
    probs[0, SKIN] = 0.6
    probs[0, 0] = 0.2
    probs[0, UPPER_LIP] = 0.2
    part = torch.zeros(1, 4, 1, 3)   # mouth iCNN: other, upper lip, inner mouth, lower lip
    part[0, 0], part[0, 1] = 0.5, 0.5
    mask = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3)
    out = merge_part(probs, part, mask, PARTS[5][1])
    assert torch.allclose(out.sum(1), torch.ones(1, 1, 3))
    assert out[0, UPPER_LIP, 0, 0].item() == pytest.approx(0.5)
    # the part's "other" mass 0.5 goes to skin and background as 0.6 : 0.2
    assert out[0, SKIN, 0, 0].item() == pytest.approx(0.5 * 0.75)
    assert out[0, 0, 0, 0].item() == pytest.approx(0.5 * 0.25)
    assert torch.equal(out[..., 2], probs[..., 2])  # outside the patch: the coarse answer


def test_icnn_keeps_resolution_and_odd_sizes():
    net = ICNN(3, 2, channels=(4, 4, 4, 4)).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 41, 41)).shape == (1, 2, 41, 41)
        assert net(torch.rand(1, 3, 128, 128)).shape == (1, 2, 128, 128)


def test_three_stages_train_what_they_should(faces):
    torch.manual_seed(0)
    images, labels, fives = faces
    batch = to_batch(images, labels, fives)
    trainable = STNiCNNTrainable()
    config = {**trainable.default_config(), **SMALL, "weight_decay": 0.0, "betas": [0.9, 0.999]}
    model = trainable.build(config)
    for name, epochs, overrides in trainable.stages(config):
        stage = Stage(name, 0, epochs, {**config, **overrides}, torch.device("cpu"), contextlib.nullcontext)
        optimizer = build_optimizer(trainable.parameters_for(model, stage), stage.config)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        logs = [trainable.train_step(model, batch, optimizer, stage) for _ in range(3)]
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
        probs = trainable.predict(model, batch)
    assert probs.shape == (len(images), NUM_CLASSES, 256, 256)
    assert torch.allclose(probs.sum(1), torch.ones(len(images), 256, 256), atol=1e-4)


def test_patch_sizes_must_be_odd():
    with pytest.raises(AssertionError, match="odd"):
        STNiCNNTrainable().build({**SMALL, "patch_sizes": [64, 65, 41, 41, 65, 81]})


def test_localizer_starts_at_the_canonical_part_places():
    from models.parsers.stn_icnn import CANONICAL_CENTRES
    trainable = STNiCNNTrainable()
    config = {**trainable.default_config(), **SMALL}
    model = trainable.build(config).eval()
    with torch.no_grad():
        theta = model.localizer(torch.rand(2, NUM_CLASSES, 128, 128).softmax(1))
    sides = torch.tensor(config["patch_sizes"], dtype=torch.float32) / 256
    assert torch.allclose(theta[:, :, 0, 0], sides.expand(2, -1))
    centres = torch.tensor(CANONICAL_CENTRES)
    assert torch.allclose((theta[:, :, :, 2] + 1) / 2, centres.expand(2, -1, -1), atol=1e-6)

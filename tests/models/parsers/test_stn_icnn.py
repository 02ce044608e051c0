"""STN-iCNN's network (models.parsers.stn_icnn): merging, iCNN shapes, patch sides, the
localiser's start. Its training (eq. 14 affines, label crops, stages):
tests/models/training/recipes/test_stn_icnn.py."""
import pytest
import torch

from core.classes import NUM_CLASSES, SKIN, UPPER_LIP
from models.parsers.stn_icnn import ICNN, PARTS, STNiCNN, merge_part

SMALL = {"channels": [4, 8, 8, 8], "loc_channels": [4, 4, 8, 8]}


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


def test_patch_sizes_must_be_odd():
    with pytest.raises(AssertionError, match="odd"):
        STNiCNN.from_config({**SMALL, "patch_sizes": [64, 65, 41, 41, 65, 81]})


def test_localizer_starts_at_the_canonical_part_places():
    from models.parsers.stn_icnn import CANONICAL_CENTRES
    config = {**STNiCNN.defaults, **SMALL}
    model = STNiCNN.from_config(config).eval()
    with torch.no_grad():
        theta = model.localizer(torch.rand(2, NUM_CLASSES, 128, 128).softmax(1))
    sides = torch.tensor(config["patch_sizes"], dtype=torch.float32) / 256
    assert torch.allclose(theta[:, :, 0, 0], sides.expand(2, -1))
    centres = torch.tensor(CANONICAL_CENTRES)
    assert torch.allclose((theta[:, :, :, 2] + 1) / 2, centres.expand(2, -1, -1), atol=1e-6)

"""BSPNet's network (models.parsers.bspnet): branch shapes and probabilities. Its losses and
training: tests/models/training/recipes/test_bspnet.py."""
import torch

from core.classes import NUM_CLASSES
from models.parsers.bspnet import BSPNet


def test_branches_shapes_and_output_stride_16():
    model = BSPNet(width=8, semantic_features=16, boundary_features=8, fusion_features=16).eval()
    x = torch.rand(2, 3, 128, 128)
    c1, c2, c3, c4 = model.backbone(x)
    assert [c.shape[-1] for c in (c1, c2, c3, c4)] == [32, 16, 8, 8]  # stage 4 dilated, not strided
    with torch.no_grad():
        out = model(x)
    assert out["semantic"].shape == out["fusion"].shape == (2, NUM_CLASSES, 128, 128)
    assert out["boundary"].shape == (2, 1, 128, 128)
    probs = model.predict({"image": x})
    assert torch.allclose(probs.sum(1), torch.ones(2, 128, 128), atol=1e-5)

"""ONNX Runtime for RNN-G's convolutional parts: same answers as torch on real face crops, from
files that belong to the committed checkpoint."""
import numpy as np
import pytest
import torch

from core import align
from models.parsers import onnx_runtime, registry
from models.parsers.rnng import RNNGNet
from models.parsers.torch_parser import TorchParser
from tests.faces import real_faces, tracked

pytestmark = pytest.mark.skipif(not onnx_runtime.available(), reason="onnxruntime not installed")


def rnng_parsers():
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt")
    path = registry.tier("rnng").checkpoint
    return (TorchParser.from_checkpoint("rnng", RNNGNet, path, "cpu", onnx=False),
            TorchParser.from_checkpoint("rnng", RNNGNet, path, "cpu", onnx=True))


def real_crops():
    crops, fives = [], []
    for name in real_faces():
        image, face = tracked(name)
        crops.append(align.warp_crop(image, face.matrix))
        fives.append(align.transform_points(face.five, face.matrix))
    return np.stack(crops), np.stack(fives)


def test_committed_onnx_files_belong_to_the_committed_checkpoint():
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt")
    path = registry.tier("rnng").checkpoint
    sha = onnx_runtime.digest(path)
    for name in ("cnn", "eye", "nose", "mouth"):
        part = onnx_runtime.load(onnx_runtime.folder(path) / f"{name}.onnx", sha)
        assert part is not None, f"re-export after retraining: python -m models.parsers.onnx_runtime rnng ({name})"


def test_rnng_on_onnx_runtime_matches_torch_on_real_crops():
    plain, fast = rnng_parsers()
    assert isinstance(fast.model.cnn, onnx_runtime.OrtModule)
    assert all(isinstance(m, onnx_runtime.OrtModule) for m in fast.model.components.values())
    assert not isinstance(plain.model.cnn, onnx_runtime.OrtModule)
    crops, five = real_crops()
    assert len(crops) == 5
    a, b = plain(crops, five), fast(crops, five)
    assert a.shape == b.shape == (5, 11, 256, 256)
    assert np.abs(a - b).max() < 1e-3
    assert (a.argmax(1) == b.argmax(1)).mean() > 0.9999
    one = fast(crops[:1], five[:1])   # any batch size
    assert np.abs(one[0] - b[0]).max() < 1e-4


def test_exported_part_runs_like_torch_and_other_weights_are_refused(tmp_path):
    pytest.importorskip("onnx")
    net = RNNGNet.from_config({}).components["mouth"].eval()
    x = torch.rand(3, 3, 32, 64)
    onnx_runtime.export(net, x[:1], tmp_path / "mouth.onnx", "abc")
    part = onnx_runtime.load(tmp_path / "mouth.onnx", "abc")
    with torch.no_grad():
        assert torch.allclose(net(x), part(x), atol=1e-4)
    assert onnx_runtime.load(tmp_path / "mouth.onnx", "other weights") is None
    assert onnx_runtime.load(tmp_path / "missing.onnx", "abc") is None


def test_a_custom_checkpoint_runs_on_torch(tmp_path):
    """--checkpoint with other weights: no ONNX file matches them, so torch runs every part."""
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt")
    import shutil
    copy = tmp_path / "rnng.pt"
    shutil.copy(registry.tier("rnng").checkpoint, copy)
    assert not isinstance(TorchParser.from_checkpoint("rnng", RNNGNet, copy, "cpu").model.cnn, onnx_runtime.OrtModule)

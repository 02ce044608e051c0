"""ONNX Runtime for RNN-G's convolutional parts: same answers as torch on real face crops."""
import numpy as np
import pytest

from core import align
from models.parsers import onnx_runtime, registry
from models.parsers.checkpoint import load, load_into
from models.parsers.rnng import RNNGTrainable
from models.parsers.torch_parser import TorchParser
from tests.faces import real_faces, tracked


def rnng_parsers():
    if not onnx_runtime.available():
        pytest.skip("onnxruntime/onnx not installed")
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt")
    path = registry.tier("rnng").checkpoint
    return (TorchParser.from_checkpoint(RNNGTrainable(), path, "cpu", onnx=False),
            TorchParser.from_checkpoint(RNNGTrainable(), path, "cpu", onnx=True))


def real_crops():
    crops, fives = [], []
    for name in real_faces():
        image, face = tracked(name)
        crops.append(align.warp_crop(image, face.matrix))
        fives.append(align.transform_points(face.five, face.matrix))
    return np.stack(crops), np.stack(fives)


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


def test_ort_module_is_the_torch_module():
    torch = pytest.importorskip("torch")
    if not onnx_runtime.available():
        pytest.skip("onnxruntime/onnx not installed")
    net = RNNGTrainable().build({}).components["mouth"].eval()
    x = torch.rand(3, 3, 32, 64)
    ort = onnx_runtime.OrtModule(net, x[:1])
    with torch.no_grad():
        assert torch.allclose(net(x), ort(x), atol=1e-4)

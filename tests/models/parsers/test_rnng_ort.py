"""RNN-G's CPU path without torch (models.parsers.rnng_ort): the same answers as the torch network
on real face crops, from ONNX files that belong to the committed checkpoint; torch whenever they
do not; its numpy geometry against torch's."""
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import align
from models.parsers import checkpoint as ckpt
from models.parsers import onnx_runtime, registry, rnng_ort
from models.parsers.rnng import COMPONENTS, RNNGNet, crop_theta, face_frame
from models.parsers.rnng_geometry import crop_axes, face_frame as face_frame_np, resize
from models.parsers.torch_parser import TorchParser
from tests.faces import real_faces, tracked

pytestmark = pytest.mark.skipif(not onnx_runtime.available(), reason="onnxruntime not installed")


def committed_checkpoint():
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt")
    return registry.tier("rnng").checkpoint


def real_crops():
    """The astronaut and the three portraits, aligned by the tracker as the pipeline does."""
    crops, fives = [], []
    for name in real_faces():
        image, face = tracked(name)
        crops.append(align.warp_crop(image, face.matrix))
        fives.append(align.transform_points(face.five, face.matrix))
    return np.stack(crops), np.stack(fives)


def test_committed_files_belong_to_the_committed_checkpoint_and_the_registry_runs_them():
    path = committed_checkpoint()
    assert rnng_ort.load(path) is not None, "re-export after retraining: python -m tools.export_onnx rnng"
    assert isinstance(registry.create_parser("rnng", device="cpu"), rnng_ort.RNNGOrtParser)


def test_model_auto_times_the_path_that_will_run():
    committed_checkpoint()
    from models.parsers import select
    crops, five = real_crops()
    name, parser, timings = select.pick_tier(crops[:1], five[:1], None, budget_ms=1e6, device="cpu",
                                             candidates=["rnng"], repeats=1)
    assert name == "rnng" and isinstance(parser, rnng_ort.RNNGOrtParser) and min(timings["rnng"]) > 0


def test_cpu_path_matches_torch_on_real_crops():
    path = committed_checkpoint()
    torch.set_num_threads(1)
    plain, fast = TorchParser.from_checkpoint("rnng", RNNGNet, path, "cpu"), rnng_ort.load(path)
    crops, five = real_crops()
    assert len(crops) >= 4
    a, b = plain(crops, five), fast(crops, five)
    assert a.shape == b.shape == (len(crops), 11, 256, 256) and b.dtype == np.float32
    diff = np.abs(a - b)
    same = (a.argmax(1) == b.argmax(1)).mean()
    print(f"max |diff| {diff.max():.2e}, mean {diff.mean():.2e}, same label {100 * same:.4f}%")
    # cv2.warpAffine places the component crops' taps to 1/32 pixel: ~1e-2 at most, ~2e-5 on average
    assert diff.max() < 0.05 and diff.mean() < 1e-4
    assert same >= 0.999
    assert np.allclose(b.sum(1), 1, atol=1e-4)
    one = fast(crops[:1], five[:1])   # any batch size, and faces do not interact
    assert np.abs(one[0] - b[0]).max() < 1e-5
    # an unknown point (NaN: the template's) and a 128-pixel crop (resized to the net's 256 and back)
    five_nan = five[:1].copy()
    five_nan[0, 2] = np.nan
    assert np.abs(plain(crops[:1], five_nan) - fast(crops[:1], five_nan)).max() < 0.05
    half = np.stack([np.ascontiguousarray(c[::2, ::2]) for c in crops[:1]])
    a, b = plain(half, five[:1] / 2), fast(half, five[:1] / 2)
    assert a.shape == b.shape == (1, 11, 128, 128) and (a.argmax(1) == b.argmax(1)).mean() >= 0.999


def test_other_weights_run_on_torch(tmp_path):
    """--checkpoint with other weights, or retrained weights beside stale files: the files do not
    carry that checkpoint's digest, so the registry builds the torch parser."""
    path = committed_checkpoint()
    copy = tmp_path / "rnng.pt"
    shutil.copy(path, copy)
    assert isinstance(registry.create_parser("rnng", "cpu", checkpoint=copy), TorchParser)   # no files beside it
    shutil.copytree(onnx_runtime.folder(path), onnx_runtime.folder(copy))
    assert isinstance(registry.create_parser("rnng", "cpu", checkpoint=copy), rnng_ort.RNNGOrtParser)
    blob = ckpt.load(copy, "rnng")
    model = ckpt.load_into(RNNGNet.from_config(blob["config"]), blob)
    with torch.no_grad():
        model.deconv7.bias += 0.1   # "retrained"
    ckpt.save(copy, "rnng", model, blob["config"], blob["card"])
    assert rnng_ort.load(copy) is None
    assert isinstance(registry.create_parser("rnng", "cpu", checkpoint=copy), TorchParser)


def test_exported_part_runs_like_torch_and_other_weights_are_refused(tmp_path):
    pytest.importorskip("onnx")
    net = RNNGNet.from_config({}).components["mouth"].eval()
    x = torch.rand(3, 3, 32, 64)
    from tools.export_onnx import export
    export(net, x[:1], tmp_path / "mouth.onnx", "abc")
    part = onnx_runtime.session(tmp_path / "mouth.onnx", "abc")
    with torch.no_grad():
        assert np.allclose(net(x).numpy(), part.run(None, {"x": x.numpy()})[0], atol=1e-4)
    assert onnx_runtime.session(tmp_path / "mouth.onnx", "other weights") is None
    assert onnx_runtime.session(tmp_path / "missing.onnx", "abc") is None


def test_numpy_resize_is_torchs_bilinear(astronaut):
    image = astronaut[100:356, 150:406].astype(np.float32) / 255
    t = torch.from_numpy(image).permute(2, 0, 1)[None]
    for size, antialias in ((128, True), (100, True), (128, False), (384, False), (384, True)):
        ref = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
        assert np.abs(resize(image, size, antialias) - ref[0].permute(1, 2, 0).numpy()).max() < 1e-5, (size, antialias)


def test_numpy_crop_geometry_is_the_torch_paths():
    _, five = real_crops()
    frames = face_frame(torch.from_numpy(five), 256)
    for name, comp in COMPONENTS.items():
        theta = crop_theta(comp, frames, 256).numpy()
        for i, f in enumerate(five):
            centre, axis_s, axis_t = crop_axes(comp, face_frame_np(f, 256))
            # theta: (s, t) -> normalised input coords; in pixels: centre + s axis_s + t axis_t
            expected = np.stack([axis_s, axis_t, centre + 0.5], 1) * (2 / 256) - [[0, 0, 1], [0, 0, 1]]
            assert np.allclose(theta[i], expected, atol=1e-5), name

"""The hair network (MediaPipe's 2019 hair segmentation, models.parsers.hair_net_torch): loading
its checkpoint, and running it on ONNX Runtime without torch.

`load_hair_net()` gives what the whole-head hair stage (models.perception.hair) calls:
`hair_probability(x)`, (N, 4, H, W) float32 -> (N, H, W). On the CPU that is the ONNX file
exported beside the checkpoint (`python -m tools.export_onnx hair_net`:
checkpoints/hair_net.onnx/net.onnx, tagged with the checkpoint's SHA-256), so the landmark tier's
hair effect needs no torch (1.3 s and ~300 MB at start-up); when the file is missing or belongs
to other weights, or a GPU is there, the torch network. Either way a missing, unreadable or
foreign checkpoint is a one-line HairNetError.
"""
from pathlib import Path

import numpy as np

from models.parsers import onnx_runtime
from models.parsers.checkpoint import CheckpointError

TIER = "hair_net"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "hair_net.pt"
ONNX_FILE = "net.onnx"


class HairNetError(CheckpointError):
    """A missing or unreadable hair network checkpoint (a CheckpointError: one line for the user)."""


class OrtHairNet:
    """The exported network on ONNX Runtime (one thread, as the pipeline's other stages)."""

    def __init__(self, session):
        self.session = session

    def hair_probability(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": np.ascontiguousarray(x, np.float32)})[0]


def load_hair_net(path=None):
    """The network for inference: on ONNX Runtime when its file matches the checkpoint and no GPU
    is there, else the torch network (load_torch_hair_net)."""
    path = Path(path or DEFAULT_CHECKPOINT)
    if not path.is_file():
        raise HairNetError(f"hair network checkpoint not found: {path}")
    if not onnx_runtime.nvidia_gpu():
        session = onnx_runtime.session(onnx_runtime.folder(path) / ONNX_FILE, onnx_runtime.digest(path))
        if session is not None:
            return OrtHairNet(session)
    return load_torch_hair_net(path)


def load_torch_hair_net(path=None):
    """The torch network (models.parsers.hair_net_torch.HairNet) in eval mode, float32.
    HairNetError (one line) for a missing, unreadable or foreign file. weights_only=True: a
    checkpoint is data, never code."""
    import torch
    from models.parsers.hair_net_torch import HairNet
    path = Path(path or DEFAULT_CHECKPOINT)
    if not path.is_file():
        raise HairNetError(f"hair network checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, not a torch file, or a pickle that wants to run code
        raise HairNetError(f"cannot read hair network checkpoint {path}: {exc.__class__.__name__}") from None
    if not isinstance(blob, dict) or blob.get("tier") != TIER or not isinstance(blob.get("state_dict"), dict):
        raise HairNetError(f"not a hair network checkpoint: {path}")
    net = HairNet()
    try:
        net.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (RuntimeError, AttributeError) as exc:
        raise HairNetError(f"not a hair network checkpoint: {path} ({str(exc).splitlines()[0][:120]})") from None
    return net.eval()

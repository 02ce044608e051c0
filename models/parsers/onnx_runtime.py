"""ONNX Runtime for the convolutional parts of a learned tier, where it beats torch on the CPU.

A network's plain convolutional sub-modules (no data-dependent control flow) are exported to
ONNX in memory when the parser loads, from the same weights, and run by an ONNX Runtime session
behind a torch module, so the tier's own code (numba's recurrence in RNN-G, grid sampling,
pasting) stays as it is. Training and GPUs keep torch. One intra-op thread, no spinning: the
pipeline overlaps its stages itself, and ONNX Runtime's default idle spin would eat the other
core (as OpenBLAS's did).

RNN-G's ShallowCNN and component nets on this 2-core CPU, one thread, batch of one face
(`python -m benchmarks.onnx_vs_torch`): see the README's Speed section.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn


def available() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def session(model: nn.Module, example: torch.Tensor, threads: int = 1):
    """An ONNX Runtime session for `model` (inputs like `example`; any batch size)."""
    import onnxruntime as ort
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (example,), buffer, input_names=["x"], dynamo=False, opset_version=17,
                          dynamic_axes={"x": {0: "n"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


class OrtModule(nn.Module):
    """A torch module's inference forward run by ONNX Runtime: tensors in, tensors out (a tuple
    when the module returns several)."""

    def __init__(self, model: nn.Module, example: torch.Tensor, threads: int = 1):
        super().__init__()
        self.session = session(model, example, threads)
        self.outputs = len(self.session.get_outputs())

    def forward(self, x: torch.Tensor):
        out = self.session.run(None, {"x": np.ascontiguousarray(x.detach().float().cpu().numpy())})
        tensors = tuple(torch.from_numpy(o) for o in out)
        return tensors if self.outputs > 1 else tensors[0]

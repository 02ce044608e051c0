"""ONNX Runtime for the convolutional parts of a learned tier, where it beats torch on the CPU.

A network's plain convolutional sub-modules (no data-dependent control flow) are exported to
ONNX files beside the checkpoint, once:

    python -m models.parsers.onnx_runtime rnng      # checkpoints/rnng.onnx/{cnn,eye,nose,mouth}.onnx

and, when the parser loads on the CPU, run by ONNX Runtime sessions behind torch modules, so the
tier's own code (numba's recurrence in RNN-G, grid sampling, pasting) stays as it is. Each file
records the SHA-256 of the checkpoint it was exported from: a file that does not match (another
--checkpoint, retrained weights) is not used and torch runs that part. Exporting at every start
instead cost 1.8 s, more than ONNX Runtime saves on a short clip. Training and GPUs keep torch.
One intra-op thread, no spinning: the pipeline overlaps its stages itself, and an idle spinning
thread would eat the other core (as OpenBLAS's did).

Timings against torch: `python -m benchmarks.onnx_vs_torch` (README, Speed).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def folder(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".onnx")


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export(model: nn.Module, example: torch.Tensor, path: Path, checkpoint_digest: str) -> None:
    """Write `model` (inputs like `example`; any batch size) as ONNX, tagged with the digest of
    the checkpoint its weights came from. Needs the `onnx` package (torch's exporter)."""
    import onnx
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (example,), buffer, input_names=["x"], dynamo=False, opset_version=17,
                          dynamic_axes={"x": {0: "n"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {"checkpoint_sha256": checkpoint_digest})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


class OrtModule(nn.Module):
    """A torch module's inference forward run by ONNX Runtime from an exported file: tensors in,
    tensors out (a tuple when the graph has several outputs)."""

    def __init__(self, path: Path, threads: int = 1):
        super().__init__()
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.checkpoint_sha256 = self.session.get_modelmeta().custom_metadata_map.get("checkpoint_sha256")
        self.outputs = len(self.session.get_outputs())

    def forward(self, x: torch.Tensor):
        out = self.session.run(None, {"x": np.ascontiguousarray(x.detach().float().cpu().numpy())})
        tensors = tuple(torch.from_numpy(o) for o in out)
        return tensors if self.outputs > 1 else tensors[0]


def load(path: Path, checkpoint_digest: str) -> OrtModule | None:
    """The exported part, or None when there is none or it came from other weights."""
    if not available() or not Path(path).is_file():
        return None
    module = OrtModule(path)
    return module if module.checkpoint_sha256 == checkpoint_digest else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export a tier's convolutional parts to ONNX beside its checkpoint")
    ap.add_argument("tier", choices=["rnng"])
    args = ap.parse_args(argv)
    from models.parsers import registry
    from models.parsers.torch_parser import TorchParser
    path = registry.tier(args.tier).checkpoint
    parser = TorchParser.from_checkpoint(args.tier, registry.network_class(args.tier), path, "cpu", onnx=False)
    for name, (module, example) in parser.model.onnx_parts().items():
        target = folder(path) / f"{name}.onnx"
        export(module, example, target, digest(path))
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ONNX Runtime files of a learned tier: what its CPU path runs instead of torch.

A network's learned parts (plain convolutional modules, no data-dependent control flow) are
exported to ONNX files beside the checkpoint, with a config.json holding whatever else the path
needs (the network's config; RNN-G: its recurrence's W and b), once:

    python -m models.parsers.onnx_runtime rnng      # checkpoints/rnng.onnx/

and rerun after every retraining. Each file records the SHA-256 of the checkpoint it was
exported from: files that do not match (another --checkpoint, retrained weights) are not used and
the tier runs on torch (models.parsers.rnng_ort). Exporting at every start instead cost 1.8 s, more
than ONNX Runtime saves on a short clip. One intra-op thread, no spinning: the pipeline overlaps
its stages itself, and an idle spinning thread would eat the other core (as OpenBLAS's did).

This module imports torch only to export: running the files needs onnxruntime alone.
Timings against torch: `python -m benchmarks.onnx_vs_torch` (README, Speed).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

CONFIG = "config.json"


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def nvidia_gpu() -> bool:
    """Whether the NVIDIA driver sees a GPU (Linux), asked without importing torch: there
    device "auto" runs the networks on torch (CUDA when torch has it)."""
    return any(Path("/proc/driver/nvidia/gpus").glob("*"))


def folder(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".onnx")


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export(model, example, path: Path, checkpoint_digest: str, any_size: bool = False) -> None:
    """Write torch module `model` (inputs like tensor `example`; any batch size, and any height
    and width with `any_size`) as ONNX, tagged with the digest of the checkpoint its weights came
    from. Needs torch and the `onnx` package."""
    import onnx
    import torch
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (example,), buffer, input_names=["x"], dynamo=False, opset_version=17,
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"} if any_size else {0: "n"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {"checkpoint_sha256": checkpoint_digest})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def session(path: Path, checkpoint_digest: str, threads: int = 1):
    """An ONNX Runtime session for an exported part (run it with {"x": float32 array}), or None
    when the file is missing or came from other weights."""
    if not available() or not Path(path).is_file():
        return None
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    part = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tag = part.get_modelmeta().custom_metadata_map.get("checkpoint_sha256")
    return part if tag == checkpoint_digest else None


def read_config(checkpoint: Path) -> dict | None:
    """The exported config.json beside `checkpoint`, or None when missing or from other weights."""
    path = folder(checkpoint) / CONFIG
    if not Path(checkpoint).is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return config if config.get("checkpoint_sha256") == digest(checkpoint) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export a tier's learned parts to ONNX beside its checkpoint")
    ap.add_argument("tier", choices=["rnng", "hair_net"])
    args = ap.parse_args(argv)
    if args.tier == "hair_net":
        return export_hair_net()
    from models.parsers import checkpoint as ckpt
    from models.parsers import registry
    path = registry.tier(args.tier).checkpoint
    network = registry.network_class(args.tier)
    blob = ckpt.load(path, args.tier)
    model = ckpt.load_into(network.from_config(blob["config"]), blob).eval()
    sha = digest(path)
    for name, (module, example) in model.onnx_parts().items():
        target = folder(path) / f"{name}.onnx"
        export(module, example, target, sha)
        print(f"wrote {target}")
    config = {"checkpoint_sha256": sha, "config": {**network.defaults, **blob["config"]}, **model.recurrence()}
    (folder(path) / CONFIG).write_text(json.dumps(config) + "\n")
    print(f"wrote {folder(path) / CONFIG}")
    return 0


def export_hair_net() -> int:
    from torch import nn

    from models.parsers import hair_net

    class HairProbability(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).softmax(1)[:, 1]

    import torch
    path = hair_net.DEFAULT_CHECKPOINT
    target = folder(path) / hair_net.ONNX_FILE
    export(HairProbability(hair_net.load_torch_hair_net(path)), torch.zeros(1, 4, 384, 384), target, digest(path),
           any_size=True)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

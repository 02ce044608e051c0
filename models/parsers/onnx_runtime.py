"""ONNX Runtime files of a network: what its CPU path runs instead of torch.

A network's learned parts (plain convolutional modules, no data-dependent control flow) are
exported to ONNX files beside the checkpoint, with a config.json holding whatever else the path
needs (the network's config; RNN-G: its recurrence's W and b), once:

    python -m tools.export_onnx rnng          # checkpoints/rnng.onnx/
    python -m tools.export_onnx hair_net      # checkpoints/hair_net.onnx/

and rerun after every retraining. Each file records the SHA-256 of the checkpoint it was
exported from: files that do not match (another --checkpoint, retrained weights) are not used and
the tier runs on torch (models.parsers.rnng_ort). Exporting at every start instead cost 1.8 s, more
than ONNX Runtime saves on a short clip. One intra-op thread, no spinning: the pipeline overlaps
its stages itself, and an idle spinning thread would eat the other core (as OpenBLAS's did).

Running the files needs onnxruntime alone (no torch); exporting needs torch and onnx.
Timings against torch: `python -m benchmarks.onnx_vs_torch` (docs/speed_history.md, "ONNX Runtime").
"""
from __future__ import annotations

import hashlib
import json
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

"""Checkpoint files: one .pt per trained tier, fp16 weights plus the config and card.

    {"tier": name, "config": dict, "state_dict": fp16 tensors, "card": dict}

torch is imported by the functions that open or write a file, not by the module: the CLI and
the tier picker import CheckpointError and this module at start-up, and the landmark tier runs
without torch. `read_card` reads a card without torch (`--model auto` ranks the tiers by them).
"""
import io
import json
import pickle
import zipfile
from pathlib import Path


class CheckpointError(Exception):
    pass


def save(path, tier: str, model, config: dict, card: dict | None = None, fp16: bool = True):
    import torch
    state = {k: (v.half() if fp16 and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # config and card go through JSON so that only plain data is pickled (torch.__version__ is a
    # str subclass, for instance): the file then opens with weights_only=True
    plain = json.loads(json.dumps({"config": config, "card": card or {}}, default=str))
    torch.save({"tier": tier, "state_dict": state, **plain}, path)


def read(path) -> dict:
    """Open any .pt file of ours (checkpoint or training state) without running code from it.

    weights_only=True: torch's restricted unpickler takes tensors, numbers, strings, lists, dicts
    and tuples only, so a crafted pickle cannot execute anything; we store nothing else (the numpy
    RNG state of a training run is kept as a plain list, see models.training.train)."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # TorchVersion (a str) sits in the cards of checkpoints written before save() went through JSON
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, not a torch file, or it holds objects other than plain data
        reason = "it holds code or objects other than weights" if "Weights only load failed" in str(exc) \
            else exc.__class__.__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path} is not a checkpoint of this project")
    return blob


def load(path, tier: str) -> dict:
    """Read a checkpoint for `tier`; a clear CheckpointError if missing, unreadable or another tier's."""
    blob = read(path)
    if "state_dict" not in blob:
        raise CheckpointError(f"{path} is not a checkpoint of this project")
    if blob.get("tier") != tier:
        raise CheckpointError(f"{path} holds a '{blob.get('tier')}' model, not '{tier}'")
    return blob


def class_prior(config: dict):
    """The checkpoint's per-class prior-correction factors (models.parsers.class_prior), or None."""
    factors = config.get("class_prior")
    if factors is None:
        return None
    import numpy as np
    factors = np.asarray(factors, np.float32)
    if factors.shape != (11,) or not (factors > 0).all():
        raise CheckpointError(f"the checkpoint's class_prior must be 11 positive numbers, not {factors.tolist()}")
    return factors


def load_into(model, blob: dict):
    """The checkpoint's weights (stored fp16) into `model` (a torch.nn.Module), in fp32."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit the '{blob.get('tier')}' model: {str(exc)[:200]}") from None
    return model


class _Stub:
    """Stands in for every torch object in a checkpoint's pickle when only the card is wanted."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _CardUnpickler(pickle.Unpickler):
    """Plain data only: torch's classes and functions become inert stubs and the tensors' storages
    are not read; any other class is refused, so nothing in the file can run."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return super().find_class(module, name)
        if (module, name) == ("torch.torch_version", "TorchVersion"):   # a str, in older cards
            return str
        if module == "torch" or module.startswith("torch."):
            return _Stub
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")

    def persistent_load(self, pid):
        return None


def read_card(path, tier: str) -> dict:
    """The card of `tier`'s checkpoint at `path`, read without torch (10 ms instead of torch's
    1.3 s import); {} when the file is missing, unreadable or another tier's."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            blob = _CardUnpickler(io.BytesIO(archive.read(name))).load()
    except Exception:  # missing, not a zip (corrupt), no pickle, or objects other than plain data
        return {}
    if not isinstance(blob, dict) or blob.get("tier") != tier or not isinstance(blob.get("card"), dict):
        return {}
    return blob["card"]

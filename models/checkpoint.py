"""Checkpoint files: one .pt per trained tier, fp16 weights plus the config and card.

    {"tier": name, "config": dict, "state_dict": fp16 tensors, "card": dict}
"""
from pathlib import Path

import torch


class CheckpointError(Exception):
    pass


def save(path, tier: str, model: torch.nn.Module, config: dict, card: dict | None = None, fp16: bool = True):
    state = {k: (v.half() if fp16 and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"tier": tier, "config": config, "state_dict": state, "card": card or {}}, path)


def load(path, tier: str) -> dict:
    """Read a checkpoint for `tier`; a clear CheckpointError if missing, unreadable or another tier's."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt or not a torch file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.__class__.__name__}") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise CheckpointError(f"{path} is not a checkpoint of this project")
    if blob.get("tier") != tier:
        raise CheckpointError(f"{path} holds a '{blob.get('tier')}' model, not '{tier}'")
    return blob


def load_into(model: torch.nn.Module, blob: dict) -> torch.nn.Module:
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit the '{blob.get('tier')}' model: {str(exc)[:200]}") from None
    return model

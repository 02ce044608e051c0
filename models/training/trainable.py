"""What a trainable tier hands to the shared training loop (models.training.train).

A tier's training recipe (models.training.recipes.<tier>) is a `Recipe`: it names the tier's
network class (a models.parsers.network.TierNet, which also serves inference), gives the
default config and the loss, and overrides the optional hooks it needs. The loop calls every
method of `Trainable` on every recipe; `Recipe` holds the defaults of the optional ones.
Batches are the dicts of models.parsers.network; `stage` is the loop's Stage below.
"""
import contextlib
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import torch

from models.parsers.network import TierNet


@dataclass
class Stage:
    """What the hooks get: the stage's name, position and length, the run config with the
    stage's overrides, the device, and `autocast()` (bf16 on CUDA, a no-op on CPU)."""
    name: str = "train"
    index: int = 0
    epochs: int = 1
    config: dict = field(default_factory=dict)
    device: torch.device = torch.device("cpu")
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


@runtime_checkable
class Trainable(Protocol):
    name: str                 # registry tier name, e.g. "rnng"
    network: type[TierNet]    # the tier's network class (models.parsers)

    def default_config(self) -> dict:
        """Model and training hyper-parameters (lr, epochs, batch size, ...) from the paper."""

    def build(self, config: dict) -> TierNet:
        """A fresh network for this config (config holds everything needed to rebuild it)."""

    def prepare(self, model: TierNet, config: dict, data_dir) -> None:
        """Once before the first step (after --resume has loaded the weights): what the model
        needs from outside before it trains (a teacher's layers, exemplars of the training split)."""

    def extra_datasets(self, config: dict, data_dir) -> dict:
        """{name: Dataset} cycled beside the main loader; their batches arrive as batch[name]."""

    def stages(self, config: dict, extras: dict) -> list[tuple[str, int, dict]]:
        """[(stage name, epochs, config overrides), ...]; `extras` are the opened extra datasets."""

    def parameters_for(self, model: TierNet, stage: Stage):
        """Parameters, or param-group dicts ("lr_mult" scales the lr), that `stage` trains."""

    def loss(self, model: TierNet, batch: dict, stage: Stage) -> tuple[torch.Tensor, dict]:
        """Training loss on a batch and a dict of floats to log."""

    def train_step(self, model: TierNet, batch: dict, optimizer, stage: Stage) -> dict:
        """One update; {"loss": float, ...} to log. The loop sets the learning rate before it."""


class Recipe:
    """Defaults of the optional hooks: one stage of config["epochs"], all parameters, no extra
    data, nothing to prepare, and the plain step (zero_grad, loss, backward, clip, step)."""
    name: str
    network: type[TierNet]

    def default_config(self) -> dict:
        return dict(self.network.defaults)

    def build(self, config: dict) -> TierNet:
        return self.network.from_config(config)

    def prepare(self, model, config, data_dir) -> None:
        pass

    def extra_datasets(self, config, data_dir) -> dict:
        return {}

    def stages(self, config, extras) -> list[tuple[str, int, dict]]:
        return [("train", int(config["epochs"]), {})]

    def parameters_for(self, model, stage):
        return model.parameters()

    def loss(self, model, batch, stage):
        raise NotImplementedError

    def train_step(self, model, batch, optimizer, stage) -> dict:
        optimizer.zero_grad(set_to_none=True)
        with stage.autocast():
            loss, logs = self.loss(model, batch, stage)
        loss.backward()
        if stage.config.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), stage.config["grad_clip"])
        optimizer.step()
        return {**{k: float(v) for k, v in (logs or {}).items()}, "loss": float(loss.detach())}


BATCH_KEYS = ("image", "label", "five")


def merge_batches(*batches) -> dict:
    """One batch from several (the main one and the loop's extra ones), image/label/five only."""
    batches = [b for b in batches if b is not None]
    return {k: torch.cat([b[k] for b in batches]) for k in BATCH_KEYS if all(k in b for b in batches)}


def open_train_extra(config: dict, data_dir, size: int, sources=None, label_kinds=None):
    """The training split of `data_dir` (augmented as config says) restricted to `sources` and
    `label_kinds`, for an extra_datasets hook; None when nothing matches."""
    from models.data.augment import make_augment
    from models.data.dataset import FaceParsingDataset
    ds = FaceParsingDataset(data_dir, "train", size, augment=make_augment(config, size), sources=sources,
                            label_kinds=label_kinds)
    return ds if len(ds) else None


# Real faces beside the synthetic ones, the way RNN-G trains: a main batch of fully labelled
# FaceSynthetics faces plus a cycled batch of real faces (LFW with hair masks and auto-labelled
# face classes, auto-labelled portraits and video frames).
REAL_FACE_CONFIG = {"sources": ["facesynthetics"], "real_sources": ["lfw_hair", "portraits", "video:"],
                    "real_batch_size": 12}


def real_face_datasets(config: dict, data_dir) -> dict:
    """{"real": the real faces of config["real_sources"]} for an extra_datasets hook ({} if none);
    the loop batches it by config["real_batch_size"] and the loss merges it (merge_batches)."""
    if not config.get("real_sources"):
        return {}
    ds = open_train_extra(config, data_dir, int(config["input_size"]), sources=config["real_sources"],
                          label_kinds=["full", "partial", "auto"])
    return {"real": ds} if ds is not None else {}

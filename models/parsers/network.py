"""What a learned tier's network offers to inference (TorchParser) and to training alike.

A batch is a dict of tensors at the tier's input size S:
    image  float32 (N, 3, S, S) RGB in [0, 1] (networks normalise inside)
    label  int64   (N, S, S) class ids, 255 = ignore (training only)
    five   float32 (N, 5, 2) five points in pixels of the S x S crop
    mesh   float32 (N, 478, 2) face-mesh points in pixels, NaN where unknown
"""
import torch
import torch.nn as nn


class TierNet(nn.Module):
    """Base of every learned tier's network. A checkpoint stores the config the network was
    built from; `from_config` rebuilds it (architecture keys missing from an older config take
    `defaults`) and `predict` turns a batch into probabilities. Training recipes
    (models.training.recipes) build the same class and add losses; inference needs nothing else."""

    defaults: dict = {}  # architecture hyper-parameters, the paper's unless the tier says otherwise
    input_size: int      # S, the crop side the network takes (set by __init__ from the config)

    @classmethod
    def from_config(cls, config: dict) -> "TierNet":
        raise NotImplementedError

    def predict(self, batch: dict) -> torch.Tensor:
        """Probabilities (N, 11, S, S) for a batch (eval mode and no grad are the caller's job)."""
        raise NotImplementedError

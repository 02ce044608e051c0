"""What a trainable tier hands to the shared training loop (models.training.train) and to TorchParser.

A batch is a dict of tensors at the tier's input size S:
    image  float32 (N, 3, S, S) RGB in [0, 1] (models normalise inside forward)
    label  int64   (N, S, S) class ids, 255 = ignore (unlabelled pixels, unlabelled images)
    five   float32 (N, 5, 2) five points in pixels of the S x S crop
    mesh   float32 (N, 478, 2) face-mesh points in pixels, NaN where unknown
"""
from typing import Protocol

import torch


class Trainable(Protocol):
    name: str          # registry name, e.g. "rnng"
    input_size: int    # S

    def build(self, config: dict) -> torch.nn.Module:
        """A fresh model for this config (config holds everything needed to rebuild it)."""

    def default_config(self) -> dict:
        """Model and training hyper-parameters (lr, epochs, batch size, ...) from the paper."""

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        """Training loss on a batch and a dict of floats to log."""

    def predict(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        """Probabilities (N, 11, S, S) for a batch (eval mode, no grad is the caller's job)."""

"""The one parser interface that every tier implements.

A parser is a function of (aligned crops, their landmarks) -> per-class probabilities:

    crops  uint8  (N, S, S, 3) RGB aligned crops (core.align, S = 256 in the pipeline)
    five   float32 (N, 5, 2) five points in crop pixels (core.align order)
    mesh   float32 (N, 478, 2) face-mesh points in crop pixels, or None; a face whose mesh
           is unknown (detector fallback) has a NaN row block
    ->     float32 (N, 11, S, S) probabilities, classes in core.classes order, summing to 1

Tiers resize internally to their own input size; the output is always at the crop size.
`classes` (optional): the only classes the caller will read; a tier may leave the others at 0
(the landmark tier then skips its skin and hair models: lipstick alone needs the lips).
"""
from abc import ABC, abstractmethod

import numpy as np


class Parser(ABC):
    name: str = "?"
    needs_mesh: bool = False  # True: faces without a mesh get an all-background answer

    @abstractmethod
    def parse(self, crops: np.ndarray, five: np.ndarray, mesh: np.ndarray | None = None) -> np.ndarray:
        ...

    def parse_classes(self, crops, five, mesh, classes) -> np.ndarray:
        """parse() for a caller that reads only `classes`; tiers that compute every class anyway
        keep this default."""
        return self.parse(crops, five, mesh)

    def __call__(self, crops, five, mesh=None, classes=None):
        if len(crops) == 0:
            return np.zeros((0, 11) + crops.shape[1:3], np.float32)
        if classes is None:
            return self.parse(crops, five, mesh)
        return self.parse_classes(crops, five, mesh, frozenset(classes))

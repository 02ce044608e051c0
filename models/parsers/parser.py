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
`mirror` (optional, stills): also parse the mirror image of each crop and average the two.
"""
from abc import ABC, abstractmethod

import numpy as np

from core.classes import FLIP_PERMUTATION
from core.mesh import FIVE_MIRROR, MESH_MIRROR, mirror_points
from models.parsers.class_prior import reweigh


class Parser(ABC):
    name: str = "?"
    needs_mesh: bool = False  # True: faces without a mesh get an all-background answer
    # whether averaging with the parse of the mirror image helps (learned tiers; measured on RNN-G,
    # README, Accuracy); the landmark tier draws the same polygons from the mirrored mesh
    mirror_helps: bool = True
    # per-class factors undoing the class weighting of the tier's training, or None
    # (models.parsers.class_prior; learned tiers read them from their checkpoint's config)
    prior: np.ndarray | None = None

    @abstractmethod
    def parse(self, crops: np.ndarray, five: np.ndarray, mesh: np.ndarray | None = None) -> np.ndarray:
        ...

    def parse_classes(self, crops, five, mesh, classes) -> np.ndarray:
        """parse() for a caller that reads only `classes`; tiers that compute every class anyway
        keep this default."""
        return self.parse(crops, five, mesh)

    def __call__(self, crops, five, mesh=None, classes=None, mirror=False):
        if len(crops) == 0:
            return np.zeros((0, 11) + crops.shape[1:3], np.float32)
        if classes is not None:   # the mirror image's left is the crop's right: ask for both
            classes = frozenset(classes) | (frozenset(FLIP_PERMUTATION[list(classes)].tolist()) if mirror else frozenset())
        out = self._parse(crops, five, mesh, classes)
        if mirror and self.mirror_helps:
            width = crops.shape[2]
            flipped = self._parse(np.ascontiguousarray(crops[:, :, ::-1]), mirror_points(five, FIVE_MIRROR, width),
                                  None if mesh is None else mirror_points(mesh, MESH_MIRROR, width), classes)
            out = np.asarray(out, np.float32)
            out += flipped[:, FLIP_PERMUTATION, :, ::-1]
            out *= np.float32(0.5)
        if self.prior is not None:
            out = reweigh(np.asarray(out, np.float32), self.prior)
        return out

    def _parse(self, crops, five, mesh, classes):
        return self.parse(crops, five, mesh) if classes is None else self.parse_classes(crops, five, mesh, classes)

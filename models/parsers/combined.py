"""The `combined` tier: per class the best of the two sources we have on real photos, in
probability space so that the smoother and the effects get proper probabilities (issue #13).

    brows, eyes, upper lip, inner mouth,   the average of the landmark tier's polygons
    lower lip (BLENDED)                    (models.parsers.landmark_parser) and RNN-G's probabilities
    background, skin, nose, hair           RNN-G (as `--model rnng` runs: ONNX Runtime on the CPU,
                                           torch elsewhere), rescaled to the mass the blend leaves

Per pixel, with B = BLENDED, w = LANDMARK_WEIGHT and L = sum over B of the blended planes:

    out[b] = w * landmark[b] + (1 - w) * rnng[b]               b in B
    out[c] = rnng[c] * (1 - L) / sum_{c' not in B} rnng[c']    c not in B

so out sums to 1. Where the blend leaves mass that RNN-G gave to B, it goes to skin (a tiny EPS
on RNN-G's skin): around eyes, brows and lips that is what it is.

Why the average: on real photos the landmark tier draws eyes and lips better than RNN-G and
RNN-G the brows (issue #13's hidden figures), but their errors are not the same ones. On the
held-out FaceSynthetics faces the average beat both sources on every class it covers but the
left eye, 0.007 below RNN-G's (checkpoints/combined.md): taking one source per class, as this tier did
before, left that on the table. w = 0.5: the two weigh the same, nothing fitted.

The pipeline treats this tier like RNN-G: it needs no mesh (a face the detector alone found gets
RNN-G's parse), its hair and skin are kept inside the person mask and its hair is mixed with the
hair network's at RNN-G's weight. The face mesh is already computed by the tracker, so the
landmark tier adds only its part polygons (no skin or hair colour models, no person mask).
"""
import cv2
import numpy as np

from core import channels
from core.classes import (INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NUM_CLASSES, RIGHT_BROW, RIGHT_EYE, SKIN,
                          UPPER_LIP)
from models.parsers.landmark_parser import LandmarkParser
from models.parsers.parser import Parser

BLENDED = (LEFT_BROW, RIGHT_BROW, LEFT_EYE, RIGHT_EYE, UPPER_LIP, INNER_MOUTH, LOWER_LIP)
FROM_RNNG = tuple(c for c in range(NUM_CLASSES) if c not in BLENDED)
LANDMARK_WEIGHT = 0.5
EPS = 1e-6


def combine(landmark: np.ndarray, rnng: np.ndarray) -> np.ndarray:
    """(N, 11, S, S) combined probabilities from the landmark tier's (its BLENDED planes are
    read) and RNN-G's; `rnng` is modified in place and returned. In place, plane by plane: the
    7 blended planes' temporaries were most of this step's cost (0.9 ms a face)."""
    w = LANDMARK_WEIGHT
    by_class = rnng.swapaxes(0, 1)                            # (11, N, S, S) views of the planes
    theirs = channels.summed(by_class, BLENDED)               # RNN-G's mass on B
    for i in range(len(rnng)):
        for c in BLENDED:
            plane = rnng[i, c]
            plane *= 1.0 - w
            cv2.scaleAdd(landmark[i, c], w, plane, dst=plane)  # w * landmark + (1 - w) * rnng
    taken = channels.summed(by_class, BLENDED)
    np.subtract(1.0, theirs, out=theirs)                      # RNN-G's mass outside B (it sums to 1)
    np.maximum(theirs, 0.0, out=theirs)
    theirs += EPS
    scale = np.subtract(1.0, taken, out=taken)
    scale /= theirs
    rnng[:, SKIN] += EPS
    for c in FROM_RNNG:
        rnng[:, c] *= scale
    return rnng


class CombinedParser(Parser):
    name = "combined"
    needs_mesh = False   # mesh-less faces get RNN-G's parse

    def __init__(self, device: str = "auto", checkpoint=None):
        from models.parsers.registry import create_parser
        self.rnng = create_parser("rnng", device=device, checkpoint=checkpoint)
        self.landmarks = LandmarkParser()
        self.device = getattr(self.rnng, "device", None)

    def parse(self, crops, five, mesh=None):
        return self.parse_classes(crops, five, mesh, frozenset(range(NUM_CLASSES)))

    def parse_classes(self, crops, five, mesh, classes):
        """RNN-G's parse and the landmark tier's part polygons (none of its skin or hair models,
        which cost most of its parse); a face without a mesh gets RNN-G's parse. Every blended
        part is drawn whatever `classes` asks: the other classes' share depends on them all."""
        no_mesh = np.ones(len(crops), bool) if mesh is None else np.isnan(mesh).any(axis=(1, 2))
        probs = np.asarray(self.rnng(crops, five, mesh, classes), np.float32)   # a fresh array: combined in place
        if no_mesh.all():
            return probs
        meshed = ~no_mesh
        # called as a Parser (as RNN-G above): its answer with its own prior correction
        if meshed.all():   # the usual case: no copies of the planes in and out of a boolean index
            return combine(self.landmarks(crops, five, mesh, frozenset(BLENDED)), probs)
        landmark = self.landmarks(crops[meshed], five[meshed], mesh[meshed], frozenset(BLENDED))
        probs[meshed] = combine(landmark, probs[meshed])
        return probs

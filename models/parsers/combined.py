"""The `combined` tier: per class the source that is best on real photos (issue #13), in
probability space so that the smoother and the effects get proper probabilities.

    eyes, upper lip, inner mouth, lower lip   the landmark tier's polygons (models.parsers.landmark_parser)
    background, skin, brows, nose, hair       RNN-G (as `--model rnng` runs: ONNX Runtime on the CPU,
                                              torch elsewhere), rescaled to the mass the landmark tier leaves

Per pixel, with S = FROM_LANDMARKS and L = sum of the landmark tier's S probabilities:

    out[s] = landmark[s]                                       s in S
    out[c] = rnng[c] * (1 - L) / sum_{c' not in S} rnng[c']    c not in S

so out sums to 1. Where RNN-G puts (nearly) all its mass on S and the landmark tier does not,
the mass left goes to skin (a tiny EPS on RNN-G's skin): around eyes and lips that is what it is.
The same per-class rule labels real faces for training (models.data.readers.fused), which takes
its class lists from here.

The pipeline treats this tier like RNN-G: it needs no mesh (a face the detector alone found gets
RNN-G's parse), its hair and skin are kept inside the person mask and its hair is mixed with the
hair network's at RNN-G's weight. The face mesh is already computed by the tracker, so the
landmark tier adds only its part polygons (no skin or hair colour models, no person mask).
"""
import numpy as np

from core.classes import INNER_MOUTH, LEFT_EYE, LOWER_LIP, NUM_CLASSES, RIGHT_EYE, SKIN, UPPER_LIP
from models.parsers.landmark_parser import LandmarkParser
from models.parsers.parser import Parser

FROM_LANDMARKS = (LEFT_EYE, RIGHT_EYE, UPPER_LIP, INNER_MOUTH, LOWER_LIP)
FROM_RNNG = tuple(c for c in range(NUM_CLASSES) if c not in FROM_LANDMARKS)
GROUPS = ((LEFT_EYE, RIGHT_EYE), (UPPER_LIP, INNER_MOUTH, LOWER_LIP))   # the parts the landmark tier draws
EPS = 1e-6


def combine(landmark: np.ndarray, rnng: np.ndarray) -> np.ndarray:
    """(N, 11, S, S) combined probabilities from the landmark tier's (its FROM_LANDMARKS planes
    are read) and RNN-G's; `rnng` is modified in place and returned."""
    taken, theirs = landmark[:, LEFT_EYE].copy(), rnng[:, LEFT_EYE].copy()
    for c in FROM_LANDMARKS[1:]:
        taken += landmark[:, c]
        theirs += rnng[:, c]
    np.subtract(1.0, theirs, out=theirs)                      # RNN-G's mass outside S (it sums to 1)
    np.maximum(theirs, 0.0, out=theirs)
    scale = np.subtract(1.0, taken, out=taken)
    scale /= theirs + EPS
    rnng[:, SKIN] += EPS
    for c in FROM_RNNG:
        rnng[:, c] *= scale
    for c in FROM_LANDMARKS:
        rnng[:, c] = landmark[:, c]
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
        """Only what `classes` needs: lipstick alone (the lips) is the landmark tier's polygons,
        RNN-G runs only for the faces without a mesh."""
        no_mesh = np.ones(len(crops), bool) if mesh is None else np.isnan(mesh).any(axis=(1, 2))
        landmark = self.landmarks.parse_classes(crops, five, mesh, frozenset(FROM_LANDMARKS))
        if classes <= frozenset(FROM_LANDMARKS):
            if no_mesh.any():
                landmark[no_mesh] = self.rnng(crops[no_mesh], five[no_mesh],
                                              None if mesh is None else mesh[no_mesh], classes)
            return landmark
        probs = np.asarray(self.rnng(crops, five, mesh, classes), np.float32)   # a fresh array: combined in place
        if not no_mesh.any():
            return combine(landmark, probs)
        meshed = ~no_mesh
        probs[meshed] = combine(landmark[meshed], probs[meshed])
        return probs

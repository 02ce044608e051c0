"""The fused teacher signal for real faces (issue #13 item 1): per class the source that is
best on real photos, in the aligned 256 crop.

    eyes, upper lip, inner mouth, lower lip   the landmark tier (models.parsers.landmark_parser)
    skin, brows, nose, background             RNN-G (checkpoints/rnng.pt) as the live pipeline runs it:
                                              hair and skin kept inside mediapipe's person mask of the frame
    hair                                      the hair network on the whole head, mixed with RNN-G's
                                              hair share (models.perception.hair.fuse, the pipeline's rule)

Rule per pixel: start from the pipeline's RNN-G label; where the landmark tier draws an eye or
a lip/mouth class, that class; where RNN-G says eye/lip/mouth but the landmark tier does not,
RNN-G's best class among the others. Pixels where the two sources disagree badly, the
landmark tier drawing an eye (or lip) where RNN-G gives eyes (or mouth) under DISAGREE
probability, are ignore (255): one of the two is wrong there and nobody says which
(benchmarks/signal.py measures how often the fused label is right on such pixels).

`FusedLabeler` plugs into models.data.readers.autolabel.AutoLabeler as its `parser`
(`python -m models.data build ... --labels fused`); LFW's hair masks override its hair
(models.data.readers.lfw_hair.combine_labels).
"""
import numpy as np

from core import align
from core.classes import IGNORE, INNER_MOUTH, LEFT_EYE, LOWER_LIP, RIGHT_EYE, UPPER_LIP

# the landmark tier's parts, taken as they are (the `combined` tier took the same split when these
# labels were made; it now averages the two sources' brows, eyes and lips)
FROM_LANDMARKS = (LEFT_EYE, RIGHT_EYE, UPPER_LIP, INNER_MOUTH, LOWER_LIP)
GROUPS = ((LEFT_EYE, RIGHT_EYE), (UPPER_LIP, INNER_MOUTH, LOWER_LIP))

DISAGREE = 0.02   # RNN-G's probability of the landmark tier's group under this: ignore


def combine(landmark: np.ndarray, probs: np.ndarray, disagree: float = DISAGREE) -> np.ndarray:
    """(S, S) uint8 fused label from the landmark tier's label map and RNN-G's (11, S, S)
    probabilities (person mask and whole-head hair already applied)."""
    from_landmarks = np.isin(landmark, FROM_LANDMARKS)
    others = probs.copy()
    others[list(FROM_LANDMARKS)] = -1.0
    label = np.where(np.isin(probs.argmax(0), FROM_LANDMARKS), others.argmax(0), probs.argmax(0))
    label = np.where(from_landmarks, landmark, label).astype(np.uint8)
    if disagree > 0:
        for group in GROUPS:
            drawn = np.isin(landmark, group)
            label[drawn & (probs[list(group)].sum(0) < disagree)] = IGNORE
    return label


class FusedLabeler:
    """Labels a face of a frame from its three sources. Models load at the first face."""
    needs_mesh = True

    def __init__(self, rnng_checkpoint=None, disagree: float = DISAGREE):
        self.rnng_checkpoint = rnng_checkpoint
        self.disagree = disagree
        self._models = None

    def _load(self):
        if self._models is None:
            from models.parsers.hair_net import load_hair_net
            from models.parsers.landmark_parser import LandmarkParser
            from models.parsers.registry import create_parser
            from models.perception.hair import HairStage
            from models.perception.person_mask import PersonSegmenter
            self._models = dict(landmarks=LandmarkParser(),
                                rnng=create_parser("rnng", device="cpu", checkpoint=self.rnng_checkpoint),
                                person=PersonSegmenter(), hair=HairStage(load_hair_net(), tier="rnng"))
        return self._models

    def rnng_probs(self, image: np.ndarray, matrix: np.ndarray, crop: np.ndarray, five: np.ndarray,
                   mesh: np.ndarray | None) -> np.ndarray:
        """(11, S, S) RNN-G probabilities in the crop as the live pipeline makes them for a photo
        (stream/pipeline.py: person mask of the frame, then the whole-head hair fused in)."""
        from models.perception import hair as whole_hair
        from models.perception.person_mask import keep_inside
        m = self._load()
        mesh_in = np.full((478, 2), np.nan, np.float32) if mesh is None else mesh
        probs = np.array(m["rnng"].parse(crop[None], five[None], mesh_in[None])[0], np.float32)
        frame_person = m["person"](image)
        person = align.warp_crop(frame_person, matrix)
        keep_inside(probs, person)
        face = _FaceAt(matrix)
        hair = m["hair"](image, [face], person=frame_person)[face.id]
        whole_hair.fuse(probs, whole_hair.hair_in_crop(hair, matrix, probs.shape[-1]), m["hair"].parser_weight,
                        crop=crop, fusion=m["hair"].fusion, person=person)
        return probs

    def sources(self, image, matrix, crop, five, mesh) -> dict:
        """{"landmarks", "rnng", "fused"}: (S, S) uint8 label maps of one face."""
        probs = self.rnng_probs(image, matrix, crop, five, mesh)
        landmark = self._load()["landmarks"].label_map(crop, mesh).astype(np.uint8)
        return {"landmarks": landmark, "rnng": probs.argmax(0).astype(np.uint8),
                "fused": combine(landmark, probs, self.disagree)}

    def label_face(self, image, matrix, crop, five, mesh) -> np.ndarray:
        """(S, S) uint8 fused label (255 where the sources disagree badly)."""
        return self.sources(image, matrix, crop, five, mesh)["fused"]

    def close(self):
        if self._models is not None:
            self._models["person"].close()


class _FaceAt:
    """The little of a tracked Face that HairStage reads: an id and the alignment."""
    id = 0

    def __init__(self, matrix):
        self.matrix = matrix


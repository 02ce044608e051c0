"""Landmark-guided auto-labelling of unlabelled faces (Liu et al., "A New Dataset and
Boundary-Attention Semantic Segmentation for Face Parsing" (LaPa), section 3.2): the
pipeline's tracker finds the face mesh, the face is aligned to the 256x256 crop, and the
landmark tier (models.parsers.landmark_parser: category-wise fitting of parts from dense landmarks,
fusion skin -> parts -> hair -> background) draws the label map (label_kind "auto").

Faces whose auto-label would be poor are dropped, each with its reason counted in `drops`:
    no_face       the tracker found nothing
    no_mesh       only the detector found the face (no dense landmarks to fit parts from)
    low_score     detector confidence under min_score
    tiny_face     eye distance under min_eye_px frame pixels (parts of a few pixels)
    extreme_pose  |yaw| over max_yaw: nose-tip offset from the eye midpoint along the eye
                  axis, in eye distances (0 frontal; ~0.55 at ~40 degrees, ~1 in profile,
                  measured on FaceSynthetics renders); the far side's parts are then guesses
Only the largest kept face of an image is labelled ("only the major face", LaPa 3.3).
"""
from collections import Counter

import cv2
import numpy as np

from core import align
from core.classes import BACKGROUND
from models.data.readers import FaceFinder, RawSample

MESH_NOSE_TIP, MESH_EYE_OUTER_LEFT, MESH_EYE_OUTER_RIGHT = 1, 33, 263


def yaw_estimate(mesh: np.ndarray) -> float:
    """Signed nose-tip offset from the eye midpoint along the eye axis / eye distance."""
    a, b = mesh[MESH_EYE_OUTER_LEFT], mesh[MESH_EYE_OUTER_RIGHT]
    axis = b - a
    dist = float(np.linalg.norm(axis)) + 1e-6
    return float((mesh[MESH_NOSE_TIP] - (a + b) / 2) @ axis / dist ** 2)


def inside_frame(frame_hw: tuple, matrix: np.ndarray, size: int = align.CROP_SIZE) -> np.ndarray:
    """(size, size) bool: which crop pixels come from inside the frame (the rest is padding)."""
    ones = np.ones(frame_hw, np.uint8)
    return align.warp_crop(ones, matrix, size, interpolation=cv2.INTER_NEAREST) > 0


def eye_distance(five: np.ndarray) -> float:
    return float(np.linalg.norm(five[1] - five[0]))


class AutoLabeler:
    def __init__(self, min_eye_px: float = 30.0, max_yaw: float = 0.7, min_score: float = 0.5,
                 parser=None, finder=None, max_faces: int = 4):
        self.min_eye_px = min_eye_px
        self.max_yaw = max_yaw
        self.min_score = min_score
        self._parser = parser
        self.finder = finder or FaceFinder(max_faces)
        self.drops = Counter()

    @property
    def parser(self):
        if self._parser is None:
            from models.parsers.landmark_parser import LandmarkParser  # mediapipe selfie segmenter inside
            self._parser = LandmarkParser()
        return self._parser

    def reject_reason(self, face) -> str | None:
        if face.mesh is None:
            return "no_mesh"
        if face.score < self.min_score:
            return "low_score"
        if eye_distance(face.five) < self.min_eye_px:
            return "tiny_face"
        if abs(yaw_estimate(face.mesh)) > self.max_yaw:
            return "extreme_pose"
        return None

    def best_face(self, image: np.ndarray, count_drops: bool = True):
        """The largest face passing the filters, or None (the reason counted in drops)."""
        faces = self.finder.faces(image)
        if not faces:
            if count_drops:
                self.drops["no_face"] += 1
            return None
        faces = sorted(faces, key=lambda f: -eye_distance(f.five))
        reasons = [self.reject_reason(f) for f in faces]
        for f, r in zip(faces, reasons):
            if r is None:
                return f
        if count_drops:
            self.drops[reasons[0]] += 1  # the reason of the largest face
        return None

    def label_crop(self, crop: np.ndarray, five_crop: np.ndarray, mesh_crop: np.ndarray) -> np.ndarray:
        """(S, S) uint8 auto-label for an aligned crop with its mesh in crop pixels."""
        if hasattr(self.parser, "label_map"):
            return self.parser.label_map(crop, mesh_crop).astype(np.uint8)
        probs = self.parser.parse(crop[None], five_crop[None], mesh_crop[None])
        return probs[0].argmax(0).astype(np.uint8)

    def label_face(self, image: np.ndarray, face, crop: np.ndarray, five_crop: np.ndarray,
                   mesh_crop: np.ndarray) -> np.ndarray:
        """(S, S) uint8 auto-label of a tracked face of `image`, cut as `crop`: a parser that
        also needs the frame (models.data.readers.fused: whole-head hair, person mask) gets it."""
        if hasattr(self.parser, "label_face"):
            return self.parser.label_face(image, face.matrix, crop, five_crop, mesh_crop)
        return self.label_crop(crop, five_crop, mesh_crop)

    def crop_face(self, image: np.ndarray, face) -> tuple:
        """(crop, five, mesh) in crop pixels at align.CROP_SIZE."""
        m = face.matrix
        crop = align.warp_crop(image, m)
        mesh = None if face.mesh is None else align.transform_points(face.mesh, m)
        return crop, align.transform_points(face.five, m), mesh

    def label_image(self, image: np.ndarray, sample_id: str, split: str, source: str) -> RawSample | None:
        """An auto-labelled, already aligned sample (image = the crop, identity matrix), or None."""
        face = self.best_face(image)
        if face is None:
            return None
        crop, five, mesh = self.crop_face(image, face)
        label = self.label_face(image, face, crop, five, mesh)
        label[~inside_frame(image.shape[:2], face.matrix)] = BACKGROUND  # black padding, not hair
        return RawSample(sample_id, split, source, "auto", crop, label, five, mesh, matrix=IDENTITY)

    def close(self):
        self.finder.close()
        if hasattr(self._parser, "close"):
            self._parser.close()


IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

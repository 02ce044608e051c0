"""The landmark tier on real faces: labels land where the landmarks say."""
import cv2
import numpy as np
import pytest

from core import align
from core.classes import HAIR, INNER_MOUTH, LEFT_EYE, LOWER_LIP, RIGHT_EYE, SKIN, UPPER_LIP
from core.mesh import (LEFT_EYE_LOWER, LEFT_EYE_UPPER, LIPS_OUTER_LOWER, LIPS_OUTER_UPPER, RIGHT_EYE_LOWER,
                       RIGHT_EYE_UPPER)
from models.parsers.landmark_parser import LandmarkParser
from tests.faces import real_faces, tracked

NAMES = list(real_faces())


def _parse(name):
    image, face = tracked(name)
    crop = align.warp_crop(image, face.matrix)
    mesh = align.transform_points(face.mesh, face.matrix)
    five = align.transform_points(face.five, face.matrix)
    probs = LandmarkParser()(crop[None], five[None], mesh[None])[0]
    return probs, mesh


def _polygon_mask(points):
    mask = np.zeros((256, 256), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool)  # one pixel of slack


@pytest.mark.parametrize("name", NAMES)
def test_parts_inside_their_contours(name):
    probs, mesh = _parse(name)
    assert probs.shape == (11, 256, 256)
    assert np.allclose(probs.sum(0), 1, atol=1e-4)
    label = probs.argmax(0)
    mouth = _polygon_mask(mesh[list(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER)])
    lips = np.isin(label, (UPPER_LIP, LOWER_LIP, INNER_MOUTH))
    assert lips.sum() > 100 and (lips & mouth).sum() / lips.sum() > 0.97
    for cls, upper, lower, iris in ((LEFT_EYE, LEFT_EYE_UPPER, LEFT_EYE_LOWER, 468),
                                    (RIGHT_EYE, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, 473)):
        contour = _polygon_mask(mesh[list(upper + lower[::-1])])
        eye = label == cls
        assert eye.sum() > 20 and (eye & contour).sum() / eye.sum() > 0.95
        x, y = np.round(mesh[iris]).astype(int)
        assert label[y, x] == cls
    # skin on the cheek, hair above the forehead's top point
    x, y = np.round(mesh[50]).astype(int)
    assert label[y, x] == SKIN
    assert (label == HAIR).sum() > 500


def test_face_without_mesh_is_background():
    image, face = tracked("astronaut")
    crop = align.warp_crop(image, face.matrix)
    probs = LandmarkParser()(crop[None], np.zeros((1, 5, 2), np.float32), np.full((1, 478, 2), np.nan, np.float32))
    assert probs[0, 0].min() == 1.0


@pytest.mark.parametrize("asked", [("UPPER_LIP", "LOWER_LIP"), ("INNER_MOUTH",), ("LEFT_BROW", "RIGHT_BROW"),
                                   ("LEFT_EYE", "RIGHT_EYE", "NOSE")])
def test_parse_of_a_few_classes_matches_the_full_parse_without_skin_and_hair_models(asked):
    """Lipstick alone asks for the lips (teeth for the mouth, ...): the same probabilities of
    those classes as the full parse, which draws every part, and mediapipe's person segmenter
    (the skin/hair models' input) is never built."""
    from core import classes as names
    asked = {getattr(names, name) for name in asked}
    image, face = tracked("portrait_A000371")
    crop = align.warp_crop(image, face.matrix)[None]
    five = align.transform_points(face.five, face.matrix)[None]
    mesh = align.transform_points(face.mesh, face.matrix)[None]
    full = LandmarkParser()(crop, five, mesh)
    few = LandmarkParser()
    part = few(crop, five, mesh, classes=asked)
    assert few._segmenter._segmenter is None
    for c in range(full.shape[1]):
        if c in asked:
            assert part[0, c].sum() > 100
            # (where a brow's blur meets an eye's, the full parse's eye correction renormalises it: 1e-10)
            np.testing.assert_allclose(part[0, c], full[0, c], atol=1e-6)
        else:
            assert not part[0, c].any()

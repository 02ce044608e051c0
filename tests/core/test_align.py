import numpy as np
import pytest

from core import align
from tests.faces import real_faces, tracked

NAMES = list(real_faces())


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_below_a_pixel(name):
    image, face = tracked(name)
    crop_pts = align.transform_points(face.mesh, face.matrix)
    back = align.transform_points(crop_pts, align.invert(face.matrix))
    assert np.abs(back - face.mesh).max() < 1e-2
    # the crop's own pixels land back where they came from: compare a warped-back crop
    crop = align.warp_crop(image, face.matrix)
    box, probs = align.probs_to_frame(np.moveaxis(crop.astype(np.float32), -1, 0), face.matrix, image.shape[:2])
    x0, y0, x1, y1 = box
    eyes = face.five[:2].round().astype(int)
    for x, y in eyes:
        assert np.abs(probs[:, y - y0, x - x0] - image[y, x]).max() < 25  # bilinear twice


@pytest.mark.parametrize("name", NAMES)
def test_template_holds_eyes_and_mouth(name):
    _, face = tracked(name)
    five = align.transform_points(face.five, face.matrix)
    mouth = (five[3] + five[4]) / 2
    target = align.template_points(256)
    fitted = np.stack([five[0], five[1], mouth])
    assert np.abs(fitted - target).max() < 6  # 3-point similarity fit on a real face
    assert five[0, 0] < five[1, 0]  # image-left eye first


def test_five_from_detector_and_ibug_agree_with_template():
    kp = np.array([(100, 100), (140, 100), (120, 125), (120, 145), (80, 110), (160, 110)], np.float32)
    five = align.five_from_detector(kp)
    assert np.allclose((five[3] + five[4]) / 2, kp[3])
    m = align.alignment_matrix(five)
    eyes = align.transform_points(five[:2], m)
    assert np.allclose(eyes[1] - eyes[0], (0.2 * 256, 0), atol=1.0)


def test_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, (5, 2))
    angle, scale = 0.3, 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + (12, -5)
    m = align.similarity_matrix(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], (12, -5), atol=1e-7)

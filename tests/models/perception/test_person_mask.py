"""Learned tiers keep hair and skin inside mediapipe's person mask (models/perception/person_mask.py)."""
import numpy as np

from core import align

from models.parsers import registry
from core.classes import BACKGROUND, HAIR, SKIN
from models.perception.person_mask import PersonSegmenter, keep_inside
from stream import assemble as session
from core.types import Frame
from tests.faces import real_faces, tracked


def test_hair_and_skin_outside_the_person_go_to_background():
    image, face = tracked("astronaut")
    crop = align.warp_crop(image, face.matrix)
    probs = np.array(registry.create_parser("rnng")(crop[None], align.transform_points(face.five, face.matrix)[None])[0])
    segmenter = PersonSegmenter()
    person = segmenter(crop)
    segmenter.close()
    assert 0.2 < person.mean() < 0.9  # a real mask: the astronaut and the backdrop both in the crop
    before = probs.copy()
    keep_inside(probs, person)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-4)
    outside, inside = person < 0.05, person > 0.99
    assert probs[[HAIR, SKIN]][:, outside].max() < 0.05
    assert (probs[BACKGROUND][outside] >= before[BACKGROUND][outside]).all()
    np.testing.assert_allclose(probs[:, inside], before[:, inside], atol=0.011)  # the person keeps its labels


def test_only_learned_tiers_get_a_person_mask():
    frame = Frame(real_faces()["astronaut"], 0, 0.0)
    learned = session.build_pipeline(model="rnng", static_images=True)
    landmarks = session.build_pipeline(model="landmarks", static_images=True)
    try:
        mask = learned.track(frame).person_mask
        assert mask is not None and mask.shape == frame.image.shape[:2]
        assert landmarks.track(frame).person_mask is None  # it applies the mask inside its parser
        assert learned.process(frame).faces  # and the frame still parses
    finally:
        learned.close()
        landmarks.close()

"""Photos' parses snapped to the photo's edges (models/perception/edge_snap.py)."""
from pathlib import Path

import cv2
import numpy as np

from core.classes import LEFT_BROW, NUM_CLASSES, SKIN
from core.types import Frame
from models.perception import edge_snap
from stream import assemble

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_a_blurred_edge_moves_onto_the_image_edge_and_the_planes_still_sum_to_one():
    # a dark brow ending at x = 20 on light skin; the parse's edge is a ramp centred at x = 18.5
    rgb = np.full((24, 40, 3), 200, np.uint8)
    rgb[:, :20] = 60
    ramp = np.clip((18.5 - np.arange(40)) / 4.0 + 0.5, 0.0, 1.0).astype(np.float32)
    probs = np.zeros((NUM_CLASSES, 24, 40), np.float32)
    probs[LEFT_BROW] = ramp
    probs[SKIN] = 1.0 - ramp
    before = probs.argmax(0)[0]
    edge_snap.snap(probs, rgb, frame_per_crop=1.0)
    after = probs.argmax(0)[0]
    assert (before[:19] == LEFT_BROW).all() and (before[19:] == SKIN).all()
    assert (after[:20] == LEFT_BROW).all() and (after[20:] == SKIN).all()
    step = probs[LEFT_BROW, :, 19] - probs[LEFT_BROW, :, 20]   # the ramp's 0.25 a pixel became a step
    assert (step > 0.4).all()
    assert np.allclose(probs.sum(0), 1.0, atol=1e-4)
    assert not probs[[c for c in range(NUM_CLASSES) if c not in (LEFT_BROW, SKIN)]].any()   # zeros stay zero


def test_a_large_face_is_snapped_on_a_shrunk_copy():
    # 4 frame pixels per crop pixel: the filter runs at half size; a ramp 16 px wide (as a
    # bilinear warp from the crop leaves one) ending 2.5 px short of the image edge ends on it
    rgb = np.full((96, 160, 3), 200, np.uint8)
    rgb[:, :80] = 60
    ramp = np.clip((77.5 - np.arange(160)) / 16.0 + 0.5, 0.0, 1.0).astype(np.float32)
    probs = np.zeros((NUM_CLASSES, 96, 160), np.float32)
    probs[LEFT_BROW], probs[SKIN] = ramp, 1.0 - ramp
    edge_snap.snap(probs, rgb, frame_per_crop=4.0)
    brow = (probs.argmax(0) == LEFT_BROW).sum(1)
    assert (brow == 80).all(), brow
    assert (probs[LEFT_BROW, :, 78] - probs[LEFT_BROW, :, 81] > 0.3).all()   # the ramp's 0.19 became a step
    assert np.allclose(probs.sum(0), 1.0, atol=1e-3)


def test_the_radius_grows_with_faces_larger_than_the_crop():
    assert edge_snap.radius(0.7) == edge_snap.radius(1.2) == 2
    assert edge_snap.radius(4.0) == 6


def test_effects_alone_leave_a_photo_unsnapped():
    """Without label maps or the overlay the effects' own feathered masks are what shows: the
    photo's parse is not snapped (nor warped into the box whole, which a large photo pays for)."""
    pipeline = assemble.build_pipeline(model="landmarks", static_images=True)
    image = cv2.cvtColor(cv2.imread(str(FIXTURES / "portrait_B001298.jpg")), cv2.COLOR_BGR2RGB)
    try:
        pipeline.labels_wanted = False
        parse = pipeline.parse(pipeline.track(Frame(image, 0, 0.0))).faces[0]
        assert parse._probs is None
        pipeline.labels_wanted = True
        assert pipeline.parse(pipeline.track(Frame(image, 0, 0.0))).faces[0]._probs is not None
    finally:
        pipeline.close()

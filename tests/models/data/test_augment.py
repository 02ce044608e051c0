"""models.data.augment: flip, geometry and occluders keep pixels, labels and points consistent."""
import numpy as np
import pytest
from skimage.data import astronaut

from core import align
from core.mesh import MESH_MIRROR
from models.data.augment import (OCCLUDERS, TrainAugment, flip_sample, geometric_matrix, make_augment,
                                 train_augment, warp_sample)
from core.classes import HAIR, IGNORE, LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE, SKIN


def _sample():
    """Astronaut's face crop with a label drawn at the five points: eyes, brows above them."""
    image = np.ascontiguousarray(astronaut()[:256, 128:384])
    five = np.array([[100, 110], [156, 108], [128, 140], [108, 170], [150, 168]], np.float32)
    label = np.zeros((256, 256), np.uint8)
    label[60:200, 70:190] = SKIN
    label[20:60, 60:200] = HAIR
    for (x, y), eye, brow in ((five[0], LEFT_EYE, LEFT_BROW), (five[1], RIGHT_EYE, RIGHT_BROW)):
        label[int(y) - 6:int(y) + 7, int(x) - 10:int(x) + 11] = eye
        label[int(y) - 22:int(y) - 15, int(x) - 12:int(x) + 13] = brow
    mesh = np.full((478, 2), np.nan, np.float32)
    mesh[468], mesh[473] = five[0], five[1]          # irises: mesh left/right = image left/right
    mesh[61], mesh[291] = five[3], five[4]           # mouth corners
    return {"image": image, "label": label, "five": five, "mesh": mesh}


def _at(label, p):
    return label[int(round(float(p[1]))), int(round(float(p[0])))]


def test_flip_twice_is_identity():
    s = _sample()
    s["mesh"] = np.random.default_rng(0).uniform(0, 255, (478, 2)).astype(np.float32)
    back = flip_sample(flip_sample(s))
    for k in ("image", "label"):
        assert np.array_equal(back[k], s[k])
    assert np.allclose(back["five"], s["five"]) and np.allclose(back["mesh"], s["mesh"])


def test_flip_swaps_classes_and_points():
    s = _sample()
    f = flip_sample(s)
    # the eye that was on the image's right is now on its left, and is called left_eye
    assert np.allclose(f["five"][0], (255 - s["five"][1][0], s["five"][1][1]))
    assert _at(f["label"], f["five"][0]) == LEFT_EYE and _at(f["label"], f["five"][1]) == RIGHT_EYE
    left_x = np.nonzero(f["label"] == LEFT_BROW)[1].mean()
    right_x = np.nonzero(f["label"] == RIGHT_BROW)[1].mean()
    assert left_x < right_x
    # the mesh's left iris follows the five points' left eye (MESH_MIRROR pairs 468 <-> 473)
    assert np.allclose(f["mesh"][468], f["five"][0]) and np.allclose(f["mesh"][61], f["five"][3])
    assert np.allclose(align.five_from_mesh(np.nan_to_num(f["mesh"]))[[0, 1, 3, 4]], f["five"][[0, 1, 3, 4]])


def test_mesh_mirror_is_an_involution_with_midline_fixed():
    assert sorted(MESH_MIRROR.tolist()) == list(range(478))
    assert (MESH_MIRROR[MESH_MIRROR] == np.arange(478)).all()
    assert MESH_MIRROR[1] == 1 and MESH_MIRROR[152] == 152        # nose tip, chin
    assert MESH_MIRROR[33] == 263 and MESH_MIRROR[61] == 291      # eye corners, mouth corners
    assert (MESH_MIRROR[468:473] >= 473).all()                    # iris <-> iris


def test_mesh_mirror_matches_a_real_flipped_face():
    """Face mesh on astronaut and on its mirror image: the mirrored mesh, permuted, lands on
    the mesh found in the flipped image."""
    pytest.importorskip("mediapipe")
    from models.perception.tracker import FaceTracker
    image = astronaut()
    tracker = FaceTracker(max_faces=1, static_images=True)
    a = tracker.process(image)[0].mesh
    b = tracker.process(np.ascontiguousarray(image[:, ::-1]))[0].mesh
    tracker.close()
    mirrored = a[MESH_MIRROR].copy()
    mirrored[:, 0] = image.shape[1] - 1 - mirrored[:, 0]
    eye_dist = np.linalg.norm(a[468] - a[473])
    err = np.linalg.norm(mirrored - b, axis=1) / eye_dist
    assert np.median(err) < 0.05 and np.percentile(err, 95) < 0.12, (np.median(err), err.max())


@pytest.mark.parametrize("angle,scale,shift", [(15, 1.0, (0, 0)), (-12, 0.8, (30, -20)), (7, 1.2, (-40, 10))])
def test_rotation_keeps_points_on_their_labels(angle, scale, shift):
    s = _sample()
    w = warp_sample(s, geometric_matrix(256, angle, scale, shift))
    assert _at(w["label"], w["five"][0]) == LEFT_EYE and _at(w["label"], w["five"][1]) == RIGHT_EYE
    assert np.allclose(w["mesh"][468], w["five"][0], atol=1e-3) and np.isnan(w["mesh"][0]).all()
    # the eye's pixels moved with it: the image there matches the original eye patch
    assert abs(float(w["image"][tuple(np.round(w["five"][0][::-1]).astype(int))].mean())
               - float(s["image"][tuple(np.round(s["five"][0][::-1]).astype(int))].mean())) < 40
    if scale <= 1.0 or shift != (0, 0):
        assert (w["label"] == IGNORE).any()      # pixels brought in from outside are unknown


def test_train_augment_output_is_consistent_over_many_draws():
    aug = train_augment(256, seed=3, p_occluder=0.0)
    for _ in range(30):
        s = aug(_sample())
        assert s["image"].shape == (256, 256, 3) and s["image"].dtype == np.uint8
        assert s["label"].dtype == np.uint8 and set(np.unique(s["label"])) <= {0, 1, 2, 3, 4, 5, 10, 255}
        inside = (s["five"][:2] >= 0).all() and (s["five"][:2] < 255).all()
        if inside:  # eyes stay on eye labels through flips, warps and noise
            assert _at(s["label"], s["five"][0]) == LEFT_EYE and _at(s["label"], s["five"][1]) == RIGHT_EYE


@pytest.mark.parametrize("name,cls", [("hand", 0), ("hair", HAIR), ("glasses", IGNORE)])
def test_occluders_overwrite_label_with_their_class(name, cls):
    s = _sample()
    rng = np.random.default_rng(1)
    o = OCCLUDERS[name](s, rng)
    changed = o["label"] != s["label"]
    assert changed.sum() > 50
    assert (o["label"][changed] == cls).all()
    # the pixels under the new label changed too (the occluder is painted)
    assert np.abs(o["image"].astype(int) - s["image"].astype(int))[changed].mean() > 5
    assert np.array_equal(s["label"], _sample()["label"])   # input untouched


def test_make_augment_follows_the_config():
    """What the training loop and the recipes' extra datasets use: off when config says so."""
    assert make_augment({"augment": False}, 64) is None
    augment = make_augment({}, 64)
    assert isinstance(augment, TrainAugment) and augment.size == 64
    s = _sample()
    out = augment(s)
    assert out["image"].shape == s["image"].shape and out["label"].shape == s["label"].shape

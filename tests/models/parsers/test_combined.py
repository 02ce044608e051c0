"""The `combined` tier on real faces: the landmark tier's eyes and lips, RNN-G's other classes
rescaled to the mass left, proper probabilities, and only the work its caller's classes need."""
import numpy as np
import pytest

from core import align
from core.classes import HAIR, INNER_MOUTH, LEFT_BROW, LOWER_LIP, NUM_CLASSES, SKIN, UPPER_LIP
from models.parsers import registry
from models.parsers.combined import FROM_LANDMARKS, FROM_RNNG, CombinedParser
from models.parsers.landmark_parser import LandmarkParser
from tests.faces import real_faces, tracked

pytestmark = pytest.mark.skipif("combined" not in registry.available_checkpoints(),
                                reason="needs checkpoints/rnng.pt (committed with the project)")
S = list(FROM_LANDMARKS)
OTHERS = list(FROM_RNNG)


@pytest.fixture(scope="module")
def batch():
    """Aligned crops, five points and meshes of the astronaut and the fixture portraits."""
    crops, five, mesh = [], [], []
    for name in real_faces():
        image, face = tracked(name)
        crops.append(align.warp_crop(image, face.matrix))
        five.append(align.transform_points(face.five, face.matrix))
        mesh.append(align.transform_points(face.mesh, face.matrix))
    return np.stack(crops), np.stack(five), np.stack(mesh)


@pytest.fixture(scope="module")
def parser():
    return registry.create_parser("combined", device="cpu")


class CountingParser:
    """Wraps a parser and records how many faces each call got."""
    def __init__(self, parser):
        self.parser, self.calls = parser, []

    def __call__(self, crops, five, mesh=None, classes=None):
        self.calls.append(len(crops))
        return self.parser(crops, five, mesh, classes)


def test_probabilities_sum_to_one_and_eyes_lips_are_the_landmark_tiers(parser, batch):
    probs = parser(*batch)
    assert isinstance(parser, CombinedParser) and probs.shape == (len(batch[0]), NUM_CLASSES, 256, 256)
    assert probs.min() >= 0 and np.allclose(probs.sum(1), 1, atol=1e-4)
    landmarks = LandmarkParser()(*batch)
    np.testing.assert_array_equal(probs[:, S], landmarks[:, S])
    # the other classes are RNN-G's, scaled by one factor per pixel: their ratios stay RNN-G's
    rnng = parser.rnng(*batch)
    scale = probs[:, OTHERS].sum(1) / np.maximum(rnng[:, OTHERS].sum(1), 1e-6)
    mass = rnng[:, OTHERS].sum(1) > 0.05
    for c in OTHERS:
        np.testing.assert_allclose(probs[:, c][mass], (rnng[:, c] * scale)[mass], atol=1e-4)
    # labels: eyes and lips where the landmark tier draws them, RNN-G's brows where it puts them
    label, lm_label, rn_label = probs.argmax(1), landmarks.argmax(1), rnng.argmax(1)
    drawn = np.isin(lm_label, S)
    assert (label[drawn] == lm_label[drawn]).mean() > 0.99
    brows = (rn_label == LEFT_BROW) & ~drawn
    assert brows.sum() > 500 and (label[brows] == LEFT_BROW).mean() > 0.99


def test_effects_only_subsets_do_only_their_work(parser, batch, monkeypatch):
    full = parser(*batch)
    counting = CountingParser(parser.rnng)
    monkeypatch.setattr(parser, "rnng", counting)
    lips = parser(*batch, classes={UPPER_LIP, LOWER_LIP})        # lipstick alone: polygons only
    assert counting.calls == []
    np.testing.assert_array_equal(lips[:, [UPPER_LIP, LOWER_LIP]], full[:, [UPPER_LIP, LOWER_LIP]])
    teeth = parser(*batch, classes={INNER_MOUTH})
    assert counting.calls == [] and np.array_equal(teeth[:, INNER_MOUTH], full[:, INNER_MOUTH])
    smooth = parser(*batch, classes={SKIN, HAIR})                 # skin smoothing, hair: RNN-G runs
    assert counting.calls == [len(batch[0])]
    np.testing.assert_allclose(smooth[:, [SKIN, HAIR]], full[:, [SKIN, HAIR]], atol=1e-6)


def test_faces_without_a_mesh_get_rnngs_parse(parser, batch, monkeypatch):
    crops, five, mesh = batch
    mesh = mesh.copy()
    mesh[1] = np.nan                                              # a face only the detector found
    rnng = parser.rnng(crops, five, mesh)
    probs = parser(crops, five, mesh)
    np.testing.assert_allclose(probs[1], rnng[1], atol=1e-6)
    np.testing.assert_array_equal(probs[0, S], LandmarkParser()(crops[:1], five[:1], mesh[:1])[0, S])
    counting = CountingParser(parser.rnng)
    monkeypatch.setattr(parser, "rnng", counting)
    lips = parser(crops, five, mesh, classes={UPPER_LIP, LOWER_LIP})
    assert counting.calls == [1]                                  # only the mesh-less face
    np.testing.assert_allclose(lips[1, [UPPER_LIP, LOWER_LIP]], rnng[1, [UPPER_LIP, LOWER_LIP]], atol=1e-6)
    assert not parser.needs_mesh                                  # the pipeline needs no fallback for it

"""The `combined` tier on real faces: brows, eyes and lips the average of the landmark tier's and
RNN-G's, RNN-G's other classes rescaled to the mass left, proper probabilities, the same planes
whatever its caller asks for."""
import numpy as np
import pytest

from core import align
from core.classes import HAIR, INNER_MOUTH, LEFT_BROW, LOWER_LIP, NUM_CLASSES, SKIN, UPPER_LIP
from models.parsers import registry
from models.parsers.combined import BLENDED, FROM_RNNG, LANDMARK_WEIGHT, CombinedParser
from models.parsers.landmark_parser import LandmarkParser
from tests.faces import real_faces, tracked

pytestmark = pytest.mark.skipif("combined" not in registry.available_checkpoints(),
                                reason="needs checkpoints/rnng.pt (committed with the project)")
S = list(BLENDED)
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


def test_probabilities_sum_to_one_and_blended_parts_average_the_two_sources(parser, batch):
    probs = parser(*batch)
    assert isinstance(parser, CombinedParser) and probs.shape == (len(batch[0]), NUM_CLASSES, 256, 256)
    assert probs.min() >= 0 and np.allclose(probs.sum(1), 1, atol=1e-4)
    landmarks = LandmarkParser()(*batch)
    rnng = parser.rnng(*batch)
    w = LANDMARK_WEIGHT
    np.testing.assert_allclose(probs[:, S], w * landmarks[:, S] + (1 - w) * rnng[:, S], atol=1e-5)
    # the other classes are RNN-G's, scaled by one factor per pixel: their ratios stay RNN-G's
    scale = probs[:, OTHERS].sum(1) / np.maximum(rnng[:, OTHERS].sum(1), 1e-6)
    mass = rnng[:, OTHERS].sum(1) > 0.05
    for c in OTHERS:
        np.testing.assert_allclose(probs[:, c][mass], (rnng[:, c] * scale)[mass], atol=1e-4)
    # labels: where both sources draw the same part, that part; where they disagree, either's
    label, lm_label, rn_label = probs.argmax(1), landmarks.argmax(1), rnng.argmax(1)
    for c in (LEFT_BROW, UPPER_LIP, LOWER_LIP):
        both = (lm_label == c) & (rn_label == c)
        assert both.sum() > 300 and (label[both] == c).mean() > 0.99
    either = np.isin(lm_label, S) | np.isin(rn_label, S)
    assert np.isin(label[~either], S).mean() < 0.001
    assert (np.isin(label[either], (lm_label[either], rn_label[either])) | (label[either] == SKIN)).all()


def test_the_planes_an_effect_reads_are_those_of_the_full_parse(parser, batch):
    """The pipeline asks only for the classes the effects read (lipstick: the lips); those planes
    are the full parse's (the other classes' share depends on every blended part)."""
    full = parser(*batch)
    for classes in ({UPPER_LIP, LOWER_LIP}, {INNER_MOUTH}, {SKIN, HAIR}, {SKIN, LEFT_BROW}):
        part = parser(*batch, classes=classes)
        np.testing.assert_allclose(part[:, sorted(classes)], full[:, sorted(classes)], atol=1e-6)


def test_faces_without_a_mesh_get_rnngs_parse(parser, batch, monkeypatch):
    crops, five, mesh = batch
    mesh = mesh.copy()
    mesh[1] = np.nan                                              # a face only the detector found
    rnng = parser.rnng(crops, five, mesh)
    probs = parser(crops, five, mesh)
    np.testing.assert_allclose(probs[1], rnng[1], atol=1e-6)
    w = LANDMARK_WEIGHT
    landmark = LandmarkParser()(crops[:1], five[:1], mesh[:1])[0, S]
    np.testing.assert_allclose(probs[0, S], w * landmark + (1 - w) * rnng[0, S], atol=1e-5)
    counting = CountingParser(parser.rnng)
    monkeypatch.setattr(parser, "rnng", counting)
    lips = parser(crops, five, mesh, classes={UPPER_LIP, LOWER_LIP})
    assert counting.calls == [len(crops)]                         # one batch for all faces
    np.testing.assert_allclose(lips[1, [UPPER_LIP, LOWER_LIP]], rnng[1, [UPPER_LIP, LOWER_LIP]], atol=1e-6)
    assert not parser.needs_mesh                                  # the pipeline needs no fallback for it

"""Stills average each learned parse with the parse of the crop's mirror image (no frame budget
applies): the result is mirror-symmetric by construction, left/right classes swap with the
image, the landmark tier skips it, and only photo pipelines ask for it."""
import numpy as np
import pytest

from core import align
from core.classes import FLIP_PERMUTATION, LEFT_BROW, LEFT_EYE, NUM_CLASSES
from core.mesh import FIVE_MIRROR, MESH_MIRROR, mirror_points
from core.types import Frame
from models.parsers import registry
from stream.pipeline import FacePipeline
from tests.faces import tracked

pytestmark = pytest.mark.skipif("rnng" not in registry.available_checkpoints(),
                                reason="needs checkpoints/rnng.pt (committed with the project)")


@pytest.fixture(scope="module")
def batch():
    crops, five, mesh = [], [], []
    for name in ("astronaut", "portrait_C001135"):
        image, face = tracked(name)
        crops.append(align.warp_crop(image, face.matrix))
        five.append(align.transform_points(face.five, face.matrix))
        mesh.append(align.transform_points(face.mesh, face.matrix))
    return np.stack(crops), np.stack(five), np.stack(mesh)


def mirrored(crops, five, mesh):
    width = crops.shape[2]
    return (np.ascontiguousarray(crops[:, :, ::-1]), mirror_points(five, FIVE_MIRROR, width),
            mirror_points(mesh, MESH_MIRROR, width))


@pytest.mark.parametrize("tier", ["rnng", "combined"])
def test_the_mirror_average_is_the_mirror_image_of_the_mirrored_faces_average(batch, tier):
    parser = registry.create_parser(tier, device="cpu")
    direct = parser(*batch, mirror=True)
    of_mirror = parser(*mirrored(*batch), mirror=True)
    # parsing the mirror image of a face gives the mirror image of its parse, classes swapped (up to
    # RNN-G's part crops, placed by rounding points that went through two reflections: 0.003 here)
    assert np.allclose(direct, of_mirror[:, FLIP_PERMUTATION, :, ::-1], atol=1e-2)
    assert np.allclose(direct.sum(1), 1.0, atol=1e-4)
    plain = parser(*batch)
    assert np.abs(direct - plain).max() > 0.05     # the mirror parse does change the answer
    assert (direct.argmax(1) == plain.argmax(1)).mean() > 0.95   # ... at the margins only


def test_classes_asked_for_on_one_side_are_answered_from_both_sides(batch):
    parser = registry.create_parser("rnng", device="cpu")
    out = parser(*batch, classes={LEFT_BROW, LEFT_EYE}, mirror=True)
    full = parser(*batch, mirror=True)
    assert np.allclose(out[:, [LEFT_BROW, LEFT_EYE]], full[:, [LEFT_BROW, LEFT_EYE]], atol=1e-5)


def test_the_landmark_tier_draws_once(batch):
    parser = registry.create_parser("landmarks")
    assert np.array_equal(parser(*batch, mirror=True), parser(*batch))


class Spy:
    """A parser that records the `mirror` it is asked for."""
    needs_mesh, name = False, "spy"

    def __init__(self):
        self.asked = []

    def __call__(self, crops, five, mesh=None, classes=None, mirror=False):
        self.asked.append(mirror)
        out = np.zeros((len(crops), NUM_CLASSES) + crops.shape[1:3], np.float32)
        out[:, 0] = 1
        return out


@pytest.mark.parametrize("stills", [True, False])
def test_photo_pipelines_ask_for_the_mirror_and_video_ones_do_not(stills):
    image, _ = tracked("astronaut")
    spy = Spy()
    pipe = FacePipeline(spy, static_images=stills, smooth=False)
    pipe.process(Frame(image, 0, 0.0))
    pipe.close()
    assert spy.asked == [stills]

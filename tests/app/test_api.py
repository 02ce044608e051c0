"""The Python API (faceparse.py) as a user of a clone calls it, on real photos."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

import faceparse
import run_live
from core.classes import (HAIR, LEFT_EYE, LOWER_LIP, NOSE, RIGHT_EYE, SKIN, UPPER_LIP)
from core.errors import InputError
from effects import EffectSpecError
from models.parsers.registry import UnknownModel
from stream import assemble
from tests.conftest import write_test_video

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def landmarks():
    with faceparse.FaceParser(model="landmarks") as fp:
        yield fp


def _centre(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_parse_gives_one_result_per_face_and_a_frame_label_map(landmarks, astronaut):
    result = landmarks.parse(astronaut)
    assert result.labels.shape == astronaut.shape[:2] and result.labels.dtype == np.uint8
    assert len(result.faces) == 1
    face = result.faces[0]
    x0, y0, x1, y1 = face.box
    assert face.probs.shape == (11, y1 - y0, x1 - x0) and face.points.shape == (5, 2)
    assert np.array_equal(face.labels, result.labels[y0:y1, x0:x1])   # one face: the same labels
    # the parts where they belong: the image's left eye left of its right eye, nose between
    # the eyes and the mouth, lips below the nose
    left, right = _centre(result.labels == LEFT_EYE), _centre(result.labels == RIGHT_EYE)
    nose, lips = _centre(result.labels == NOSE), _centre(result.mask("mouth"))
    assert left[0] < nose[0] < right[0]
    assert max(left[1], right[1]) < nose[1] < lips[1]
    assert result.mask("hair").sum() > 3000 and result.mask("skin").sum() > 5000
    with pytest.raises(ValueError, match="unknown class 'ears'"):
        result.mask("ears")


@pytest.mark.parametrize("photo", sorted(p.name for p in FIXTURES.glob("portrait_*.jpg")))
def test_parse_a_path_on_real_portraits(landmarks, photo):
    result = landmarks.parse(FIXTURES / photo)
    assert len(result.faces) == 1
    found = set(np.unique(result.labels))
    assert {SKIN, LEFT_EYE, RIGHT_EYE, NOSE, UPPER_LIP, LOWER_LIP} <= found


def test_module_functions_leave_torch_threads_alone(astronaut):
    before = torch.get_num_threads()
    torch.set_num_threads(1 if before != 1 else 2)
    sentinel = torch.get_num_threads()
    try:
        result = faceparse.parse(astronaut, model="rnng")   # a torch tier
        assert len(result.faces) == 1 and (result.labels == HAIR).sum() > 1000
        assert torch.get_num_threads() == sentinel
        assemble.build_pipeline(model="rnng", static_images=True).close()   # the pipeline neither
        assert torch.get_num_threads() == sentinel
        faceparse.FaceParser(model="rnng", torch_threads=before)   # ...unless asked
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_apply_matches_run_live_and_paints_only_the_lips(tmp_path, capsys, astronaut):
    out = faceparse.apply(astronaut, "lipstick=crimson:0.7", model="landmarks")
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    # the same as the command line on the same photo
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    assert run_live.main(["--input", str(face), "--output", str(tmp_path / "cli.png"), "--model", "landmarks",
                          "--effects", "lipstick=crimson:0.7"]) == 0
    capsys.readouterr()
    assert np.array_equal(out, cv2.cvtColor(cv2.imread(str(tmp_path / "cli.png")), cv2.COLOR_BGR2RGB))
    labels = faceparse.parse(astronaut, model="landmarks").labels
    changed = np.abs(out.astype(int) - astronaut).max(axis=2) > 8
    lips = np.isin(labels, (UPPER_LIP, LOWER_LIP))
    assert changed[lips].mean() > 0.5                     # most of the lips took the colour
    assert changed[labels == 0].mean() < 0.001            # the background did not
    # toward crimson: redder (Lab a up) on the lips
    lab_in = cv2.cvtColor(astronaut, cv2.COLOR_RGB2LAB)[lips].astype(int)
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2LAB)[lips].astype(int)
    assert lab_out[:, 1].mean() > lab_in[:, 1].mean() + 5


def test_no_face_and_bad_input(landmarks, tmp_path):
    coffee = data.coffee()
    result = landmarks.parse(coffee)
    assert result.faces == [] and not result.labels.any()
    assert np.array_equal(landmarks.apply(coffee, "lipstick=crimson:0.7"), coffee)
    cases = [
        (lambda: faceparse.apply(coffee, "lipstick=crimsom:0.7"), EffectSpecError, "'crimsom'"),
        (lambda: landmarks.parse(tmp_path / "missing.jpg"), InputError, "missing.jpg"),
        (lambda: landmarks.parse(np.zeros((10, 10), np.float32)), InputError, "RGB uint8"),
        (lambda: landmarks.parse(np.zeros((0, 0, 3), np.uint8)), InputError, "empty image"),
        (lambda: faceparse.parse(coffee, model="resnet9000"), UnknownModel, "resnet9000"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)
    assert landmarks.parse(data.astronaut()).faces   # the same parser works after them all


def test_video_keeps_face_ids_and_frame_count(landmarks, tmp_path, astronaut):
    clip = write_test_video(tmp_path / "clip.mp4", astronaut, n_frames=6, size=(256, 256))
    frames = list(landmarks.video(clip, effects="lipstick=crimson:0.7"))
    assert len(frames) == 6
    assert all(len(r.faces) == 1 for r, _ in frames)
    assert len({r.faces[0].id for r, _ in frames}) == 1          # tracked: one id throughout
    assert all(image.shape == (256, 256, 3) for _, image in frames)

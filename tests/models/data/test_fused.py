"""The fused teacher signal (models/data/readers/fused.py) on real fixture portraits, and
`python -m models.data build --labels fused` end to end."""
import json
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="auto-labelling runs the pipeline's tracker (mediapipe)")

from core import align  # noqa: E402
from core.classes import (BACKGROUND, HAIR, IGNORE, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP,  # noqa: E402
                          NOSE, RIGHT_EYE, SKIN, UPPER_LIP)
from models.data.build import main  # noqa: E402
from models.data.dataset import FaceParsingDataset  # noqa: E402
from models.data.readers import read_rgb  # noqa: E402
from models.data.readers.autolabel import AutoLabeler  # noqa: E402
from models.data.readers.fused import FROM_LANDMARKS, FusedLabeler, combine  # noqa: E402
from models.data.readers.lfw_hair import LfwHairReader, split_of_person  # noqa: E402
from tests.faces import FIXTURES, real_faces  # noqa: E402


@pytest.fixture(scope="module")
def labeler():
    lab = AutoLabeler(parser=FusedLabeler())
    yield lab
    lab.close()


def sources_of(labeler, name):
    image = real_faces()[name]
    face = labeler.best_face(image)
    crop, five, mesh = labeler.crop_face(image, face)
    return labeler.parser.sources(image, face.matrix, crop, five, mesh)


def test_each_class_comes_from_its_source(labeler):
    s = sources_of(labeler, "portrait_A000371")
    fused, landmarks, rnng = s["fused"], s["landmarks"], s["rnng"]
    for c in (SKIN, LEFT_BROW, NOSE, LEFT_EYE, UPPER_LIP, INNER_MOUTH, LOWER_LIP, HAIR):
        assert (fused == c).sum() > 50, c
    # eyes and lips: exactly the landmark tier's, except where the sources disagree badly (ignore)
    for c in FROM_LANDMARKS:
        assert np.array_equal((fused == c), (landmarks == c) & (fused != IGNORE)), c
    # brows, nose and hair: RNN-G's (as the pipeline runs it), wherever the landmark parts leave room
    free = ~np.isin(landmarks, FROM_LANDMARKS)
    for c in (LEFT_BROW, NOSE, HAIR, BACKGROUND):
        assert np.array_equal((fused == c) & free, (rnng == c) & free), c
    # on a clear frontal portrait the two sources agree on where the eyes and mouth are
    assert (fused == IGNORE).mean() < 0.002


def test_combine_rule_on_a_small_case():
    landmark = np.array([[SKIN, LEFT_EYE, SKIN, LEFT_EYE]], np.uint8)
    probs = np.zeros((11, 1, 4), np.float32)
    probs[SKIN, 0, 0] = 1.0                                # both say skin
    probs[[SKIN, RIGHT_EYE], 0, 1] = 0.5                   # landmark eye, RNN-G unsure: the landmark's eye
    probs[[LEFT_EYE, NOSE], 0, 2] = (0.6, 0.4)             # RNN-G eye the landmarks do not draw: its next best
    probs[HAIR, 0, 3] = 1.0                                # landmark eye, RNN-G sure it is hair: ignore
    assert combine(landmark, probs).tolist() == [[SKIN, LEFT_EYE, NOSE, IGNORE]]


def test_lfw_hair_mask_overrides_the_fused_hair(tmp_path, labeler):
    """An LFW-style folder made of a fixture portrait: the mask's hair is hair, the fused
    label's hair outside the mask is not hair, the parts stay the fused label's."""
    name = next(n for n in ("Ann_Person", "Bob_Person", "Cy_Person", "Di_Person") if split_of_person(n) == "train")
    (tmp_path / "images").mkdir()
    (tmp_path / "hair_masks").mkdir()
    image = real_faces()["portrait_B001298"]
    cv2.imwrite(str(tmp_path / "images" / f"{name}_0001.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[: image.shape[0] // 6] = 255        # a band at the top: "hair" by this mask
    cv2.imwrite(str(tmp_path / "hair_masks" / f"{name}_0001.png"), mask)
    reader = LfwHairReader(labeler=labeler)
    raw = next(reader.read(tmp_path))
    assert raw.split == "train" and reader.stats["train_with_auto"] == 1
    image = read_rgb(tmp_path / "images" / f"{name}_0001.jpg")   # as the reader saw it
    face = labeler.finder.faces(image)[0]   # the one face, as the reader aligned it
    crop, five, mesh = labeler.crop_face(image, face)
    s = labeler.parser.sources(image, face.matrix, crop, five, mesh)
    mask_crop = align.warp_crop(mask, face.matrix, interpolation=cv2.INTER_NEAREST) > 127
    assert (raw.label[mask_crop] == HAIR).all()
    # the fused hair the mask denies: ignore where it has the skin's colour, else background (a cap)
    outside = ~mask_crop & (s["fused"] == HAIR)
    assert outside.sum() > 100 and np.isin(raw.label[outside], (IGNORE, BACKGROUND)).all()
    for c in (LEFT_EYE, RIGHT_EYE, NOSE, LOWER_LIP):
        parts = (s["fused"] == c) & ~mask_crop
        assert parts.sum() > 20 and (raw.label[parts] == c).all(), c


def test_build_labels_fused_end_to_end(tmp_path, capsys):
    photos, dev = tmp_path / "photos", tmp_path / "dev"
    photos.mkdir()
    dev.mkdir()
    for name in ("portrait_A000371", "portrait_C001135", "portrait_D000197"):
        shutil.copy(FIXTURES / f"{name}.jpg", photos)
    shutil.copy(FIXTURES / "portrait_D000197.jpg", dev)   # a dev-set image: left out
    out = tmp_path / "ds"
    main(["build", "--from", "images", str(photos), "--out", str(out), "--labels", "fused", "--exclude", str(dev)])
    assert "dropped: excluded 1" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"] == {"train": {"photos": {"auto": 2}}}
    ds = FaceParsingDataset(out, "train", size=256)
    assert sorted(r["id"] for r in ds.records) == ["photos_portrait_A000371", "photos_portrait_C001135"]
    for i in range(len(ds)):
        label = ds[i]["label"].numpy()
        for c in (SKIN, LEFT_EYE, RIGHT_EYE, NOSE, UPPER_LIP, LOWER_LIP, HAIR):
            assert (label == c).sum() > 20, c


def test_build_refuses_a_missing_exclude_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "--from", "images", str(FIXTURES), "--out", str(tmp_path / "ds"), "--exclude",
              str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2 and "--exclude" in capsys.readouterr().err

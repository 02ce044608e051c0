"""models.data.readers.autolabel (landmark-guided auto-labels, LaPa 3.2) and the build CLI models.data.build on
real photos and a real video file."""
import json

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe", reason="auto-labelling runs the pipeline's tracker (mediapipe)")

from core import align  # noqa: E402
from models.data.readers.autolabel import AutoLabeler, yaw_estimate  # noqa: E402
from core.classes import BACKGROUND, LEFT_EYE, NOSE, RIGHT_EYE, SKIN, UPPER_LIP  # noqa: E402
from models.data.build import build, main  # noqa: E402
from models.data.dataset import FaceParsingDataset  # noqa: E402
from core.types import Face  # noqa: E402
from tests.conftest import write_test_video  # noqa: E402


@pytest.fixture(scope="module")
def labeler():
    lab = AutoLabeler()
    yield lab
    lab.close()


def test_label_image_on_a_real_face(labeler, astronaut):
    s = labeler.label_image(astronaut, "astro", "train", "test")
    assert s is not None and s.label_kind == "auto" and s.image.shape == (256, 256, 3)
    classes = set(np.unique(s.label))
    assert {SKIN, LEFT_EYE, RIGHT_EYE, NOSE, UPPER_LIP} <= classes
    assert np.abs(s.five[:2] - align.template_points(256)[:2]).max() < 12
    assert s.mesh.shape == (478, 2) and np.isfinite(s.mesh).all()
    # the mesh's left iris sits on the left-eye label (crop coordinates agree)
    x, y = np.round(s.mesh[468]).astype(int)
    assert s.label[y - 2:y + 3, x - 2:x + 3].max() == LEFT_EYE or (s.label[y - 2:y + 3, x - 2:x + 3] == LEFT_EYE).any()


def test_padding_outside_the_frame_is_background(labeler, astronaut):
    # the face near the top-left corner: the crop reaches past the frame's edges
    corner = np.ascontiguousarray(astronaut[40:300, 120:360])
    s = labeler.label_image(corner, "corner", "train", "test")
    assert s is not None
    padding = (s.image.sum(2) == 0)
    padding = cv2.erode(padding.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert padding.sum() > 1000 and (s.label[padding] == BACKGROUND).all()


def test_yaw_estimate(labeler, astronaut):
    face = labeler.finder.faces(astronaut)[0]
    yaw = yaw_estimate(face.mesh)
    assert abs(yaw) < 0.3
    flipped = labeler.finder.faces(np.ascontiguousarray(astronaut[:, ::-1]))[0]
    assert np.sign(yaw_estimate(flipped.mesh)) == -np.sign(yaw) or abs(yaw) < 0.03
    mesh = face.mesh.copy()
    mesh[1] += (mesh[263] - mesh[33]) * 0.9     # nose tip pushed towards one eye: a turned head
    assert yaw_estimate(mesh) > 0.7


def test_filters_and_their_reasons(labeler, astronaut):
    face = labeler.finder.faces(astronaut)[0]
    assert labeler.reject_reason(face) is None
    assert labeler.reject_reason(Face(0, face.five, face.matrix, None, 0.9, "detector")) == "no_mesh"
    assert labeler.reject_reason(Face(0, face.five, face.matrix, face.mesh, 0.2)) == "low_score"
    turned = face.mesh.copy()
    turned[1] += (turned[263] - turned[33]) * 0.9
    assert labeler.reject_reason(Face(0, face.five, face.matrix, turned)) == "extreme_pose"
    tiny = Face(0, face.five * 0.2, face.matrix, face.mesh * 0.2)
    assert labeler.reject_reason(tiny) == "tiny_face"


def test_build_images_counts_drops(tmp_path, astronaut):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    cv2.imwrite(str(folder / "small.jpg"), cv2.cvtColor(cv2.resize(astronaut, (140, 140), interpolation=cv2.INTER_AREA),
                                                        cv2.COLOR_RGB2BGR))
    meta = build("images", str(folder), str(tmp_path / "ds"), quiet=True)
    assert meta["counts"] == {"train": {"photos": {"auto": 1}}}
    assert meta["drops"] == {"images": {"no_face": 1, "tiny_face": 1}}
    assert json.loads((tmp_path / "ds" / "meta.json").read_text())["builds"][0]["added"] == 1
    item = FaceParsingDataset(tmp_path / "ds", "train", size=128)[0]
    assert item["label"].shape == (128, 128) and (item["label"] == LEFT_EYE).any()


def test_build_video_every_k_and_append(tmp_path, astronaut, capsys):
    clip = write_test_video(tmp_path / "talk.mp4", astronaut, n_frames=12, size=(384, 384))
    out = tmp_path / "ds"
    main(["build", "--from", "video", str(clip), "--out", str(out), "--every", "4"])
    text = capsys.readouterr().out
    assert "MiB per 1,000 samples" in text and "video:talk" in text
    records = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["v_talk_000000", "v_talk_000004", "v_talk_000008"]
    assert all(r["source"] == "video:talk" and r["label_kind"] == "auto" for r in records)
    # --append adds a second source and keeps the first; rebuilding one replaces its samples
    main(["build", "--from", "video", str(clip), "--out", str(out), "--every", "6", "--append", "--name", "other"])
    main(["build", "--from", "video", str(clip), "--out", str(out), "--every", "4", "--append", "--limit", "2"])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"]["train"] == {"video:talk": {"auto": 3}, "video:other": {"auto": 2}}
    assert len(meta["builds"]) == 2
    assert len(FaceParsingDataset(out, "train", sources=["video:other"])) == 2
    # unlabelled crops for the distillation's unlabelled stage
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.jpg"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    main(["build", "--from", "images", str(tmp_path / "photos"), "--out", str(tmp_path / "plain"), "--no-autolabel"])
    plain = FaceParsingDataset(tmp_path / "plain", "train")
    assert [r["label_kind"] for r in plain.records] == ["none"] and not any((tmp_path / "plain" / "labels").iterdir())
    assert (plain[0]["label"] == 255).all() and torch.isfinite(plain[0]["mesh"]).all()

"""RED-Net, BSPNet and STN-iCNN from their committed weights, through run_live.py as a user runs
them on a real portrait; a corrupt, mismatched or missing checkpoint is a one-line error."""
import cv2
import numpy as np
import pytest

import run_live
from models.parsers import registry
from tests.faces import FIXTURES

PAPER_TIERS = ("rednet", "bspnet", "stn-icnn")
PORTRAIT = FIXTURES / "portrait_A000371.jpg"
# class groups the face mesh places well: skin, brows, eyes, nose, lips with the inner mouth
GROUPS = {"skin": (1,), "brows": (2, 3), "eyes": (4, 5), "nose": (6,), "mouth": (7, 8, 9)}


def run(capsys, *args):
    code = run_live.main(["--quiet", *map(str, args)])
    return code, capsys.readouterr().err


def labels_of(capsys, tmp_path, model):
    out, labels = tmp_path / f"{model}.png", tmp_path / f"{model}_labels.png"
    code, err = run(capsys, "--input", PORTRAIT, "--output", out, "--save-labels", labels, "--model", model)
    assert code == 0, err
    return cv2.imread(str(labels), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def mesh_parts(tmp_path_factory):
    """The landmark tier's label map: the parts where the face mesh says they are."""
    out = tmp_path_factory.mktemp("mesh")
    code = run_live.main(["--quiet", "--input", str(PORTRAIT), "--output", str(out / "o.png"),
                          "--save-labels", str(out / "l.png"), "--model", "landmarks"])
    assert code == 0
    return cv2.imread(str(out / "l.png"), cv2.IMREAD_UNCHANGED)


def group_f1(a, b, classes) -> float:
    x, y = np.isin(a, classes), np.isin(b, classes)
    return 2 * (x & y).sum() / max(x.sum() + y.sum(), 1)


@pytest.mark.parametrize("model", PAPER_TIERS)
def test_tier_parses_a_portrait_from_its_shipped_weights(capsys, tmp_path, mesh_parts, model):
    assert model in registry.available_checkpoints()   # weights committed: runs from a fresh clone
    label = labels_of(capsys, tmp_path, model)
    assert label.shape == mesh_parts.shape and label.max() <= 10
    scores = {g: group_f1(label, mesh_parts, c) for g, c in GROUPS.items()}
    # skin, nose and lips overlap the mesh's well; brows and eyes, thin parts, at least clearly
    assert min(scores["skin"], scores["nose"], scores["mouth"]) > 0.6, scores
    assert min(scores["brows"], scores["eyes"]) > 0.3, scores


@pytest.mark.parametrize("model", PAPER_TIERS)
def test_bad_checkpoints_give_one_line_errors(capsys, tmp_path, monkeypatch, model):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not a checkpoint" * 10)
    other = registry.tier("rnng").checkpoint   # a real checkpoint of another tier
    cases = [(["--checkpoint", corrupt], "checkpoint"), (["--checkpoint", other], "rnng")]
    for extra, words in cases:
        code, err = run(capsys, "--input", PORTRAIT, "--output", tmp_path / "o.png", "--model", model, *extra)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
        assert words in lines[0] and "Traceback" not in err
    monkeypatch.setattr(registry, "CHECKPOINT_DIR", tmp_path / "empty")   # a clone without the weights
    code, err = run(capsys, "--input", PORTRAIT, "--output", tmp_path / "o.png", "--model", model)
    assert code == 2 and err.strip().startswith("error: no weights for") and len(err.strip().splitlines()) == 1

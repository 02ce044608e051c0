"""Checkpoints are opened without running code: a crafted pickle never executes its payload."""
import os
import pickle

import pytest
import torch

import run_live
from models.parsers import checkpoint
from tests.conftest import RunsCode


def _evil_file(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    # torch.save pickles the object as it would any checkpoint dict
    torch.save({"tier": "rnng", "state_dict": {}, "config": RunsCode(marker)}, path)
    return path, marker


def test_crafted_pickle_never_runs(tmp_path):
    path, marker = _evil_file(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="holds code or objects"):
        checkpoint.load(path, "rnng")
    assert not marker.exists()


def test_crafted_checkpoint_through_the_cli(tmp_path, capsys, astronaut):
    import cv2
    path, marker = _evil_file(tmp_path)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    code = run_live.main(["--input", str(face), "--output", str(tmp_path / "o.png"), "--model", "rnng",
                          "--checkpoint", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "o.png").exists()


def test_plain_pickle_and_garbage_give_one_line_errors(tmp_path):
    not_ours = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_ours)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2000))
    raw_pickle = tmp_path / "raw.pt"
    raw_pickle.write_bytes(pickle.dumps({"tier": "rnng"}))
    for path, message in [(not_ours, "not a checkpoint"), (garbage, "cannot read"), (raw_pickle, "cannot read|not a checkpoint")]:
        with pytest.raises(checkpoint.CheckpointError, match=message):
            checkpoint.load(path, "rnng")


def test_shipped_checkpoints_load_safely():
    for tier in ("rnng", "student", "teacher"):
        blob = checkpoint.load(f"checkpoints/{tier}.pt", tier)
        assert blob["tier"] == tier and blob["state_dict"]


def test_cards_read_without_torch_are_the_checkpoints_cards(tmp_path):
    """read_card (what --model auto ranks the tiers by) gives the card that torch.load gives."""
    for tier in ("rnng", "student", "teacher"):
        assert checkpoint.read_card(f"checkpoints/{tier}.pt", tier) == checkpoint.load(f"checkpoints/{tier}.pt", tier)["card"]
    assert checkpoint.read_card("checkpoints/rnng.pt", "student") == {}   # another tier's file
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2000))
    assert checkpoint.read_card(garbage, "rnng") == {} and checkpoint.read_card(tmp_path / "none.pt", "rnng") == {}


def test_crafted_pickle_never_runs_when_only_the_card_is_read(tmp_path):
    path, marker = _evil_file(tmp_path)
    assert checkpoint.read_card(path, "rnng") == {}
    assert not marker.exists()


def test_ranking_the_tiers_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys; from models.parsers import select; "
            "print(select.ranked()[0], select.recorded_accuracy('rnng') > 0, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "False"]

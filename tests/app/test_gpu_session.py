"""The prepared GPU session script (tools/gpu_session.sh) end to end on the CPU, with tiny
models and budgets: it must run unchanged the day a GPU machine is lent."""
import json
import os
import subprocess
import sys
from pathlib import Path

from skimage.data import astronaut

from tests.models.training.test_train_loop import write_tiny_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_session_trains_scores_and_times_both_networks_on_the_cpu(tmp_path):
    data = write_tiny_dataset(tmp_path / "faceparse", astronaut())
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, REPEATS="1", TEACHER_SET="width_mult=0.125 input_size=64",
               STUDENT_SET="input_size=64 conv1_channels=8", BENCH_ARGS="--models teacher student --batches 1 2")
    run = subprocess.run(["bash", "tools/gpu_session.sh", str(data), str(out), "0.1", "0.1", "cpu"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    for tier in ("teacher", "student"):
        scores = json.loads((out / f"{tier}_full_val.json").read_text())
        assert 0.0 <= scores["pixel_accuracy"] <= 1.0
    assert (out / "student_full.pt").stat().st_size > 0 and (out / "teacher_full.md").is_file()
    timed = {row["model"]: row for row in json.loads((out / "times_cpu.json").read_text())["rows"]}
    assert {"teacher", "student"} <= set(timed) and timed["student"]["ms_per_face_b1"] > 0


def test_gpu_session_without_a_dataset_says_so(tmp_path):
    run = subprocess.run(["bash", "tools/gpu_session.sh", str(tmp_path / "none"), str(tmp_path / "out")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().startswith("error: no dataset at")

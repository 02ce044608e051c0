"""The prepared GPU session script (tools/gpu_session.sh) end to end on the CPU, with tiny
models and budgets: it must run unchanged the day a GPU machine is lent."""
import json
import os
import subprocess
import tarfile
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
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size < 16 * 2 ** 20 for p in out.iterdir())  # what the device tool returns
    with tarfile.open(out / "results.tar") as tar:
        tar.extractall(tmp_path / "results", filter="data")
    res = tmp_path / "results"
    for tier in ("teacher", "student"):
        scores = json.loads((res / f"{tier}_full_val.json").read_text())
        assert 0.0 <= scores["pixel_accuracy"] <= 1.0
        assert (res / f"{tier}_full.md").read_text().startswith(f"# {tier}: model card")
        epochs = [json.loads(line) for line in (res / f"{tier}_metrics.jsonl").read_text().splitlines()]
        assert epochs and epochs[-1]["val"] is not None   # the last epoch is always validated
    timed = {row["model"]: row for row in json.loads((res / "times_cpu.json").read_text())["rows"]}
    assert {"teacher", "student"} <= set(timed) and timed["student"]["ms_per_face_b1"] > 0
    # the two halves of the teacher join into a checkpoint the registry loads
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"".join((out / f).read_bytes() for f in files if f.startswith("teacher_full.pt.")))
    from models.parsers.registry import create_parser
    assert create_parser("teacher", checkpoint=str(teacher), device="cpu") is not None
    assert (out / "student_full.pt").stat().st_size > 0


def test_gpu_session_trains_the_seed_tiers_alone(tmp_path):
    """TEACHER_MIN 0 and SEEDS: the seed tiers only, their fp16 checkpoints and cards in seeds.tar."""
    data = write_tiny_dataset(tmp_path / "faceparse", astronaut())
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, REPEATS="1", SEEDS="rnng bspnet", SEED_MIN="0.05",
               BENCH_ARGS="--models bspnet --batches 1")
    run = subprocess.run(["bash", "tools/gpu_session.sh", str(data), str(out), "0", "0", "cpu"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert not any(f.startswith(("teacher", "student")) for f in files) and len(files) <= 8
    seeds = tmp_path / "seeds.tar"
    seeds.write_bytes(b"".join((out / f).read_bytes() for f in files if f.startswith("seeds.tar.")))
    with tarfile.open(seeds) as tar:
        tar.extractall(tmp_path / "seeds", filter="data")
    from models.parsers.registry import create_parser
    for tier in ("rnng", "bspnet"):
        assert (tmp_path / "seeds" / f"{tier}.md").read_text().startswith(f"# {tier}: model card")
        assert (tmp_path / "seeds" / f"{tier}_metrics.jsonl").read_text().strip()
        assert create_parser(tier, checkpoint=str(tmp_path / "seeds" / f"{tier}.pt"), device="cpu") is not None


def test_gpu_session_without_a_dataset_says_so(tmp_path):
    run = subprocess.run(["bash", "tools/gpu_session.sh", str(tmp_path / "none"), str(tmp_path / "out")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().startswith("error: no dataset at")

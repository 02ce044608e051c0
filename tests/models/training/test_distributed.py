"""models.train under torchrun on the CPU (gloo), 2 processes, on the tiny astronaut dataset.

One step of 2 ranks x batch 4 gives the weights of 1 process x batch 8 (the test tier has no
BatchNorm and averages per-image losses, so the two are the same sum of gradients); the ranks
see disjoint halves of the 8 training images; only rank 0 writes files or prints; a run
continued with --resume ends where an uninterrupted one with the same seed ends.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.data.dataset import FaceParsingDataset
from models.parsers import registry
from models.training import recipes, train
from tests.conftest import REPO
from tests.models.training.test_train_loop import write_tiny_dataset
from tests.models.training import torchrun_entry


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from skimage.data import astronaut
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "faceparse", astronaut())


PORT_RACE = ("Address already in use", "EADDRINUSE", "DistNetworkError", "RendezvousConnectionError")


def torchrun(data, out, log_dir, *extra, processes=2):
    args = ["--model", "ddp-toy", "--data", str(data), "--out", str(out), "--device", "cpu", "--threads", "1",
            "--seed", "3", "--sources", "facesynthetics", *map(str, extra)]
    env = {**os.environ, "DDP_TEST_LOG": str(log_dir), "OMP_NUM_THREADS": "1"}
    log_dir.mkdir(exist_ok=True)
    for attempt in range(2):
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={processes}", "-m", "tests.models.training.torchrun_entry", *args],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        # torchrun picks a free port, frees it and binds it again: in a full suite another
        # process (a Ray or Gradio test's) can take it in between; that one case runs again
        if done.returncode == 0 or not any(m in done.stderr for m in PORT_RACE):
            break
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = [json.loads((log_dir / f"rank{r}.json").read_text()) for r in range(processes)]
    return done.stdout, logs


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_two_ranks_match_one_process_disjoint_halves_rank0_writes_and_resume(tiny_data, tmp_path, monkeypatch):
    # one process, batch 8: one step over the 8 training images
    monkeypatch.setattr(registry, "TIERS", dict(registry.TIERS))
    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    torchrun_entry.register(torchrun_entry.__name__)
    single = tmp_path / "single"
    train.main(["--model", "ddp-toy", "--data", str(tiny_data), "--out", str(single), "--device", "cpu",
                "--threads", "1", "--seed", "3", "--sources", "facesynthetics", "--batch-size", "8"])

    # two ranks, batch 4 each: one step
    ddp = tmp_path / "ddp"
    stdout, logs = torchrun(tiny_data, ddp, tmp_path / "log1", "--batch-size", "4")
    one, two = weights(single / "last.pt"), weights(ddp / "last.pt")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5, rtol=0), (k, (one[k] - two[k]).abs().max())
    train.seed_everything(3)   # the loop's initial weights: the step moved them
    initial = torchrun_entry.PerImageToy().build(torchrun_entry.PerImageToy().default_config()).state_dict()
    assert all((initial[k] - two[k]).abs().max() > 1e-4 for k in initial)

    # disjoint halves that cover the training split
    dataset = FaceParsingDataset(tiny_data, "train", size=64, sources=["facesynthetics"])
    every = sorted(round(float(dataset[i]["image"].sum()), 2) for i in range(len(dataset)))
    rank0, rank1 = logs[0]["seen"], logs[1]["seen"]
    assert len(rank0) == len(rank1) == 4 and not set(rank0) & set(rank1)
    assert np.allclose(sorted(rank0 + rank1), every, atol=0.05)

    # only rank 0 wrote files and printed
    assert logs[1]["written"] == []
    assert {"config.json", "metrics.jsonl", "last.pt", "best.pt"} <= set(logs[0]["written"])
    assert stdout.count("training ddp-toy on cpu") == 1 and "2 processes (torchrun)" in stdout
    assert stdout.count("epoch 1 [train 1/1]") == 1

    # --resume continues the 2-rank run; the same seed straight through gives the same weights
    stdout, _ = torchrun(tiny_data, ddp, tmp_path / "log2", "--batch-size", "4", "--resume", "--epochs", "2")
    assert stdout.count("epoch 2 [train 2/2]") == 1 and "epoch 1 [" not in stdout
    straight = tmp_path / "straight"
    torchrun(tiny_data, straight, tmp_path / "log3", "--batch-size", "4", "--epochs", "2")
    resumed, fresh = weights(ddp / "last.pt"), weights(straight / "last.pt")
    for k in fresh:
        assert torch.equal(resumed[k], fresh[k]), k
    assert any(not torch.equal(fresh[k], two[k]) for k in fresh)   # epoch 2 did change the weights
    metrics = [json.loads(line) for line in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]

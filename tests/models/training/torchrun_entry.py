"""`python -m models.train` with a test tier, for torchrun in test_distributed.py:

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m tests.models.training.torchrun_entry ARGS

Registers "ddp-toy" (two convolutions, no BatchNorm, loss = mean over images of each image's
mean cross-entropy: so 2 ranks x B images average to exactly the loss of 1 process x 2B), then
runs models.training.train.main(ARGS). With DDP_TEST_LOG=DIR each rank writes DIR/rank<R>.json:
the images its steps saw (by pixel sum) and every file it opened for writing (or torch.save'd) under --out.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

from core.classes import IGNORE
from models.parsers import registry
from models.training import recipes, train
from tests.models.training.test_train_loop import ToyNet, ToyRecipe


class PerImageToy(ToyRecipe):
    """test_train_loop's toy net (two convolutions, no BatchNorm), SGD, each image's loss averaged."""
    name = "ddp-toy"
    seen = []

    def default_config(self):
        return {**super().default_config(), "epochs": 1, "lr": 0.05, "optimizer": "sgd"}

    def loss(self, model, batch, stage):
        PerImageToy.seen += [round(float(s), 2) for s in batch["image"].flatten(1).sum(1)]
        label = batch["label"]
        pixels = F.cross_entropy(model(batch["image"]), label, ignore_index=IGNORE, reduction="none")
        valid = (label != IGNORE).flatten(1)
        per_image = (pixels.flatten(1) * valid).sum(1) / valid.sum(1).clamp(min=1)
        loss = per_image.mean()
        return loss, {"ce": loss.item()}


def register(module: str = __name__):
    registry.TIERS["ddp-toy"] = registry.Tier("ddp-toy", "toy conv net for tests", network=f"{ToyNet.__module__}:ToyNet")
    recipes.RECIPES["ddp-toy"] = f"{module}:PerImageToy"


def main(argv):
    register()
    log_dir = os.environ.get("DDP_TEST_LOG")
    out = os.path.abspath(argv[argv.index("--out") + 1])
    written = []

    def record(path):
        if isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(out):
            written.append(os.path.relpath(os.fsdecode(path), out))

    def audit(event, args):   # every open() for writing
        if event == "open" and isinstance(args[1], str) and any(m in args[1] for m in "wax+"):
            record(args[0])
    sys.addaudithook(audit)
    torch_save = torch.save   # torch.save writes a path from C++, past the audit hook

    def recording_save(obj, f, *args, **kwargs):
        record(f)
        return torch_save(obj, f, *args, **kwargs)
    torch.save = recording_save
    train.main(argv)
    if log_dir:
        rank = os.environ.get("RANK", "0")
        result = {"seen": PerImageToy.seen, "written": sorted(set(written))}
        with open(os.path.join(log_dir, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])

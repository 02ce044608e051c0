"""Export a network's learned parts to ONNX beside its checkpoint, for its torch-free CPU path
(models.parsers.onnx_runtime, models.parsers.rnng_ort, models.parsers.hair_net).

    python -m tools.export_onnx rnng          # checkpoints/rnng.onnx/{cnn,head,eye,nose,mouth}.onnx + config.json
    python -m tools.export_onnx hair_net      # checkpoints/hair_net.onnx/net.onnx

Rerun after every retraining: files tagged with another checkpoint's SHA-256 are not used (the
network then runs on torch). Needs torch and the `onnx` package.
"""
import argparse
import io
import json
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from models.parsers import checkpoint as ckpt
from models.parsers import hair_net, registry
from models.parsers.onnx_runtime import CONFIG, digest, folder


def export(model, example, path: Path, checkpoint_digest: str, any_size: bool = False) -> None:
    """Write torch module `model` (inputs like tensor `example`; any batch size, and any height
    and width with `any_size`) as ONNX, tagged with the digest of the checkpoint its weights came
    from. Needs torch and the `onnx` package."""
    import onnx
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (example,), buffer, input_names=["x"], dynamo=False, opset_version=17,
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"} if any_size else {0: "n"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {"checkpoint_sha256": checkpoint_digest})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def export_rnng() -> None:
    path = registry.tier("rnng").checkpoint
    network = registry.network_class("rnng")
    blob = ckpt.load(path, "rnng")
    model = ckpt.load_into(network.from_config(blob["config"]), blob).eval()
    sha = digest(path)
    for name, (module, example) in model.onnx_parts().items():
        target = folder(path) / f"{name}.onnx"
        export(module, example, target, sha)
        print(f"wrote {target}")
    config = {"checkpoint_sha256": sha, "config": {**network.defaults, **blob["config"]}, **model.recurrence()}
    (folder(path) / CONFIG).write_text(json.dumps(config) + "\n")
    print(f"wrote {folder(path) / CONFIG}")


class HairProbability(nn.Module):
    """The hair network and its softmax: (N, 4, H, W) -> (N, H, W) hair probability."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).softmax(1)[:, 1]


def export_hair_net() -> None:
    path = hair_net.DEFAULT_CHECKPOINT
    target = folder(path) / hair_net.ONNX_FILE
    export(HairProbability(hair_net.load_torch_hair_net(path)), torch.zeros(1, 4, 384, 384), target, digest(path),
           any_size=True)
    print(f"wrote {target}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("network", choices=["rnng", "hair_net"])
    args = ap.parse_args(argv)
    export_rnng() if args.network == "rnng" else export_hair_net()
    return 0


if __name__ == "__main__":
    sys.exit(main())

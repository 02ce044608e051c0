"""Speed of the paper-replica tiers (RED-Net, BSPNet, STN-iCNN) behind the Parser interface.

    python -m benchmarks.models_seed [--models rednet bspnet stn-icnn] [--threads 1] [--repeats 15]

Per tier: latency per face at batch 1 and 8 (medians over `repeats` runs after warm-up) of
  * model: the network's predict at its own input size (what the network costs), and
  * parser: the whole Parser call on 256x256 uint8 crops (resize in, probabilities out at 256).
Weights: the committed checkpoint when there is one, else a fresh model (speed does not depend
on the weights; RED-Net's exemplar prior is then filled with 64 synthetic exemplars so that the
nearest-neighbour and entropy steps run). Real crops: FaceSynthetics val faces of
data/faceparse when built, else the astronaut. Hardware is printed with the numbers.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from models.parsers import checkpoint as ckpt
from models.training.evaluate import hardware_string
from models.parsers.registry import network_class, tier
from models.parsers.torch_parser import TorchParser
from benchmarks.common import real_crops, timed

MODELS = ("rednet", "bspnet", "stn-icnn")


def load_model(name: str):
    network, path = network_class(name), tier(name).checkpoint
    if path.is_file():
        blob = ckpt.load(path, name)
        return ckpt.load_into(network.from_config(blob["config"]), blob), "checkpoint"
    model = network.from_config({})
    if name == "rednet":  # fill the prior so that its steps are timed
        s = model.input_size
        rng = np.random.default_rng(0)
        five = (np.array([(0.4, 0.48), (0.6, 0.48), (0.5, 0.6), (0.42, 0.7), (0.58, 0.7)]) * s
                + rng.normal(0, 2, (64, 5, 2))).astype(np.float32)
        model.prior.fit(five, rng.integers(0, 11, (64, s, s), dtype=np.uint8))
    return model, "fresh weights"


def bench(name: str, repeats: int) -> dict:
    model, weights = load_model(name)
    model.eval()
    parser = TorchParser(name, model, device="cpu")
    s = model.input_size
    crops, five = real_crops(8)
    out = {"model": name, "weights": weights, "input_size": s,
           "parameters": sum(p.numel() for p in model.parameters())}
    for b in (1, 8):
        image = torch.from_numpy(crops[:b]).permute(0, 3, 1, 2).float() / 255
        if s != 256:
            image = torch.nn.functional.interpolate(image, size=(s, s), mode="bilinear", antialias=True)
        batch = {"image": image, "five": torch.from_numpy(five[:b] * s / 256),
                 "mesh": torch.full((b, 478, 2), float("nan"))}
        with torch.inference_mode():
            net = timed(lambda: model.predict(batch), repeats)["median_ms"]
        full = timed(lambda: parser(crops[:b], five[:b]), repeats)["median_ms"]
        out[f"model_ms_per_face_b{b}"] = round(net / b, 2)
        out[f"parser_ms_per_face_b{b}"] = round(full / b, 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.models_seed", description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on the shared machine)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"hardware: {hardware_string('cpu')}; torch threads {args.threads}; medians of {args.repeats} runs")
    results = []
    print(f"{'model':10s} {'weights':13s} {'size':>4s} {'params':>9s} | ms/face b1: model parser | b8: model parser")
    for name in args.models:
        r = bench(name, args.repeats)
        results.append(r)
        print(f"{name:10s} {r['weights']:13s} {r['input_size']:4d} {r['parameters']:9d} | "
              f"{r['model_ms_per_face_b1']:8.1f} {r['parser_ms_per_face_b1']:7.1f} | "
              f"{r['model_ms_per_face_b8']:8.1f} {r['parser_ms_per_face_b8']:7.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hardware_string("cpu"), "threads": args.threads,
                                               "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()

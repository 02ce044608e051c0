"""Speed of the RNN-G tier (Liu et al., "Face Parsing via Recurrent Propagation") on this CPU:
latency per face and throughput.

    python -m benchmarks.models_rnng [--threads 2 1] [--batches 1 8 32] [--repeats 20] [--json out.json]

For each thread count (torch and numba together), with stage 2 off and on, and batch 1/8/32:
  * model:  RNNGNet forward on its input (the numba scan), what the network costs
  * parser: the whole Parser call on 256x256 uint8 crops (resize in, probabilities out at 256)
and the recurrence alone (64x64x16, four directions): numba kernel vs the torch loop.
Median and minimum over `repeats` timed runs after warm-up: the machine is shared, so the
minimum is the better estimate of the cost and the median of what a busy machine gives.
Weights: the committed checkpoint when present, else a fresh model (speed does not depend on
the weights). Crops: FaceSynthetics val faces of data/faceparse when built, else the astronaut.
"""
import argparse
import json
from pathlib import Path

import numba
import numpy as np
import torch

from models.parsers import checkpoint as ckpt
from models.training.evaluate import hardware_string
from models.parsers.gated_scan import scan_numba, scan_torch
from models.parsers.registry import tier
from models.parsers.rnng import RNNGNet
from models.parsers.torch_parser import TorchParser
from benchmarks.common import real_crops, timed



def load_model():
    path = tier("rnng").checkpoint
    if path.is_file():
        blob = ckpt.load(path, "rnng")
        return ckpt.load_into(RNNGNet.from_config(blob["config"]), blob).eval(), "checkpoint"
    return RNNGNet.from_config({}).eval(), "fresh weights"


def run(threads=(2, 1), batches=(1, 8, 32), repeats=20) -> dict:
    model, weights = load_model()
    parser = TorchParser("rnng", model, "cpu")
    crops, five = real_crops(max(batches))
    size = model.input_size  # 256: stage 1 resizes to 128 inside, stage 2 crops the full input
    image = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    scale = size / crops.shape[1]
    if size != crops.shape[1]:
        image = torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
    five_in = torch.from_numpy((five + 0.5) * scale - 0.5)
    results = {"hardware": hardware_string("cpu"), "weights": weights, "rows": [], "scan": []}
    print(f"RNN-G on {results['hardware']} ({weights})")
    rng = np.random.default_rng(0)
    c = model.rnn.weight.shape[0]
    x, g = rng.normal(size=(1, c, 64, 64)).astype(np.float32), rng.uniform(0, 1, (1, c, 64, 64)).astype(np.float32)
    w, b = model.rnn.transition().detach().numpy(), model.rnn.bias.detach().numpy()
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        with torch.inference_mode():
            tn = timed(lambda: scan_numba(x, g, w, b), repeats)
            tt = timed(lambda: scan_torch(*map(torch.from_numpy, (x, g, w, b))), repeats)
        results["scan"].append({"threads": n_threads, "numba": tn, "torch": tt})
        print(f"threads {n_threads}: scan 64x64x{c} numba {tn['median_ms']:.2f} ms (min {tn['min_ms']:.2f}), "
              f"torch loop {tt['median_ms']:.2f} ms (min {tt['min_ms']:.2f})")
        for stage2 in (False, True):
            model.use_stage2 = stage2
            for n in batches:
                with torch.inference_mode():
                    m = timed(lambda: model(image[:n], five_in[:n], backend="numba"), repeats)
                p = timed(lambda: parser(crops[:n], five[:n]), repeats)
                row = {"threads": n_threads, "stage2": stage2, "batch": n,
                       "model_ms_per_face": m["median_ms"] / n, "model_min_ms_per_face": m["min_ms"] / n,
                       "parser_ms_per_face": p["median_ms"] / n, "parser_min_ms_per_face": p["min_ms"] / n,
                       "model_faces_per_s": 1e3 * n / m["median_ms"], "parser_faces_per_s": 1e3 * n / p["median_ms"]}
                results["rows"].append(row)
                print(f"  stage2 {'on ' if stage2 else 'off'} batch {n:2d}: model {row['model_ms_per_face']:6.2f} ms/face "
                      f"(min {row['model_min_ms_per_face']:5.2f}, {row['model_faces_per_s']:6.1f} faces/s) | parser "
                      f"{row['parser_ms_per_face']:6.2f} ms/face (min {row['parser_min_ms_per_face']:5.2f}, "
                      f"{row['parser_faces_per_s']:6.1f} faces/s)")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.models_rnng", description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    results = run(tuple(args.threads), tuple(args.batches), args.repeats)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()

"""RNN-G's CPU path (ONNX Runtime + numba + numpy, models.parsers.rnng_ort) against torch, on
this CPU, one thread (as in the live pipeline).

    python -m benchmarks.onnx_vs_torch [--repeats 40]

Times RNN-G's shallow CNN (128x128), each component net (the batch a face gives it: both eyes,
nose and mouth with their mirrored crops) and the whole parser call on one real 256x256 crop,
torch and the CPU path alternated (call by call; whole parsers 5 calls at a time) so that the
machine's load hits both alike.
Prints median and minimum ms and the agreement of the two parsers' outputs.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from benchmarks.common import real_crops
from models.parsers import onnx_runtime, registry, rnng_ort
from models.parsers.rnng import RNNGNet
from models.parsers.torch_parser import TorchParser

BATCH = {"eye": 2, "nose": 2, "mouth": 2}   # crops per face: two eyes; nose and mouth with their mirror


def alternate(fns: dict, repeats: int, block: int = 1) -> dict:
    """{name: (median ms, min ms)}, calling the functions in turn, `block` calls each, `repeats`
    calls in all, after warm-up."""
    times = {k: [] for k in fns}
    for fn in fns.values():
        fn()
        fn()
    for _ in range(0, repeats, block):
        for k, fn in fns.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1000)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args(argv)
    if not onnx_runtime.available():
        print("skipped: onnxruntime and onnx are not installed")
        return 0
    if "rnng" not in registry.available_checkpoints():
        print("skipped: needs checkpoints/rnng.pt")
        return 0
    torch.set_num_threads(1)
    path = registry.tier("rnng").checkpoint
    plain = TorchParser.from_checkpoint("rnng", RNNGNet, path, "cpu")
    fast = rnng_ort.load(path)
    if fast is None:
        print("skipped: no ONNX files for this checkpoint (python -m tools.export_onnx rnng)")
        return 0
    crops, five = real_crops(1)
    rows = []
    with torch.inference_mode():
        x = torch.rand(1, 3, 128, 128).contiguous(memory_format=torch.channels_last)
        rows.append(("shallow CNN 128x128", alternate({"torch": lambda: plain.model.cnn(x),
                                                       "onnx": lambda: fast.run("cnn", x.numpy())}, args.repeats)))
        for name, n in BATCH.items():
            size = (32, 64) if name == "mouth" else (64, 64)
            xc = torch.rand((n, 3) + size).contiguous(memory_format=torch.channels_last)
            rows.append((f"{name} net, {n} crops", alternate({"torch": lambda: plain.model.components[name](xc),
                                                             "onnx": lambda: fast.run(name, xc.numpy())},
                                                            args.repeats)))
    # whole parsers in blocks of 5 calls: call by call, each slowed the other by ~25% here (both
    # run numba's recurrence and fill the caches with their own buffers)
    rows.append(("whole parser, 1 face", alternate({"torch": lambda: plain(crops, five),
                                                    "onnx": lambda: fast(crops, five)}, args.repeats, block=5)))
    a, b = plain(crops, five), fast(crops, five)
    print(f"{os.cpu_count()} cores, 1 thread, {args.repeats} alternated calls; ms median (min)")
    print(f"{'':<24}{'torch':>16}{'ONNX Runtime':>16}{'ratio':>8}   (whole parser: torch-free path)")
    for name, t in rows:
        print(f"{name:<24}{t['torch'][0]:>8.2f} ({t['torch'][1]:5.2f}){t['onnx'][0]:>8.2f} ({t['onnx'][1]:5.2f})"
              f"{t['onnx'][0] / t['torch'][0]:>7.2f}x")
    print(f"outputs: max |difference| {np.abs(a - b).max():.2e}, same argmax {100 * (a.argmax(1) == b.argmax(1)).mean():.3f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())

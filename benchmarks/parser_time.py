"""Per-face time of the parser call alone, tiers alternated call by call.

    python -m benchmarks.parser_time [--models rnng combined landmarks] [--repeats 60] [--batch 1]

On the face `--model auto` times the tiers on (the astronaut, aligned by the tracker, with its
mesh), with the pipeline's thread settings (stream.assemble.pipeline_threads). Calls of the
tiers alternate so that a busy moment of the shared machine falls on all of them alike;
median and minimum ms per face are printed.
"""
import argparse
import statistics
import time

import numpy as np

from models.parsers import registry
from stream import assemble


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["rnng", "combined", "landmarks"])
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--batch", type=int, default=1, help="faces per call (copies of the one face)")
    args = ap.parse_args()
    assemble.pipeline_threads()
    crops, five, mesh = (np.repeat(a, args.batch, 0) for a in assemble.warmup_batch())
    parsers = {m: registry.create_parser(m, device="cpu") for m in args.models}
    assemble.pipeline_threads()   # again: a tier may have brought torch in
    times = {m: [] for m in parsers}
    for _ in range(2):            # warm-up
        for p in parsers.values():
            p(crops, five, mesh)
    for _ in range(args.repeats):
        for m, p in parsers.items():
            t0 = time.perf_counter()
            p(crops, five, mesh)
            times[m].append((time.perf_counter() - t0) * 1000 / args.batch)
    print(f"ms per face, batch {args.batch}, {args.repeats} alternated calls each:")
    for m, t in times.items():
        print(f"{m:<12} median {statistics.median(t):6.2f}   min {min(t):6.2f}")


if __name__ == "__main__":
    main()

"""`--model auto`: pick the most accurate tier whose parse fits the per-frame time budget,
by timing warm-up parses on this machine (e.g. RNN-G on a 2-core CPU, the Student on a GPU)."""
import time

import numpy as np

from models import registry

# most accurate first
PREFERENCE = ("student", "rnng", "landmarks")
DEFAULT_BUDGET_MS = 12.0  # per face: 30 fps minus the fixed stages (decode, mesh, effects, encode)


def time_parser(parser, crops, five, mesh, repeats: int = 5) -> float:
    """Median milliseconds per face, after one warm-up call."""
    parser(crops, five, mesh)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        parser(crops, five, mesh)
        times.append((time.perf_counter() - t0) * 1000 / len(crops))
    return float(np.median(times))


def pick_tier(crops, five, mesh, budget_ms: float = DEFAULT_BUDGET_MS, device: str = "auto",
              candidates=PREFERENCE, repeats: int = 5):
    """(name, parser, {name: ms per face}) for the first candidate that fits the budget;
    the fastest one when none does. Tiers without a checkpoint here are skipped."""
    timings, parsers = {}, {}
    runnable = [c for c in candidates if c in registry.available_checkpoints()]
    for name in runnable:
        parser = registry.create_parser(name, device=device)
        parsers[name] = parser
        timings[name] = time_parser(parser, crops, five, mesh, repeats)
        if timings[name] <= budget_ms:
            return name, parser, timings
    fastest = min(timings, key=timings.get)
    return fastest, parsers[fastest], timings

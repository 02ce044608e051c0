"""`--model auto`: pick the most accurate real-time tier whose parse fits the per-frame time
budget, by timing warm-up parses on this machine (e.g. RNN-G on a 2-core CPU, the Student on
a GPU). "Most accurate" is what each tier scored on our validation splits, as recorded in its
checkpoint card, not what its paper reports."""
import time
from functools import lru_cache

import numpy as np

from models.parsers import checkpoint, registry

REAL_TIME_TIERS = ("student", "rnng", "landmarks")
DEFAULT_BUDGET_MS = 12.0  # per face: 30 fps minus the fixed stages (decode, mesh, effects, encode)
# the landmark tier has no checkpoint: its validation scores as measured by
# `python -m benchmarks.accuracy` (FaceSynthetics val overall / mean F1, LFW val hair F1)
LANDMARK_TIER_SCORES = {"overall_f1": 0.818, "mean_f1": 0.721, "hair_f1": 0.680}


@lru_cache(maxsize=None)
def recorded_accuracy(name: str) -> float:
    """Sum of validation overall F1, mean F1 and LFW hair F1 recorded for a tier (0 if unknown)."""
    if not registry.tier(name).learned:
        scores = LANDMARK_TIER_SCORES
    else:
        try:
            scores = checkpoint.load(registry.tier(name).checkpoint, name)["card"].get("val") or {}
        except checkpoint.CheckpointError:
            return 0.0
    return sum(scores.get(k) or 0.0 for k in ("overall_f1", "mean_f1", "hair_f1"))


def ranked(candidates=REAL_TIME_TIERS) -> list[str]:
    """Runnable tiers among `candidates`, most accurate first."""
    runnable = [c for c in candidates if c in registry.available_checkpoints()]
    return sorted(runnable, key=recorded_accuracy, reverse=True)


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
              candidates=None, repeats: int = 5):
    """(name, parser, {name: ms per face}) for the first candidate that fits the budget, in
    the given order (default: the real-time tiers, most accurate first); the fastest one when
    none does. Tiers without a checkpoint here are skipped."""
    order = [c for c in candidates if c in registry.available_checkpoints()] if candidates else ranked()
    timings, parsers = {}, {}
    for name in order:
        parser = registry.create_parser(name, device=device)
        parsers[name] = parser
        timings[name] = time_parser(parser, crops, five, mesh, repeats)
        if timings[name] <= budget_ms:
            return name, parser, timings
    fastest = min(timings, key=timings.get)
    return fastest, parsers[fastest], timings

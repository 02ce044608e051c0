"""`--model auto`: the tier to run.

For live input (camera, video) the most accurate tier whose parse fits the per-frame time budget
here, by timing warm-up parses on this machine, most accurate first: so it never picks a tier
less accurate than one it could afford. The machine may be busy with other
work, which only ever makes a parse slower: each tier is timed in two rounds and its faster
round counts, and a tier must fit the budget with a margin to spare, so that one busy moment
does not flip the choice from run to run. For photos and folders no frame budget applies: the
most accurate tier that can run here.

"Most accurate" is what each tier scored on our validation splits, as recorded in its card
(inside checkpoints/<tier>.pt, or checkpoints/<tier>.json for a tier without weights), not what
its paper reports.
"""
import json
import time
from functools import lru_cache

import numpy as np

from models.parsers import checkpoint, registry

REAL_TIME_TIERS = ("student", "rnng", "landmarks")  # the fast ones (the fallback for mesh-less faces)
DEFAULT_BUDGET_MS = 12.0  # per face: 30 fps minus the fixed stages (decode, mesh, effects, encode)
MARGIN = 0.1              # a tier's best time must stay 10% under the budget
SCORE_KEYS = ("overall_f1", "mean_f1", "hair_f1")


def card(name: str) -> dict:
    """A tier's card: from its checkpoint, or from checkpoints/<name>.json for a tier without
    weights. {} when there is none or it cannot be read."""
    t = registry.tier(name)
    if not t.learned:
        path = t.checkpoint.with_suffix(".json")
        try:
            blob = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return blob.get("card", {}) if blob.get("tier") == name else {}
    return checkpoint.read_card(t.checkpoint, name)


@lru_cache(maxsize=None)
def recorded_accuracy(name: str) -> float:
    """Sum of validation overall F1, mean F1 and LFW hair F1 recorded for a tier (0 if unknown)."""
    scores = card(name).get("val") or {}
    return sum(scores.get(k) or 0.0 for k in SCORE_KEYS)


def ranked(candidates=None) -> list[str]:
    """Runnable tiers among `candidates` (default: every tier), most accurate first."""
    runnable = [c for c in candidates or registry.TIERS if c in registry.available_checkpoints()]
    return sorted(runnable, key=recorded_accuracy, reverse=True)


def most_accurate(device: str = "auto"):
    """(name, parser) of the most accurate runnable tier: for photos, where no frame budget applies."""
    name = ranked()[0]
    return name, registry.create_parser(name, device=device)


def time_parser(parser, crops, five, mesh, repeats: int = 5) -> float:
    """Median milliseconds per face, after one warm-up call."""
    parser(crops, five, mesh)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        parser(crops, five, mesh)
        times.append((time.perf_counter() - t0) * 1000 / len(crops))
    return float(np.median(times))


def fits(ms: float, budget_ms: float, margin: float = MARGIN) -> bool:
    return ms * (1.0 + margin) <= budget_ms


def pick_tier(crops, five, mesh, budget_ms: float = DEFAULT_BUDGET_MS, device: str = "auto",
              candidates=None, repeats: int = 5, margin: float = MARGIN, prepare=None):
    """(name, parser, {name: (round 1 ms, round 2 ms)}) for the first candidate whose faster
    round fits the budget with `margin` to spare, in the given order (default: every tier that
    can run here, most accurate first); the fastest one when none does. Tiers without a checkpoint here
    are skipped. `prepare()` runs after each parser loads, before it is timed (the pipeline's
    thread settings: a tier must be timed as it will run)."""
    order = [c for c in candidates if c in registry.available_checkpoints()] if candidates else ranked()
    timings, parsers = {}, {}
    for name in order:
        parser = registry.create_parser(name, device=device)
        if prepare is not None:
            prepare()
        parsers[name] = parser
        timings[name] = tuple(time_parser(parser, crops, five, mesh, repeats) for _ in range(2))
        if fits(min(timings[name]), budget_ms, margin):
            return name, parser, timings
    fastest = min(timings, key=lambda n: min(timings[n]))
    return fastest, parsers[fastest], timings

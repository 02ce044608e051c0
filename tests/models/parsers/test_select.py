"""--model auto: the tier is picked by timing warm-up parses here against the budget."""
import pytest

from models.parsers import registry, select
from stream.assemble import warmup_batch


def test_different_budgets_give_different_picks():
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt (committed with the project)")
    batch = warmup_batch()
    candidates = ("rnng", "landmarks")
    generous, _, timed = select.pick_tier(*batch, budget_ms=1e6, device="cpu", candidates=candidates)
    assert generous == "rnng" and list(timed) == ["rnng"]  # the first that fits; nothing else timed
    none_fit, _, timed = select.pick_tier(*batch, budget_ms=0.0, device="cpu", candidates=candidates)
    assert set(timed) == set(candidates) and none_fit == min(timed, key=timed.get)
    # a budget between the two measured times picks the faster tier
    slow, fast = sorted(timed, key=timed.get, reverse=True)
    if timed[slow] > 1.5 * timed[fast]:
        middle, _, _ = select.pick_tier(*batch, budget_ms=1.2 * timed[fast], device="cpu", candidates=(slow, fast))
        assert middle == fast

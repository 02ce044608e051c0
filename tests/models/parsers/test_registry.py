"""The tier registry: every entry's "module:Class" string resolves to what it should be."""
import pytest

from core.lazy import resolve
from models.parsers import registry
from models.parsers.network import TierNet
from models.parsers.parser import Parser


def test_every_tier_resolves_to_a_parser_or_a_network():
    for name, tier in registry.TIERS.items():
        assert (tier.parser is None) != (tier.network is None), name  # exactly one of the two
        if tier.learned:
            net = registry.network_class(name)
            assert issubclass(net, TierNet) and "input_size" in net.defaults, name
        else:
            assert issubclass(resolve(tier.parser), Parser), name


def test_unknown_and_weightless_tiers_give_clear_errors():
    with pytest.raises(registry.UnknownModel, match="unknown model 'nope'; choose from: landmarks"):
        registry.tier("nope")
    with pytest.raises(registry.UnknownModel, match="no network weights"):
        registry.network_class("landmarks")
    assert "landmarks" in registry.available_checkpoints()

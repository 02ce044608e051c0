"""core.lazy: "module:attribute" strings resolve to the attribute, importing the module then."""
import subprocess
import sys

import pytest

from core.lazy import resolve


def test_resolve_imports_on_use():
    code = ("import sys; from core.lazy import resolve; assert 'colorsys' not in sys.modules; "
            "f = resolve('colorsys:rgb_to_hsv'); assert 'colorsys' in sys.modules; print(f(1, 0, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(0.0, 1.0, 1)"


def test_bad_targets_say_what_is_wrong():
    with pytest.raises(ValueError, match="module:attribute"):
        resolve("colorsys.rgb_to_hsv")
    with pytest.raises(ModuleNotFoundError):
        resolve("no_such_module:thing")
    with pytest.raises(AttributeError):
        resolve("colorsys:no_such_thing")

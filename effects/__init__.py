"""Makeup and hair effects rendered from per-class probabilities (see effects/render.py)."""
from effects.overlay import legend_html, legend_image, overlay_labels
from effects.render import render
from effects.spec import (DEFAULT_EFFECTS, EFFECT_NAMES, TOGGLE_KEYS, EffectParams, EffectSettings,
                          EffectSpecError, parse_effects)

__all__ = ["DEFAULT_EFFECTS", "EFFECT_NAMES", "TOGGLE_KEYS", "EffectParams", "EffectSettings",
           "EffectSpecError", "legend_html", "legend_image", "overlay_labels", "parse_effects", "render"]

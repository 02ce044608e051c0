"""Effect settings: the spec string of the CLI, the values of the Gradio page, on/off toggles.

Spec grammar (comma-separated, any order, each effect at most once):
    lipstick=#b0103a:0.7:gloss   colour:strength[:matte|gloss]
    lipstick=crimson:0.7         a CSS colour name (Pillow's ImageColor), rgb(...) or hsl(...)
    eyeshadow=#6b4c9a:0.5        colour:strength   (also blush, brows, hair)
    smooth=0.4                   strength only     (also teeth)
A bare name (``blush``) takes that effect's default values, a colour alone its default
strength, a lipstick without a finish gloss; ``none`` or "" means no effect.
Strength is a number from 0 to 1.
"""
from dataclasses import dataclass, field, replace

from effects.colour import closest_colour_name, format_colour, parse_colour

COLOUR_EFFECTS = ("lipstick", "eyeshadow", "blush", "brows", "hair")
STRENGTH_EFFECTS = ("smooth", "teeth")
EFFECT_NAMES = ("smooth", "blush", "eyeshadow", "brows", "lipstick", "teeth", "hair")  # render order
FINISHES = ("matte", "gloss")

DEFAULT_EFFECTS = ("smooth=0.4,lipstick=#a8324a:0.6:gloss,blush=#e07a7a:0.35,"
                   "eyeshadow=#7a5a8c:0.45,brows=#3b2416:0.35,teeth=0.4")
# values a bare name or a toggle falls back on
DEFAULT_VALUES = {
    "lipstick": ("#a8324a", 0.6, "gloss"), "eyeshadow": ("#7a5a8c", 0.45), "blush": ("#e07a7a", 0.35),
    "brows": ("#3b2416", 0.35), "hair": ("#6a2ca0", 0.5), "smooth": 0.4, "teeth": 0.4,
}
# keys of the live window: one per effect
TOGGLE_KEYS = {"s": "smooth", "b": "blush", "e": "eyeshadow", "w": "brows", "l": "lipstick",
               "t": "teeth", "h": "hair"}

_USAGE = {name: f"{name}=colour:strength" for name in COLOUR_EFFECTS}
_USAGE["lipstick"] = "lipstick=colour:strength[:matte|gloss]"
_EXAMPLE_COLOURS = {"lipstick": "crimson", "eyeshadow": "slateblue", "blush": "lightcoral",
                    "brows": "saddlebrown", "hair": "rebeccapurple"}
_USAGE.update({name: f"{name}=strength" for name in STRENGTH_EFFECTS})


class EffectSpecError(ValueError):
    """A spec string or value that names no effect or holds a bad colour, strength or finish."""


@dataclass(frozen=True)
class EffectParams:
    strength: float
    colour: tuple | None = None   # (r, g, b) 0..255; None for smooth and teeth
    finish: str | None = None     # lipstick only: "matte" or "gloss"
    on: bool = True


@dataclass
class EffectSettings:
    effects: dict = field(default_factory=dict)  # name -> EffectParams

    def enabled(self, name: str) -> bool:
        p = self.effects.get(name)
        return p is not None and p.on and p.strength > 0

    def params(self, name: str) -> EffectParams:
        return self.effects[name]

    def set_enabled(self, name: str, on: bool) -> None:
        _check_name(name)
        if name not in self.effects:
            self.effects[name] = _params(name, DEFAULT_VALUES[name])
        self.effects[name] = replace(self.effects[name], on=on)

    def toggle(self, name: str) -> bool:
        """Flip one effect on/off (keeping its values); returns the new state."""
        self.set_enabled(name, not self.enabled(name))
        return self.enabled(name)

    def toggle_key(self, key: str) -> str | None:
        """The live window's keys (TOGGLE_KEYS): toggles and returns the effect's name, or None."""
        name = TOGGLE_KEYS.get(key)
        if name is not None:
            self.toggle(name)
        return name

    def active(self) -> list:
        return [n for n in EFFECT_NAMES if self.enabled(n)]

    def to_spec(self) -> str:
        items = []
        for name in EFFECT_NAMES:
            if not self.enabled(name):
                continue
            p = self.effects[name]
            fields = ([format_colour(p.colour)] if p.colour else []) + [f"{p.strength:g}"]
            items.append(f"{name}={':'.join(fields + ([p.finish] if p.finish else []))}")
        return ",".join(items)

    @classmethod
    def from_values(cls, **values) -> "EffectSettings":
        """Programmatic settings, e.g. from_values(lipstick=("#b0103a", 0.7, "gloss"), smooth=0.4,
        hair=((106, 44, 160), 0.5)); a value of None or a strength of 0 leaves the effect off."""
        settings = cls()
        for name, value in values.items():
            _check_name(name)
            if value is None:
                continue
            settings.effects[name] = _params(name, value)
        return settings


def parse_effects(spec: str) -> EffectSettings:
    """Parse a spec string (see the module docstring) into EffectSettings."""
    settings = EffectSettings()
    spec = (spec or "").strip()
    if spec.lower() in ("", "none", "off"):
        return settings
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip().lower()
        _check_name(name)
        if name in settings.effects:
            raise EffectSpecError(f"effect {name!r} given twice")
        if not value.strip():
            settings.effects[name] = _params(name, DEFAULT_VALUES[name])
            continue
        fields = [f.strip() for f in value.split(":")]
        settings.effects[name] = _params(name, fields[0] if name in STRENGTH_EFFECTS and len(fields) == 1
                                         else tuple(fields), given=value)
    return settings


def _check_name(name: str) -> None:
    if name not in EFFECT_NAMES:
        raise EffectSpecError(f"unknown effect {name!r}; allowed: {', '.join(EFFECT_NAMES)}")


def _params(name: str, value, given=None) -> EffectParams:
    """Validate one effect's value: a strength, or (colour, strength[, finish])."""
    given = value if given is None else given
    if name in STRENGTH_EFFECTS:
        if isinstance(value, (tuple, list)):
            if len(value) != 1:
                raise EffectSpecError(f"bad value {given!r} for {name}: use {_USAGE[name]}, strength 0..1")
            value = value[0]
        return EffectParams(_strength(name, value))
    if isinstance(value, str):
        value = (value,)  # a colour alone: the default strength
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
        raise EffectSpecError(f"bad value {given!r} for {name}: use {_USAGE[name]}")
    if len(value) == 3 and name != "lipstick":
        raise EffectSpecError(f"bad value {given!r} for {name}: only lipstick takes a finish; use {_USAGE[name]}")
    try:
        colour = parse_colour(value[0])
    except ValueError:
        close = closest_colour_name(value[0])
        hint = f" (did you mean {close!r}?)" if close else ""
        raise EffectSpecError(f"bad colour {value[0]!r} for {name}{hint}: use a CSS colour name or #rrggbb, "
                              f"e.g. {_EXAMPLE_COLOURS[name]} or {DEFAULT_VALUES[name][0]}") from None
    strength = _strength(name, value[1]) if len(value) > 1 else DEFAULT_VALUES[name][1]
    finish = None
    if name == "lipstick":
        finish = str(value[2]).strip().lower() if len(value) > 2 else DEFAULT_VALUES["lipstick"][2]
        if finish not in FINISHES:
            raise EffectSpecError(f"bad finish {value[2]!r} for lipstick: use matte or gloss")
    return EffectParams(strength, colour, finish)


def _strength(name: str, value) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        s = float("nan")
    if not 0.0 <= s <= 1.0:  # also rejects NaN
        raise EffectSpecError(f"bad strength {value!r} for {name}: use a number from 0 to 1")
    return s

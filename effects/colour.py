"""Colours: parsing, RGB <-> CIE Lab (float32, OpenCV's scale: L 0..100, a/b about -128..127),
and the one recolouring step that every colour effect shares.

Why Lab: L carries the shading and texture, a/b the colour. Moving a/b and the *local mean*
of L toward a target, while the local detail L - blur(L) rides on top, changes the colour
and keeps lip lines, hair strands and highlights: no flat paint.
"""
import difflib
import re

import cv2
import numpy as np
from PIL import ImageColor

from core import channels

SHADING_GAMMA = 0.6   # how much of a region's own light/dark structure a recolour keeps (1: all)

_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
_FUNC = re.compile(r"^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+\s*)?\)$")


def parse_colour(value) -> tuple:
    """'#b0103a', 'b0103a', '#b13', a CSS colour name ('crimson'), 'rgb(176, 16, 58)', 'rgba(...)'
    (Gradio's colour picker), 'hsl(...)', or an (r, g, b) sequence of 0..255 -> (r, g, b) ints.
    ValueError (one line, naming the bad value) otherwise."""
    if isinstance(value, (tuple, list, np.ndarray)) and len(value) == 3:
        rgb = tuple(int(round(float(v))) for v in value)
    elif isinstance(value, str) and _HEX.match(value.strip()):
        h = _HEX.match(value.strip()).group(1)
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        rgb = tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
    elif isinstance(value, str) and _FUNC.match(value.strip().lower()):
        rgb = tuple(int(round(float(v))) for v in _FUNC.match(value.strip().lower()).groups())
    elif isinstance(value, str) and value.strip():
        try:  # the 148 CSS names, hsl()/hsv() (Pillow's ImageColor)
            rgb = ImageColor.getrgb(value.strip())[:3]
        except ValueError:
            close = closest_colour_name(value)
            raise ValueError(f"not a colour: {value!r}" + (f" (did you mean {close!r}?)" if close else "")) from None
    else:
        raise ValueError(f"not a colour: {value!r}")
    if not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"colour out of range: {value!r}")
    return rgb


def closest_colour_name(value: str) -> str | None:
    """The CSS colour name nearest in spelling to a misspelt one ('crimsom' -> 'crimson'), or None."""
    close = difflib.get_close_matches(str(value).strip().lower(), ImageColor.colormap, n=1)
    return close[0] if close else None


def format_colour(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (h, w, 3) -> float32 Lab (h, w, 3)."""
    scaled = rgb.astype(np.float32)
    scaled *= 1.0 / 255.0      # in place: one face-sized temporary fewer
    return cv2.cvtColor(scaled, cv2.COLOR_RGB2LAB)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab (h, w, 3) -> uint8 RGB, out-of-gamut values clipped."""
    rgb = cv2.max(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0.0)
    return cv2.convertScaleAbs(rgb, alpha=255.0)  # x255, rounded and saturated in one pass


def colour_lab(rgb) -> np.ndarray:
    """One (r, g, b) colour -> its Lab as a float32 (3,) array."""
    return rgb_to_lab(np.array([[rgb]], np.uint8))[0, 0]


def gaussian(image: np.ndarray, sigma: float, border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """Gaussian blur; a wide one runs on a 2x or 4x smaller image (its result is smooth anyway),
    so the cost does not grow with the face's size."""
    sigma = max(float(sigma), 0.3)
    factor = 1 if sigma < 3 else 2 if sigma < 8 else 4
    h, w = image.shape[:2]
    if factor == 1 or min(h, w) < 4 * factor:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=border)
    small = cv2.resize(image, ((w + factor - 1) // factor, (h + factor - 1) // factor), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=border)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian(image, sigma)


def clip(x, lo: float, hi: float, out: np.ndarray | None = None):
    """np.clip, several times faster on float32 arrays with scalar bounds (numpy 1.26); into
    `out` (x itself: in place) when given."""
    return np.minimum(np.maximum(x, lo, out=out), hi, out=out)


def recolour(lab: np.ndarray, weight: np.ndarray, target: np.ndarray, l_pull: float, sigma: float,
             chroma: float = 1.0, max_gain: float = 2.5, min_gain: float = 0.5) -> None:
    """Move a Lab region (h, w, 3) toward `target` (Lab), in place, by `weight` (h, w) in 0..1.

    The target is the colour the product has on this region's *average* lightness; the
    region's own shading (local mean blur(L, sigma) over the weighted mean, compressed by a
    gamma) is kept: lit parts of the lips or hair stay lighter, shadowed parts darker.
    L: the local mean moves toward the shaded target's L by `l_pull`; the detail L - blur(L)
    rides on top, scaled by new mean / old mean (clipped to [min_gain, max_gain]) so the
    relative contrast of strands and lip lines survives when dark hair is lifted.
    a/b: the target's a/b times the pixel's relative shading (in Lab, a/b scale with L when
    only the light's intensity changes), mixed with the original a/b by `chroma`
    (1: the target's hue and chroma, below 1: a translucent tint).
    """
    w = weight.astype(np.float32, copy=False)
    total = float(w.sum())
    if total < 1e-3:
        return
    # on contiguous planes, in place where possible: fewer region-sized temporaries (a fresh
    # one costs page faults as well as its arithmetic)
    L, A, B = channels.split(lab)
    base = blur(L, sigma)
    ref = max(float(np.vdot(base, w)) / total, 2.0)
    shading = cv2.pow(clip(base * (1.0 / ref), 0.3, 2.0), SHADING_GAMMA)  # cv2.pow: 5x numpy's **
    new_base = cv2.addWeighted(base, 1.0 - l_pull, shading, l_pull * float(target[0]), 0.0)
    gain = cv2.divide(new_base + 2.0, base + 2.0)
    clip(gain, min_gain, max_gain, out=gain)
    new_l = cv2.subtract(L, base) * gain + new_base
    clip(new_l, 0.0, 100.0, out=new_l)
    shade = new_l * (1.0 / max(float(target[0]), 5.0))
    clip(shade, 0.2, 1.3, out=shade)
    L += w * (new_l - L)
    wc = w * np.float32(chroma)
    for plane, t in ((A, target[1]), (B, target[2])):
        plane += wc * (shade * float(t) - plane)
    cv2.merge((L, A, B), dst=lab)   # lab (a view with strided rows) is written in place

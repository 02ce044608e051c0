"""The learned whole-head hair rule: per pixel of the aligned crop, the share of what the parser
gives to hair, skin or background that becomes hair (models.perception.hair.fuse_learned).

A small MLP (two hidden layers) reads, per pixel, the hair network's probability h, the parser's
hair and skin shares q and s, closeness to the face's skin colour, the person mask, where the
pixel lies (rows above the brows and below the chin, distance from the crop's middle, height), and
the same maps blurred at 4, 12 and 32 crop pixels: whether the neighbourhood is hair, face or
backdrop. The context is what a per-pixel logistic regression (the rule before) could not see:
on LFW's validation people, whole image, hair F1 0.830 -> 0.849 for RNN-G (README, Hair). It runs
on a half-size crop (128x128: the share is smooth; measured no worse than at 256) and the share is
scaled back up: about 1.6 ms a face on one core (the whole fusion 1.9 ms, against 0.6 before).

Fitted on LFW's training people only by tools/fit_hair_fusion.py; the weights, one set per tier,
are in checkpoints/hair_fusion.json. numpy only at run time (the landmark tier loads no torch).
"""
import json
import threading
from pathlib import Path

import cv2
import numpy as np

from core import align
from core.errors import InputError

FUSION_FILE = Path(__file__).resolve().parents[2] / "checkpoints" / "hair_fusion.json"
RES = 128               # side of the crop the features and the MLP work at
SIGMAS = (4, 12, 32)    # context blurs, in pixels of the 256 aligned crop
CONTEXT_SIDE = 64       # the blurs are taken on a copy this small (cheap; they are smooth)
EYE = (align.TEMPLATE[1, 0] - align.TEMPLATE[0, 0]) * align.CROP_SIZE   # eye distance in the 256 crop
INPUTS = ("h", "q", "s", "skin", "person", "crown", "chin", "x", "y",
          *(f"{name}~{sigma}" for name in ("h", "q", "s", "skin") for sigma in SIGMAS), "person~12")


class FusionError(InputError):
    """A missing or unreadable hair fusion file: one line for the user."""


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), p clipped to 2%..98% (a new array)."""
    x = np.clip(np.asarray(p, np.float32), np.float32(0.02), np.float32(0.98))
    np.divide(x, np.float32(1) - x, out=x)
    return np.log(x, out=x)


_GRIDS = {}


def _position(size: int):
    """(crown, chin, x, y) planes of a size x size crop: the rows above the brows and below the
    chin (0/1), distance from the middle column and height, both -1..1."""
    if size not in _GRIDS:
        v = ((np.arange(size) + 0.5) * align.CROP_SIZE / size - align.TEMPLATE[0, 1] * align.CROP_SIZE) / EYE
        ax = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1)
        rows = lambda a: np.broadcast_to(a.astype(np.float32)[:, None], (size, size))
        _GRIDS[size] = (rows(v < -0.35), rows(v > 2.0), np.broadcast_to(np.abs(ax)[None], (size, size)), rows(ax))
    return _GRIDS[size]


def _context(p: np.ndarray, sigmas=SIGMAS) -> list:
    """p blurred at each sigma (256-crop pixels) as log-odds, at p's size."""
    size = p.shape[0]
    small = cv2.resize(p, (CONTEXT_SIDE, CONTEXT_SIDE), interpolation=cv2.INTER_AREA)
    scale = CONTEXT_SIDE / align.CROP_SIZE
    return [logit(cv2.resize(cv2.GaussianBlur(small, (0, 0), s * scale, borderType=cv2.BORDER_REPLICATE),
                             (size, size), interpolation=cv2.INTER_LINEAR)) for s in sigmas]


def shrink(plane: np.ndarray, res: int = RES) -> np.ndarray:
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    return plane if plane.shape[0] == res else cv2.resize(plane, (res, res), interpolation=cv2.INTER_AREA)


def features(hair, q, s, skin_like, person=None, res: int = RES, out: np.ndarray | None = None) -> np.ndarray:
    """(len(INPUTS), res, res) float32: the MLP's inputs for one crop, from (S, S) planes: the
    hair network's probability, the parser's hair and skin shares (of its hair + skin +
    background), skin_coloured, the person mask (None: 1 everywhere). out: an array to fill."""
    hair, q, s, skin_like = (shrink(p, res) for p in (hair, q, s, skin_like))
    person = np.ones((res, res), np.float32) if person is None else shrink(person, res)
    crown, chin, x, y = _position(res)
    planes = [logit(hair), logit(q), logit(s), skin_like, person, crown, chin, x, y]
    for p in (hair, q, s, skin_like):
        planes += _context(p)
    planes += _context(person, (12,))
    return np.stack(planes, out=out)


class Fusion:
    """The fitted MLP of one tier: share() is the hair share per pixel. Its input normalisation
    is folded into the first layer. Its working arrays are kept per thread: fresh ones each call
    (a few MB) cost more in page faults than the arithmetic (2.1 against 0.8 ms)."""

    def __init__(self, params: dict):
        self.params = params
        self._work = threading.local()
        sd = np.asarray(params["sd"], np.float32)
        mu = np.asarray(params["mu"], np.float32)
        w1 = np.asarray(params["w1"], np.float32) / sd          # (hidden, inputs)
        self.w1, self.b1 = w1, np.asarray(params["b1"], np.float32) - w1 @ mu
        self.w2, self.b2 = np.asarray(params["w2"], np.float32), np.asarray(params["b2"], np.float32)
        self.w3, self.b3 = np.asarray(params["w3"], np.float32), np.asarray(params["b3"], np.float32)

    def _buffer(self, name: str, shape: tuple) -> np.ndarray:
        buf = getattr(self._work, name, None)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, np.float32)
            setattr(self._work, name, buf)
        return buf

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(inputs, N) features -> (N,) hair log-odds."""
        n = x.shape[1]
        h = np.matmul(self.w1, x, out=self._buffer("h", (len(self.b1), n)))
        h += self.b1[:, None]
        np.maximum(h, 0, out=h)
        h2 = np.matmul(self.w2, h, out=self._buffer("h2", (len(self.b2), n)))
        h2 += self.b2[:, None]
        np.maximum(h2, 0, out=h2)
        return (self.w3 @ h2)[0] + self.b3[0]

    def share(self, hair, q, s, skin_like, person=None) -> np.ndarray:
        """(S, S) hair share in 0..1 for one crop's (S, S) planes (see features)."""
        size = hair.shape[0]
        x = features(hair, q, s, skin_like, person, out=self._buffer("x", (len(INPUTS), RES, RES)))
        z = self.logits(x.reshape(len(INPUTS), -1)).reshape(x.shape[1:])
        if size != RES:
            z = cv2.resize(z, (size, size), interpolation=cv2.INTER_LINEAR)
        return 1 / (1 + np.exp(-z))


SHAPES = {"mu": ("inputs",), "sd": ("inputs",), "w1": ("hidden", "inputs"), "b1": ("hidden",),
          "w2": ("hidden", "hidden"), "b2": ("hidden",), "w3": (1, "hidden"), "b3": (1,)}


def load_fusion(tier: str | None, path: Path | None = None) -> Fusion | None:
    """The fusion fitted for a tier, or None when the file has none for it (the "mix" rule).
    FusionError (one line) for a missing, unreadable or malformed file."""
    path = Path(path or FUSION_FILE)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FusionError(f"hair fusion file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise FusionError(f"cannot read hair fusion file {path}: {exc.__class__.__name__}") from None
    tiers = data.get("tiers") if isinstance(data, dict) else None
    if not isinstance(tiers, dict):
        raise FusionError(f"not a hair fusion file (no 'tiers'): {path}")
    params = tiers.get(tier)
    if params is None:
        return None
    if not valid_weights(params):
        raise FusionError(f"not a hair fusion file (bad weights for {tier}; refit with "
                          f"python -m tools.fit_hair_fusion --model {tier}): {path}")
    return Fusion(params)


def valid_weights(params) -> bool:
    """Whether `params` are weights this code can run: the same inputs, arrays of matching shapes."""
    if not isinstance(params, dict) or tuple(params.get("inputs", ())) != INPUTS:
        return False
    try:
        arrays = {k: np.asarray(params[k], np.float32) for k in SHAPES}
    except (KeyError, TypeError, ValueError):
        return False
    dims = {"inputs": len(INPUTS), "hidden": arrays["b1"].shape[0] if arrays["b1"].ndim == 1 else -1}
    return all(a.shape == tuple(dims.get(d, d) for d in SHAPES[k]) and np.isfinite(a).all()
               for k, a in arrays.items())

"""Temporal smoothing, per face id: One-Euro filtered landmarks (so the aligned crop is
steady) and confidence/motion-adaptive blending of the per-class probabilities in the
aligned crop (so head motion is already taken out)."""
import math

import numpy as np

from models import align
from models import landmark_parser as lp
from stream.types import Face


class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012) over an array of values: smooths jitter at
    low speed and follows fast motion with little lag (cutoff rises with speed)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = self.t = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None or x.shape != self.x.shape:
            self.x, self.dx, self.t = x, np.zeros_like(x), t
            return x.astype(np.float32)
        dt = max(t - self.t, 1e-3)
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff * dt))
        self.x = a * x + (1 - a) * self.x
        self.t = t
        return self.x.astype(np.float32)


class LandmarkSmoother:
    """One-Euro filters per face id over its points; recomputes the alignment matrix.

    The filter's speeds are in pixels per second, so beta is scaled by the face size (eye
    distance) to behave the same for near and far faces."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.1):
        self.min_cutoff, self.beta = min_cutoff, beta
        self._filters: dict[int, tuple] = {}

    def __call__(self, faces: list[Face], t: float) -> list[Face]:
        seen = set()
        for f in faces:
            seen.add(f.id)
            scale = float(np.linalg.norm(f.five[1] - f.five[0])) + 1e-3
            kind = "mesh" if f.mesh is not None else "five"
            if f.id not in self._filters or self._filters[f.id][0] != kind:
                self._filters[f.id] = (kind, OneEuroFilter(self.min_cutoff, self.beta / scale * 60))
            flt = self._filters[f.id][1]
            if f.mesh is not None:
                f.mesh = flt(f.mesh, t)
                f.five = align.five_from_mesh(f.mesh)
            else:
                f.five = flt(f.five, t)
            f.matrix = align.alignment_matrix(f.five)
        for fid in set(self._filters) - seen:
            del self._filters[fid]
        return faces


class ProbabilitySmoother:
    """Exponential blending of crop probabilities per face id, adaptive per pixel:

        p = a * p_new + (1 - a) * p_prev,  a = clip(a_min + gain * |p_new - p_prev|_max, a_min, 1)

    Small disagreements (flicker on a steady face) are averaged away; large ones (a real
    change: the mouth opens, the head turns) pass almost at once, so smoothing cannot win by
    freezing. `motion` (mean landmark displacement in crop pixels per frame) raises a too.
    """

    def __init__(self, a_min: float = 0.2, gain: float = 0.3, motion_gain: float = 0.2):
        self.a_min, self.gain, self.motion_gain = a_min, gain, motion_gain
        self._state: dict[int, tuple] = {}   # id -> (probs, crop points)

    def __call__(self, ids: list[int], probs: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
        out = np.empty_like(probs)
        for i, fid in enumerate(ids):
            prev = self._state.get(fid)
            if prev is None or prev[0].shape != probs[i].shape:
                out[i] = probs[i]
            else:
                motion = _motion(points[i], prev[1])
                diff = np.abs(probs[i] - prev[0]).max(0, keepdims=True)
                a = np.clip(self.a_min + self.motion_gain * motion + self.gain * diff, self.a_min, 1.0)
                out[i] = a * probs[i] + (1 - a) * prev[0]
            self._state[fid] = (out[i], points[i])
        for fid in set(self._state) - set(ids):
            del self._state[fid]
        return out


# parts whose points move together when the expression changes
MESH_GROUPS = [list(g) for g in (lp.LIPS_OUTER_UPPER, lp.LIPS_OUTER_LOWER, lp.LIPS_INNER_UPPER,
                                 lp.LIPS_INNER_LOWER, lp.LEFT_EYE_UPPER, lp.LEFT_EYE_LOWER, lp.RIGHT_EYE_UPPER,
                                 lp.RIGHT_EYE_LOWER, lp.LEFT_BROW_PTS, lp.RIGHT_BROW_PTS, lp.FACE_OVAL)]


def _motion(points: np.ndarray, prev: np.ndarray) -> float:
    """Crop pixels per frame of real movement: for a mesh, the largest mean displacement of a
    part's points (coherent motion; independent landmark jitter averages out in the mean)."""
    if points.shape != prev.shape:
        return 10.0
    d = points - prev
    if len(d) >= 468:
        return float(max(np.linalg.norm(d[g].mean(0)) for g in MESH_GROUPS))
    return float(np.linalg.norm(d, axis=-1).mean())

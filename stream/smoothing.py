"""Temporal smoothing, per face id: One-Euro filtered landmarks (so the aligned crop is
steady) and motion-compensated, confidence-adaptive blending of the per-class probabilities
in the aligned crop."""
import math

import cv2
import numpy as np

from core import align, channels
from core.regions import bounds_of_any
from models.perception import crop_motion
from core.types import Face


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
    """One-Euro filters per face id over its five alignment points; recomputes the alignment
    matrix. The mesh is left as measured: parts drawn from a smoothed mesh would trail the
    image they are drawn on (the probability smoother steadies them instead).

    The filter's speeds are in pixels per second, so beta is scaled by the face size (eye
    distance) to behave the same for near and far faces."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5):
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
            f.five = flt(f.five, t)
            f.matrix = align.alignment_matrix(f.five)
        for fid in set(self._filters) - seen:
            del self._filters[fid]
        return faces


class ProbabilitySmoother:
    """Motion-compensated exponential blending of crop probabilities per face id:

        q = previous output moved along the optical flow between the two crops
        p = a * p_new + (1 - a) * q,  a = clip(a_min + gain * |p_new - q|_max, a_min, 1)

    Moving the memory with the face first means strong averaging adds no lag when the head
    turns or the mouth moves; per pixel, small disagreements (flicker) are averaged away and
    large ones (what the flow cannot explain: the mouth opens onto teeth) pass within a frame or
    two, so smoothing cannot win by freezing. a_min and gain were picked on four talking-head
    clips (benchmarks/flicker.py): (0.1, 0.3) halves motion-compensated flicker against the
    unsmoothed parse and lets a full label flip through in 2 frames.

    A change the flow cannot explain at all resets the memory: when the previous crop moved
    along the flow still differs from the new crop by more than `cut` grey levels on average (a
    scene cut, another face under the same id; on the held-out talking-head clips the most was
    15, between two different faces 67), the new parse shows as it is instead of blending with
    another face's labels for two frames.

    Parts read alone (lipstick, teeth, brows: at most SPARSE_PLANES planes) are smoothed only in
    a box around where they or the memory have any probability (over SUPPORT), padded by PAD crop
    pixels, more than a part moves in the aligned crop from one frame to the next: the optical
    flow, the cut test and the blend run on that box (lipstick on the astronaut crop: 2.2 -> 0.8
    ms a face), and outside it the planes are the new parse's, under SUPPORT.
    """

    SPARSE_PLANES = 4
    SUPPORT = 1e-3
    PAD = 16

    def __init__(self, a_min: float = 0.1, gain: float = 0.3, cut: float = 30.0):
        self.a_min, self.gain, self.cut = a_min, gain, cut
        self._flow = crop_motion.CropFlow()
        # id -> (probs, gray crop, (planes, their HWC stack), the planes' support box or None: all)
        self._state: dict[int, tuple] = {}

    def __call__(self, ids: list[int], probs, crops, classes=None, inplace: bool = False):
        """probs (N, C, S, S), or N arrays (C, S, S); crops (N, S, S, 3) uint8 RGB: the aligned
        crops parsed. classes: the only planes smoothed (the others pass as parsed): those someone
        reads. inplace: blend into `probs` itself (the pipeline's fresh parse: no 3 MB copy a face)
        and return it; otherwise a smoothed copy."""
        out = probs if inplace else np.array(probs, copy=True)
        if len(ids) == 0:
            self._state.clear()
            return out
        planes = tuple(range(probs[0].shape[0])) if classes is None else tuple(sorted(classes))
        sparse = 0 < len(planes) <= self.SPARSE_PLANES
        for i, fid in enumerate(ids):
            g = crop_motion.gray(crops[i])
            prev = self._state.get(fid)
            stack, support = None, None
            if prev is not None and prev[0].shape == probs[i].shape and planes:
                box = self._box(probs[i], planes, prev[3]) if sparse else None
                ys, xs = box if box is not None else (slice(None), slice(None))
                sample = self._flow.sample_map(np.ascontiguousarray(g[ys, xs]), np.ascontiguousarray(prev[1][ys, xs]))
                if box is not None:   # box coordinates -> the whole previous crop's
                    sample += np.array([xs.start, ys.start], np.float32)
                map1, map2 = cv2.convertMaps(sample, None, cv2.CV_16SC2)
                moved = cv2.remap(prev[1], map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                if cv2.absdiff(g[ys, xs], moved).mean() <= self.cut:   # else a cut: out[i] stays the new parse
                    last = prev[2][1] if prev[2][0] == planes else stack_planes(prev[0], planes)
                    stack = _pull_and_blend(probs[i][:, ys, xs], last, (map1, map2), self.a_min, self.gain,
                                            out[i][:, ys, xs], planes)
                    if box is not None:
                        support = _support([out[i][c, ys, xs] for c in planes], self.SUPPORT, box)
                        stack = stack_planes(out[i], planes)
            if stack is None and planes:
                stack = stack_planes(out[i], planes)
                support = _support([out[i][c] for c in planes], self.SUPPORT) if sparse else None
            self._state[fid] = (out[i], g, (planes, stack), support)
        for fid in set(self._state) - set(ids):
            del self._state[fid]
        return out

    def _box(self, p: np.ndarray, planes, memory):
        """(ys, xs) of the crop where the new parse's `planes` or the memory (its support box)
        have probability, padded; None (the whole crop) when that is most of it."""
        size = p.shape[-1]
        new = _support([p[c] for c in planes], self.SUPPORT)
        boxes = [b for b in (new, memory) if b is not None]
        if not boxes:
            return None
        y0, x0 = (max(min(b[k].start for b in boxes) - self.PAD, 0) for k in (0, 1))
        y1, x1 = (min(max(b[k].stop for b in boxes) + self.PAD, size) for k in (0, 1))
        if (y1 - y0) * (x1 - x0) > size * size // 2:
            return None
        return slice(y0, y1), slice(x0, x1)


def _support(planes: list, threshold: float, box=None):
    """Box (ys, xs) where any of the (H, W) planes exceeds `threshold`, in the crop's coordinates
    (`box`: where the planes lie in the crop); None when nowhere."""
    found = bounds_of_any(planes, threshold)
    if found is None or box is None:
        return found
    (ys, xs), (oy, ox) = found, (box[0].start, box[1].start)
    return slice(ys.start + oy, ys.stop + oy), slice(xs.start + ox, xs.stop + ox)


def stack_planes(probs: np.ndarray, planes) -> np.ndarray:
    """The planes of (C, H, W) probs as one (H, W, len(planes)) array: OpenCV remaps all its
    channels in one pass, 3x faster than plane by plane (0.65 against 1.85 ms for 11 x 256 x 256)."""
    return cv2.merge([probs[c] for c in planes])


def _pull_and_blend(p, last, maps, a_min, gain, out, planes) -> np.ndarray:
    """out[c] = q + a * (p - q) for c in `planes`, q = `last` (the previous output's `planes`,
    stack_planes) sampled bilinearly at the fixed-point `maps` (cv2.convertMaps of an (H, W, 2)
    sample map; border: replicate), a = min(1, a_min + gain * max_c |p - q|) over those planes
    (a class and its complement differ by the same amount). Returns out's planes stacked, the
    next frame's `last`. OpenCV, the map in fixed point (converted once, also for the cut test):
    about as fast as the numba kernel it replaced, without loading numba and its compiler into
    the landmark tier's process (120 MB). OpenCV weighs the four neighbours in 1/32 pixel steps;
    the exact kernel differed from this by 1e-4 on average."""
    map1, map2 = maps
    pulled = channels.split(cv2.remap(last, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    a = None
    for c, q in zip(planes, pulled):
        diff = cv2.absdiff(p[c], q)
        a = diff if a is None else cv2.max(a, diff, dst=a)
    a = np.minimum(a * gain + a_min, 1.0, out=a)
    for c, q in zip(planes, pulled):   # `out` may be `p` itself: p[c] is read before out[c] is written
        q += a * (p[c] - q)
        out[c] = q
    return cv2.merge(pulled)

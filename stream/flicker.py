"""Flicker: how much the labels of a face change between consecutive frames, measured in
the aligned crop (so head motion is taken out), and the lag smoothing adds after a change."""
import numpy as np

from core.classes import BACKGROUND, CLASS_GROUPS
from models.perception import crop_motion


class FlickerMeter:
    """Accumulates, per face id, the share of face pixels whose label changes between
    consecutive frames: overall and per class group (a pixel counts for a group when the
    group holds it in either frame).

    `motion_compensated`: compare each label map with the previous one moved along the optical
    flow between the two crops, so that what the five-point alignment leaves of head turns and
    expressions (real motion, not flicker) is not counted; `update` then needs the crops.
    `flow`: "dis" (the smoother's own flow) or "farneback" (an independent one: a smoother
    cannot look steady merely by agreeing with the meter's flow)."""

    def __init__(self, motion_compensated: bool = False, flow: str = "dis"):
        self._flow = crop_motion.CropFlow(flow) if motion_compensated else None
        self._prev: dict[int, tuple] = {}   # id -> (label, gray crop)
        self.changed = {"all": 0, **{g: 0 for g in CLASS_GROUPS}}
        self.total = {"all": 0, **{g: 0 for g in CLASS_GROUPS}}
        self.pairs = 0

    def update(self, face_id: int, label: np.ndarray, crop: np.ndarray | None = None):
        g = crop_motion.gray(crop) if self._flow is not None else None
        prev = self._prev.get(face_id)
        self._prev[face_id] = (label, g)
        if prev is None or prev[0].shape != label.shape:
            return
        prev = prev[0] if g is None else crop_motion.pull_labels(prev[0], self._flow.sample_map(g, prev[1]))
        self.pairs += 1
        changed = prev != label
        face = (prev != BACKGROUND) | (label != BACKGROUND)
        self.changed["all"] += int((changed & face).sum())
        self.total["all"] += int(face.sum())
        for name, classes in CLASS_GROUPS.items():
            a, b = np.isin(prev, classes), np.isin(label, classes)
            self.changed[name] += int((a != b).sum())
            self.total[name] += int((a | b).sum())

    def forget(self, face_id: int):
        self._prev.pop(face_id, None)

    def result(self) -> dict:
        """Share (0..1) of face pixels changing label per frame, overall and per group."""
        return {k: (self.changed[k] / self.total[k] if self.total[k] else 0.0) for k in self.total}


def flow_floor(crops, label: np.ndarray, flow: str = "dis", meter_flow: str = "farneback") -> float:
    """What a motion-compensated meter with `meter_flow` reads for labels perfectly steady along
    `flow` (the smoother's): `label` (of the first crop) moved from crop to crop along `flow`.
    Where the two flows disagree by a pixel at a part's edge, a label moved along one is a
    change to the other: no smoother that moves its memory along `flow` reads below this."""
    meter, mover = FlickerMeter(True, meter_flow), crop_motion.CropFlow(flow)
    prev = None
    for crop in crops:
        g = crop_motion.gray(crop)
        if prev is not None:
            label = crop_motion.pull_labels(label, mover.sample_map(g, prev))
        prev = g
        meter.update(0, label, crop)
    return meter.result()["all"]


def step_lag(smoother, probs_a: np.ndarray, probs_b: np.ndarray, crop_a, crop_b,
             agree: float = 0.95, max_frames: int = 30) -> int:
    """Frames until the smoothed labels reach `agree` agreement (on face pixels) with a new
    parse after an abrupt change from probs_a (of crop_a) to probs_b (of crop_b), e.g. two real
    frames of a fast head turn. 0 means the change shows in the very frame it happens."""
    target = probs_b.argmax(0)
    face = target != BACKGROUND
    for _ in range(10):
        smoother([0], probs_a[None], crop_a[None])
    for k in range(max_frames):
        out = smoother([0], probs_b[None], crop_b[None])[0].argmax(0)
        if (out[face] == target[face]).mean() >= agree:
            return k
    return max_frames

"""RNN-G on the CPU without torch: ONNX Runtime for the learned parts, numba for the recurrence,
numpy for the glue.

The same computation as RNNGNet.forward (models.parsers.rnng), step by step:
    normalise the crop, resize it to 128 (bilinear with antialias)   numpy (rnng_geometry.resize)
    shallow CNN -> label representation X and gate logits            ONNX Runtime (cnn.onnx)
    four-direction gated recurrence with W, b                       numba (gated_scan.scan_numba)
    Deconv7                                                          ONNX Runtime (deconv7.onnx)
    softmax, upsampling to the input size                            numpy, OpenCV (cv2.resize)
    component crops (grid_sample's bilinear, zeros outside)          OpenCV (warpAffine)
    component nets, nose and mouth also on the mirrored crop         ONNX Runtime ({eye,nose,mouth}.onnx)
    paste over stage 1 (feathered, border padding)                  OpenCV + numpy (paste below)

On this 2-core CPU torch's per-operation overhead on these small tensors cost more than the
networks themselves (8.8 ms a face on torch, of which ONNX Runtime ran ~2 ms), and importing
torch took 1.3 s and ~300 MB at start-up. The files come from
`python -m tools.export_onnx rnng` and are used only when they carry the checkpoint's
SHA-256 (`load` gives None otherwise, and the registry builds the torch parser).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.parsers import onnx_runtime
from models.parsers.checkpoint import class_prior
from models.parsers.gated_scan import scan_numba
from models.parsers.parser import Parser
from models.parsers.rnng_geometry import (COMPONENTS, FEATHER, MEAN, MIRROR_AVERAGED, STD, crop_axes, face_frame,
                                          resize)


def load(checkpoint: Path) -> "RNNGOrtParser | None":
    """The CPU parser for `checkpoint` from the files exported beside it, or None when onnxruntime
    is missing or a file is missing or belongs to other weights."""
    config = onnx_runtime.read_config(checkpoint)
    if config is None:
        return None
    sha = config["checkpoint_sha256"]
    names = ["cnn", "deconv7"] + (sorted({c.net for c in COMPONENTS.values()}) if config["config"]["stage2"] else [])
    sessions = {name: onnx_runtime.session(onnx_runtime.folder(checkpoint) / f"{name}.onnx", sha) for name in names}
    if any(s is None for s in sessions.values()):
        return None
    return RNNGOrtParser(config, sessions)


# (x / 255 - MEAN) / STD for every uint8 value and channel: a lookup gives the same floats in one
# pass over the crop (0.08 against 0.43 ms a face)
NORMALISE = ((np.arange(256, dtype=np.float32)[:, None] / 255 - np.float32(MEAN)) / np.float32(STD)).reshape(1, 256, 3)


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(logits - logits.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


class RNNGOrtParser(Parser):
    name = "rnng"

    def __init__(self, config: dict, sessions: dict):
        self.config = config["config"]
        self.input_size = int(self.config["input_size"])
        self.stage1_size = int(self.config["stage1_size"])
        self.transition = np.asarray(config["transition"], np.float32)
        self.bias = np.asarray(config["bias"], np.float32)
        self.sessions = sessions
        self.use_stage2 = bool(self.config["stage2"])
        self.prior = class_prior(self.config)

    def run(self, name: str, x: np.ndarray):
        return self.sessions[name].run(None, {"x": np.ascontiguousarray(x, np.float32)})

    def parse(self, crops, five, mesh=None):
        size, s = crops.shape[1], self.input_size
        images = [cv2.LUT(crop, NORMALISE) for crop in crops]   # (S, S, 3) float32 each
        if s != size:
            images = [resize(image, s) for image in images]
        probs = self.stage1(images)
        if self.use_stage2:
            frames = [face_frame(np.asarray(f, np.float32) * (s / size), s) for f in five]
            self.compose(probs, images, frames)
        if s != size:
            probs = np.stack([resize(p.transpose(1, 2, 0), size, antialias=False).transpose(2, 0, 1) for p in probs])
        return np.ascontiguousarray(probs, np.float32)

    def stage1(self, images: list) -> np.ndarray:
        """Probabilities (N, 11, S, S) of stage 1 (Figure 1) from the normalised images."""
        small = [image if image.shape[0] == self.stage1_size else resize(image, self.stage1_size) for image in images]
        x, gate = self.run("cnn", np.stack(small).transpose(0, 3, 1, 2))
        gate = 1 / (1 + np.exp(-gate))
        h = scan_numba(x, gate, self.transition, self.bias)
        probs = softmax(self.run("deconv7", h)[0])   # at 128, then upsampled (bilinear keeps the sum at 1)
        size = images[0].shape[0]
        if probs.shape[-1] == size:
            return probs
        # plane by plane into one buffer: cv2's bilinear is torch's (align_corners=False) and
        # ~10x faster than ONNX Runtime's Resize here; a fresh buffer per plane cost 4x more
        out = np.empty(probs.shape[:2] + (size, size), np.float32)
        for plane, target in zip(probs.reshape(-1, *probs.shape[2:]), out.reshape(-1, size, size)):
            cv2.resize(plane, (size, size), dst=target, interpolation=cv2.INTER_LINEAR)
        return out

    def compose(self, probs: np.ndarray, images: list, frames: list) -> None:
        """Stage 2 (sec. 4) in place: each face's component crops through their nets (crops that
        share a net as one batch), pasted over its stage-1 probabilities."""
        axes = {name: [crop_axes(comp, frame) for frame in frames] for name, comp in COMPONENTS.items()}
        by_net: dict[str, list] = {}
        for name, comp in COMPONENTS.items():
            for image, ax in zip(images, axes[name]):
                by_net.setdefault(comp.net, []).append(sample_crop(image, ax, comp.size))
        comp_probs = {}
        for net, crops in by_net.items():
            batch = np.stack(crops).transpose(0, 3, 1, 2)
            if net in MIRROR_AVERAGED:
                direct, mirrored = np.split(self.run(net, np.concatenate([batch, batch[..., ::-1]]))[0], 2)
                logits = (direct + mirrored[..., ::-1]) / 2
            else:
                logits = self.run(net, batch)[0]
            comp_probs[net] = list(softmax(logits))
        for name, comp in COMPONENTS.items():   # in the torch path's order: later parts paste over earlier
            for i, ax in enumerate(axes[name]):
                paste(probs[i], comp_probs[comp.net].pop(0), ax, comp.classes)


def sample_crop(image: np.ndarray, axes: np.ndarray, size: tuple) -> np.ndarray:
    """A component's (h, w, 3) crop of a normalised image: F.affine_grid + grid_sample
    (align_corners=False, zeros outside) of the torch path, by cv2.warpAffine (which places its
    taps to 1/32 pixel: the probabilities differ by ~1e-3, the labels on ~1e-4 of the pixels)."""
    height, width = size
    centre, axis_s, axis_t = axes
    # crop pixel (j, i) -> s = (2j + 1) / w - 1, t = (2i + 1) / h - 1 -> centre + s axis_s + t axis_t
    matrix = np.stack([axis_s * 2 / width, axis_t * 2 / height,
                       centre + axis_s * (1 / width - 1) + axis_t * (1 / height - 1)], 1)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paste(probs: np.ndarray, comp_probs: np.ndarray, axes: np.ndarray, classes: tuple) -> None:
    """rnng.paste for one face, in place: probs (11, S, S), the component's probabilities
    ("other" + parts, (k, h, w)) placed by `axes` (rnng_geometry.crop_axes)."""
    height, width = probs.shape[1:]
    centre, axis_s, axis_t = axes.astype(np.float64)
    corners = centre + np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]) @ np.stack([axis_s, axis_t])
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return
    # box pixel (x, y) -> crop coordinates (s, t) in [-1, 1] -> crop pixel ((s + 1) w - 1) / 2
    (a, b), (c, d) = np.stack([axis_s, axis_t], 1)
    inverse = np.array([[d, -b], [-c, a]]) / (a * d - b * c)   # a 2x2 inverse (np.linalg wakes BLAS threads)
    to_st = np.concatenate([inverse, (inverse @ (np.array([x0, y0]) - centre))[:, None]], 1)
    k, ch, cw = comp_probs.shape
    to_crop = np.array([[cw / 2, 0, (cw - 1) / 2], [0, ch / 2, (ch - 1) / 2]]) @ np.vstack([to_st, (0, 0, 1)])
    q = cv2.warpAffine(np.ascontiguousarray(comp_probs.transpose(1, 2, 0)), to_crop, (x1 - x0, y1 - y0),
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    q = q.reshape(y1 - y0, x1 - x0, k).transpose(2, 0, 1)
    xs, ys = np.arange(x1 - x0, dtype=np.float32), np.arange(y1 - y0, dtype=np.float32)[:, None]
    s = to_st[0, 0] * xs + to_st[0, 1] * ys + to_st[0, 2]
    t = to_st[1, 0] * xs + to_st[1, 1] * ys + to_st[1, 2]
    window = (np.clip((1 - np.abs(s)) / FEATHER, 0, 1) * np.clip((1 - np.abs(t)) / FEATHER, 0, 1)).astype(np.float32)
    # rnng.paste's box + window (inside - box), by class: the parts move towards the component's
    # probabilities, the rest is scaled to share its "other" (fewer passes over the 11 planes)
    box = probs[:, y0:y1, x0:x1]
    parts = box[list(classes)]
    rest = box.sum(0) - parts.sum(0)
    box *= 1 + window * (q[0] / np.maximum(rest, 1e-6) - 1)
    box[list(classes)] = parts + window * (q[1:] - parts)

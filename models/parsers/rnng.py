"""RNN-G: a shallow CNN plus a spatially variant gated RNN (Liu et al., "Face Parsing via
Recurrent Propagation", BMVC 2017), the CPU real-time tier.

The tier takes the 256x256 aligned crop. Stage 1 (sec. 3, Figure 1) sees it resized to
128x128: a shallow CNN (three convolutions, two max-poolings, two deconvolutions, at most 32
channels). Its first deconvolution (Deconv6) gives a map at 64x64 that is split in two
halves: the label representation X and the gate G. The
gated linear RNN of eq. 3 (models.parsers.gated_scan) propagates X in four directions with a
node-wise max; a second deconvolution brings the result to 11 classes at 128x128. Two
heads serve only the training losses (sec. 3.3, models.training.recipes.rnng): X through its
own deconvolution (coarse) and the gate through a 1x1 convolution (boundaries).
|g| <= 1 by a sigmoid and ||W||_2 <= 1 (sec. 3.2): the forward pass divides W by
max(1, ||W||_2) and every training step projects the stored W the same way.

Stage 2 (sec. 4, Figure 2): small component networks (five convolutions, two max-poolings,
two deconvolutions) on crops of the full-resolution (256) face, as the paper crops "high
resolution" faces, placed by the five points: eye+brow 64x64 (one network for both
sides: the image-right crop is mirrored), nose 64x64, mouth 32x64 (height x width). Crop
boxes are in units of the face scale, derived from the part extents on FaceSynthetics train
plus the paper's 20% margin. Their probabilities are pasted back over stage 1 (the paper's
"composed" result), feathered at the crop border, over stage 1 upsampled to 256; stage 2 can
be switched off (`config["stage2"]` at build time, `model.use_stage2` at run time) for speed.

Departures from the paper, and why:
- Stage 1 predicts all 11 classes, not just skin/hair/background (the paper's "1-stage"
  model of Table 3 does the same), so the tier still works with stage 2 switched off.
- The RNN has 16 channels (the paper: 8 for 3 classes), since it carries 11 classes.
- BatchNorm after each convolution, and a per-channel gate (G has as many channels as X,
  as in Figure 1; the 1x1 convolution to one channel is only for the boundary loss): BN lets
  the net train from scratch in minutes on a CPU with few images.
- Training departures (class-balanced losses, both stages in one loss): see the recipe.
- Stage 1 at 128 is the paper's; the tier's input is the 256 crop so that stage 2 sees
  the parts at full resolution (input_size 128 also works: the crops are then upsampled from
  the 128 image; see checkpoints/rnng.md for what that cost in our runs).
- The recurrence starts from a zero state and W from the identity; ours.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.classes import NUM_CLASSES
from models.parsers.gated_scan import gated_scan
from models.parsers.rnng_geometry import (COMPONENT_NETS, COMPONENTS, FEATHER, MEAN, MIRROR_AVERAGED, STD,  # noqa: F401
                                          Component, template_five)
from models.parsers.network import TierNet


def conv_bn(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


# ------------------------------------------------------------------ stage 1: CNN + gated RNN

class GatedRNN(nn.Module):
    """Eq. 3 in four directions with node-wise max; W starts as the identity (propagate
    labels unchanged where the gate is open)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def transition(self) -> torch.Tensor:
        """W scaled to spectral norm <= 1 (sec. 3.2), differentiably."""
        norm = torch.linalg.matrix_norm(self.weight.float(), ord=2).to(self.weight.dtype)
        return self.weight / norm.clamp(min=1.0)

    @torch.no_grad()
    def constrain_(self):
        """Project the stored W back into the unit spectral-norm ball (after a step)."""
        self.weight.copy_(self.transition())

    def forward(self, x, gate, backend="auto"):
        if self.training or torch.is_grad_enabled():
            return gated_scan(x, gate, self.transition(), self.bias, backend)
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype)
        if getattr(self, "_cached_key", None) != key:  # inference: the SVD once, not per frame
            self._cached_w, self._cached_key = self.transition(), key
        return gated_scan(x, gate, self._cached_w, self.bias, backend)


class ShallowCNN(nn.Module):
    """Figure 1: Conv1 5x5x16 -> pool -> Conv 3x3x32 -> pool -> Conv 3x3x32 -> Deconv6 to
    2C channels at 1/2 scale, split into X (C) and G (C)."""

    def __init__(self, widths=(16, 32, 32), rnn_channels=16):
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            conv_bn(3, w1, 5), nn.MaxPool2d(2),
            conv_bn(w1, w2, 3), nn.MaxPool2d(2),
            conv_bn(w2, w3, 3))
        self.deconv6 = nn.ConvTranspose2d(w3, 2 * rnn_channels, 4, stride=2, padding=1)

    def forward(self, image):
        return self.deconv6(self.features(image)).chunk(2, 1)


# ------------------------------------------------------------------ stage 2: component nets

class ComponentNet(nn.Module):
    """Figure 2(b): five convolutions, two max-poolings, two deconvolutions."""

    def __init__(self, num_out: int, widths=(8, 16, 32)):
        super().__init__()
        w1, w2, w3 = widths
        self.body = nn.Sequential(
            conv_bn(3, w1, 5), nn.MaxPool2d(2),
            conv_bn(w1, w2, 3), conv_bn(w2, w2, 3), nn.MaxPool2d(2),
            conv_bn(w2, w3, 3), conv_bn(w3, w3, 3),
            nn.ConvTranspose2d(w3, w2, 4, stride=2, padding=1), nn.BatchNorm2d(w2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w2, num_out, 4, stride=2, padding=1))

    def forward(self, crop):
        return self.body(crop)


def face_frame(five: torch.Tensor, size: int):
    """Anchors, eye-line axis u, its normal v and face scale d from five points (N, 5, 2).
    d = max(eye distance, eye-to-mouth distance / 1.1), robust to yaw and pitch; unknown
    (NaN) or degenerate points fall back to the alignment template."""
    template = torch.as_tensor(template_five(size), dtype=five.dtype, device=five.device)
    five = torch.where(torch.isnan(five), template, five)
    # degenerate points (eyes closer than 2% of the crop) would give a singular crop: template
    bad = (five[:, 1] - five[:, 0]).norm(dim=1) < 0.02 * size
    five = torch.where(bad[:, None, None], template, five)
    mouth = (five[:, 3] + five[:, 4]) / 2
    eye_vec = five[:, 1] - five[:, 0]
    eye_dist = eye_vec.norm(dim=1).clamp(min=1e-3)
    u = eye_vec / eye_dist[:, None]
    v = torch.stack([-u[:, 1], u[:, 0]], 1)
    d = torch.maximum(eye_dist, (mouth - (five[:, 0] + five[:, 1]) / 2).norm(dim=1) / 1.1)
    anchors = {"left_eye": five[:, 0], "right_eye": five[:, 1], "nose": five[:, 2], "mouth": mouth}
    return anchors, u, v, d


def crop_theta(comp: Component, frame, size: int, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """affine_grid matrices (N, 2, 3): crop coords (s, t) in [-1, 1] -> input coords
    (align_corners=False; pixel centres at integers as in cv2). jitter (N, 4): offsets of
    the centre (a, b), log scale and angle, to mimic landmark noise in training."""
    anchors, u, v, d = frame
    a, b = comp.centre
    ha, hb = comp.half
    if jitter is not None:
        cos, sin = jitter[:, 3].cos()[:, None], jitter[:, 3].sin()[:, None]
        u, v = cos * u + sin * v, cos * v - sin * u
        d = d * jitter[:, 2].exp()
    us = -u if comp.mirror else u
    centre = anchors[comp.anchor] + d[:, None] * (a * us + b * v)
    if jitter is not None:
        centre = centre + d[:, None] * (jitter[:, :1] * us + jitter[:, 1:2] * v)
    axis_s = us * (ha * d)[:, None]
    axis_t = v * (hb * d)[:, None]
    theta = torch.stack([axis_s, axis_t, centre + 0.5], 2) * (2 / size)  # (N, 2, 3)
    theta[:, :, 2] -= 1
    return theta


def invert_theta(theta: torch.Tensor) -> torch.Tensor:
    a = theta[:, :, :2]
    inv = torch.linalg.inv(a)
    return torch.cat([inv, -(inv @ theta[:, :, 2:])], 2)


def paste(probs: torch.Tensor, comp_probs: torch.Tensor, theta: torch.Tensor, classes: tuple) -> torch.Tensor:
    """Compose a component's probabilities ("other" + parts) over the current 11-class map
    (sec. 4, "combined with the major ones"): inside the crop the parts take the component's
    probabilities and its "other" is shared among the remaining classes in the current
    proportions; a feathered window blends to the current map at the crop border. Only the
    box that the crops of the batch cover is touched."""
    n, _, height, width = probs.shape
    theta = theta.float()  # geometry in fp32 (linalg.inv has no fp16), pixels in probs' dtype
    inv = invert_theta(theta)
    # the crops' corners in pixels -> one integer box for the batch
    corners = torch.tensor([[-1.0, -1.0], [1, -1], [-1, 1], [1, 1]], dtype=theta.dtype, device=theta.device)
    px = ((corners @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2] + 1) * torch.tensor(
        [width, height], dtype=theta.dtype, device=theta.device) - 1) / 2
    lo = px.flatten(0, 1).amin(0).floor().int().tolist()
    hi = px.flatten(0, 1).amax(0).ceil().int().tolist()
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0] + 1, width), min(hi[1] + 1, height)
    if x1 <= x0 or y1 <= y0:
        return probs
    # box pixel centres (normalised, align_corners=False) -> crop coordinates (s, t)
    xs = (2 * torch.arange(x0, x1, dtype=theta.dtype, device=theta.device) + 1) / width - 1
    ys = (2 * torch.arange(y0, y1, dtype=theta.dtype, device=theta.device) + 1) / height - 1
    xy = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1)  # (h, w, 2)
    grid = (xy @ inv[:, None, :, :2].transpose(-1, -2) + inv[:, None, None, :, 2]).to(probs.dtype)  # (N, h, w, 2)
    window = ((1 - grid.abs()) / FEATHER).clamp(0, 1).prod(-1)[:, None]
    q = F.grid_sample(comp_probs, grid, mode="bilinear", padding_mode="border", align_corners=False)
    box = probs[:, :, y0:y1, x0:x1]
    part = torch.zeros(NUM_CLASSES, dtype=torch.bool, device=probs.device)
    part[list(classes)] = True
    rest = box * (~part)[None, :, None, None]
    inside = rest * (q[:, :1] / rest.sum(1, keepdim=True).clamp(min=1e-6))
    inside[:, list(classes)] = q[:, 1:]
    # in place at inference (a full-map copy per part costs more than the paste itself)
    out = probs.clone() if probs.requires_grad else probs
    out[:, :, y0:y1, x0:x1] = box + window * (inside - box)
    return out


# ------------------------------------------------------------------ the whole network


class RNNGNet(TierNet):
    defaults = {
        "input_size": 256,            # stage 2 crops the parts from the full crop (sec. 4)
        "stage1_size": 128,           # sec. 4: the first stage parses 128x128 faces
        "cnn_widths": [16, 32, 32],   # Figure 1: at most 32 channels
        "rnn_channels": 16,           # the paper's 8 carry 3 classes; 16 for 11 classes
        "stage2": True,               # sec. 4 component networks
        "component_widths": [8, 16, 32],
    }

    @classmethod
    def from_config(cls, config: dict) -> "RNNGNet":
        return cls({**cls.defaults, **config})

    def __init__(self, config: dict):
        super().__init__()
        c = config["rnn_channels"]
        self.input_size = int(config["input_size"])
        self.stage1_size = config["stage1_size"]
        self.cnn = ShallowCNN(tuple(config["cnn_widths"]), c)
        self.rnn = GatedRNN(c)
        self.deconv7 = nn.ConvTranspose2d(c, NUM_CLASSES, 4, stride=2, padding=1)   # RNN output -> labels
        self.coarse_head = nn.ConvTranspose2d(c, NUM_CLASSES, 4, stride=2, padding=1)  # X -> labels (loss only)
        self.gate_head = nn.Conv2d(c, 1, 1)  # G -> "not a boundary" logit (loss only)
        self.components = nn.ModuleDict()
        if config["stage2"]:
            for name, k in COMPONENT_NETS.items():
                self.components[name] = ComponentNet(k, tuple(config["component_widths"]))
        self.use_stage2 = bool(config["stage2"])
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, image):
        """Mean/std normalisation; channels-last, where CPU convolutions and max-pooling
        run several times faster than in NCHW."""
        image = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        return image.contiguous(memory_format=torch.channels_last)

    def stage1(self, image, backend="auto", heads=False) -> dict:
        """Figure 1 at stage1_size (128): logits there, the gate and, for the losses, the heads."""
        if image.shape[-1] != self.stage1_size:
            image = F.interpolate(image, size=(self.stage1_size,) * 2, mode="bilinear", align_corners=False,
                                  antialias=True)
        x, g_raw = self.cnn(self.normalise(image))
        gate = torch.sigmoid(g_raw)
        out = {"logits": self.deconv7(self.rnn(x, gate, backend)), "gate": gate}
        if heads:
            out["coarse_logits"] = self.coarse_head(x)
            out["boundary_logit"] = self.gate_head(gate)
        return out

    def crops(self, image, five, jitter=None) -> dict:
        """{component: (theta, component logits)} from the (normalised) image; crops that
        share a network (both eyes) go through it as one batch."""
        frame = face_frame(five.float(), image.shape[-1])
        by_net: dict[str, list] = {}
        for name, comp in COMPONENTS.items():
            theta = crop_theta(comp, frame, image.shape[-1], None if jitter is None else jitter[name])
            grid = F.affine_grid(theta, (image.shape[0], 3) + comp.size, align_corners=False).to(image.dtype)
            crop = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            by_net.setdefault(comp.net, []).append((name, theta, crop))
        out = {}
        for net, items in by_net.items():
            crops = torch.cat([c for _, _, c in items])
            mirror = net in MIRROR_AVERAGED and not self.training
            if mirror:
                crops = torch.cat([crops, crops.flip(-1)])
            logits = self.components[net](crops.contiguous(memory_format=torch.channels_last))
            if mirror:
                direct, mirrored = logits.chunk(2)
                logits = (direct + mirrored.flip(-1)) / 2
            out.update({name: (theta, lg) for (name, theta, _), lg in zip(items, logits.chunk(len(items)))})
        return out

    def compose(self, probs, comps) -> torch.Tensor:
        for name, (theta, comp_logits) in comps.items():
            probs = paste(probs, comp_logits.softmax(1), theta, COMPONENTS[name].classes)  # theta stays fp32
        return probs

    def forward(self, image, five=None, backend="auto") -> torch.Tensor:
        """Probabilities (N, 11, S, S): stage 1 (at 128, upsampled to S), composed with stage 2
        (crops from the S x S input) when on."""
        probs = self.stage1(image, backend)["logits"].softmax(1)
        if probs.shape[-1] != image.shape[-1]:  # bilinear keeps the sum at 1; softmax at 128 is cheaper
            probs = F.interpolate(probs, size=image.shape[-2:], mode="bilinear", align_corners=False)
        if not (self.use_stage2 and len(self.components) and five is not None):
            return probs
        return self.compose(probs, self.crops(self.normalise(image), five))

    def onnx_parts(self) -> dict:
        """{name: (module, example input)}: the learned parts the CPU path (models.parsers.rnng_ort)
        runs on ONNX Runtime: the shallow CNN, Deconv7 after the recurrence, the component nets."""
        s1 = self.stage1_size
        parts = {"cnn": (self.cnn, torch.zeros(1, 3, s1, s1)),
                 "deconv7": (self.deconv7, torch.zeros(1, self.rnn.bias.numel(), s1 // 2, s1 // 2))}
        for name, net in self.components.items():
            size = next(c.size for c in COMPONENTS.values() if c.net == name)
            parts[name] = (net, torch.zeros((1, 3) + tuple(size)))
        return parts

    def recurrence(self) -> dict:
        """What the CPU path needs beside the ONNX files: the transition W (spectral norm <= 1
        applied) and bias b of the gated RNN, as plain lists."""
        with torch.no_grad():
            return {"transition": self.rnn.transition().float().tolist(), "bias": self.rnn.bias.float().tolist()}

    def predict(self, batch: dict) -> torch.Tensor:
        backend = "numba" if batch["image"].device.type == "cpu" else "torch"
        return self(batch["image"], batch.get("five"), backend)

"""RNN-G: a shallow CNN plus a spatially variant gated RNN (Liu et al., "Face Parsing via
Recurrent Propagation", BMVC 2017; papers/002), the CPU real-time tier.

The tier takes the 256x256 aligned crop. Stage 1 (sec. 3, Figure 1) sees it resized to
128x128: a shallow CNN (three convolutions, two max-poolings, two deconvolutions, at most 32
channels). Its first deconvolution (Deconv6) gives a map at 64x64 that is split in two
halves: the label representation X and the gate G. The
gated linear RNN of eq. 3 (models.parsers.gated_scan) propagates X in four directions with a
node-wise max; a second deconvolution brings the result to 11 classes at 128x128. Three
losses (sec. 3.3): X through its own deconvolution against the labels (coarse), the gate
through a 1x1 convolution against label boundaries (1 = inside a region, 0 = on a boundary,
boundary:non-boundary pixels sampled 1:5, sec. 5.1), and the RNN output against the labels.
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
- Class-balanced stage-1 losses: median-frequency weights (Eigen & Fergus 2015) from running
  pixel counts of the labels seen, floored at 1 (brows and eyes up-weighted; background,
  skin and hair not down-weighted, which made them leak into the background); without any
  weighting brows and eyes stay at F1 0 on this small data. The component crops are
  balanced by construction (as the paper says) and unweighted.
- Stage 1 and stage 2 are trained together, in one loss, rather than separately.
- The paper gives no optimiser settings; default_config's are ours.
- Stage 1 at 128 is the paper's; the tier's input is the 256 crop so that stage 2 sees
  the parts at full resolution (input_size 128 also works: the crops are then upsampled from
  the 128 image; see checkpoints/rnng.md for what that cost in our runs).
- The recurrence starts from a zero state and W from the identity; ours.
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.align import template_points
from core.classes import (IGNORE, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP,
                            NOSE, NUM_CLASSES, RIGHT_BROW, RIGHT_EYE, UPPER_LIP)
from models.parsers.gated_scan import gated_scan


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


@dataclass(frozen=True)
class Component:
    """A crop placed by the five points, in units of the face scale d, in the face frame
    (u along the eye line, v down): centre = anchor + d (a u' + b v), half sizes (ha, hb)."""
    net: str
    anchor: str             # "left_eye" | "right_eye" | "nose" | "mouth"
    centre: tuple           # (a, b)
    half: tuple             # (ha, hb)
    size: tuple             # (height, width) in pixels
    classes: tuple          # our class ids, in the net's output order after "other"
    mirror: bool = False    # crop mirrored (u' = -u) so one net serves both sides


# Boxes: the 10-90th percentile part extents on the 64 FaceSynthetics train faces, measured
# once in the face frame (brow+eye from its eye centre, nose from the nose point, lips from
# the mouth centre), plus the paper's 20% margin, squared or 2:1 to keep the aspect ratio of
# the network input (sec. 5.1). They hold 98-100% of each part's pixels on every source.
COMPONENTS = {
    "nose": Component("nose", "nose", (0.0, -0.37), (0.57, 0.57), (64, 64), (NOSE,)),
    "left_eye": Component("eye", "left_eye", (0.02, -0.15), (0.55, 0.55), (64, 64), (LEFT_BROW, LEFT_EYE)),
    "right_eye": Component("eye", "right_eye", (0.02, -0.15), (0.55, 0.55), (64, 64), (RIGHT_BROW, RIGHT_EYE), True),
    "mouth": Component("mouth", "mouth", (0.0, 0.04), (0.84, 0.42), (32, 64), (UPPER_LIP, INNER_MOUTH, LOWER_LIP)),
}
COMPONENT_NETS = {"eye": 3, "nose": 2, "mouth": 4}  # outputs: "other" + the part classes
# Nose and mouth are left-right symmetric: at inference their nets also parse the mirrored
# crop and the two answers are averaged (FaceSynthetics val: inner mouth 0.773 -> 0.807, lower
# lip 0.779 -> 0.800, under 1 ms a face). Eye crops are always seen in one orientation (the right
# one is mirrored to look like the left), so a mirrored eye crop would be new to the net.
MIRROR_AVERAGED = ("nose", "mouth")
FEATHER = 0.2  # crop border band (fraction of the half size) over which stage 2 fades out


def face_frame(five: torch.Tensor, size: int):
    """Anchors, eye-line axis u, its normal v and face scale d from five points (N, 5, 2).
    d = max(eye distance, eye-to-mouth distance / 1.1), robust to yaw and pitch; unknown
    (NaN) or degenerate points fall back to the alignment template."""
    template = torch.as_tensor(_template_five(size), dtype=five.dtype, device=five.device)
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


def _template_five(size: int) -> np.ndarray:
    """Five points of the alignment template (corners spread 0.35 of the eye distance)."""
    (lx, ly), (rx, ry), (mx, my) = template_points(size)
    spread = 0.35 * (rx - lx)
    nose = (mx, (ly + my) / 2 + 0.05 * size)
    return np.array([(lx, ly), (rx, ry), nose, (mx - spread, my), (mx + spread, my)], np.float32)


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

class RNNGNet(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c = config["rnn_channels"]
        self.size = config["input_size"]
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
        self.register_buffer("mean", torch.tensor([0.5, 0.45, 0.4]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1), persistent=False)

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


# ------------------------------------------------------------------ losses

def boundary_target(label: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gate supervision at 1/scale (sec. 3.3): 1 inside a region, 0 where the 3x3
    neighbourhood holds two classes; valid where no ignore pixel is near."""
    lab = label.float()[:, None]
    ignore = (label == IGNORE).float()[:, None]
    hi = F.max_pool2d(lab.masked_fill(ignore.bool(), -1), 3, 1, 1)
    lo = -F.max_pool2d((-lab).masked_fill(ignore.bool(), -1e3), 3, 1, 1)
    boundary = (hi != lo).float()
    invalid = F.max_pool2d(ignore, 3, 1, 1)
    boundary = F.max_pool2d(boundary, scale)
    valid = F.max_pool2d(invalid, scale) == 0
    return 1 - boundary, valid


def sampled_boundary_loss(logit, target, valid, ratio: float, generator=None) -> torch.Tensor:
    """BCE over all boundary pixels and `ratio` times as many random non-boundary ones (1:5)."""
    pos = (target == 0) & valid
    neg = (target == 1) & valid
    n_pos = pos.flatten(1).sum(1).float()
    n_neg = neg.flatten(1).sum(1).float().clamp(min=1)
    keep_prob = (ratio * n_pos / n_neg).clamp(max=1).view(-1, 1, 1, 1)
    rand = torch.rand(logit.shape, generator=generator, device=logit.device)
    chosen = pos | (neg & (rand < keep_prob))
    if not chosen.any():
        return logit.sum() * 0
    return F.binary_cross_entropy_with_logits(logit[chosen], target[chosen])


def median_frequency_weights(counts: torch.Tensor, max_weight: float, power: float = 1.0,
                             min_weight: float = 0.0) -> torch.Tensor:
    """w_c = (median_f / f_c) ** power over the classes seen (Eigen & Fergus 2015), clamped
    to [min_weight, max_weight]; unseen classes 1."""
    seen = counts > 0
    if seen.sum() < 2:
        return torch.ones_like(counts, dtype=torch.float32)
    freq = counts / counts.sum()
    w = torch.ones_like(freq)
    w[seen] = (freq[seen].median() / freq[seen]) ** power
    return w.clamp(min=min_weight, max=max_weight).float()


def weighted_ce(logits, label, weight) -> torch.Tensor:
    """Class-weighted CE averaged over labelled pixels (0 when none are labelled)."""
    loss = F.cross_entropy(logits, label, weight=weight, ignore_index=IGNORE, reduction="sum")
    norm = weight[label.clamp(max=len(weight) - 1)].masked_fill(label == IGNORE, 0).sum()
    return loss / norm.clamp(min=1e-6)


def component_labels(label, theta, comp: Component) -> torch.Tensor:
    """Label crop (nearest) mapped to the component's classes; outside the image: ignore."""
    lut = torch.full((256,), IGNORE, dtype=torch.long, device=label.device)
    lut[:NUM_CLASSES] = 0
    for i, c in enumerate(comp.classes):
        lut[c] = i + 1
    grid = F.affine_grid(theta, (label.shape[0], 1) + comp.size, align_corners=False)
    lab = F.grid_sample(label[:, None].float() + 1, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    lab = lab[:, 0].long() - 1
    return lut[lab.masked_fill(lab < 0, IGNORE)]


# ------------------------------------------------------------------ the Trainable

class RNNGTrainable:
    name = "rnng"
    input_size = 256  # the crop the tier takes; stage 1 runs at stage1_size (build() follows the config)

    def default_config(self) -> dict:
        return {
            "input_size": 256,            # stage 2 crops the parts from the full crop (sec. 4)
            "stage1_size": 128,           # sec. 4: the first stage parses 128x128 faces
            "cnn_widths": [16, 32, 32],   # Figure 1: at most 32 channels
            "rnn_channels": 16,           # paper 8 (3 classes); 16 for 11 classes
            "stage2": True,               # sec. 4 component networks
            "component_widths": [8, 16, 32],
            "boundary_ratio": 5.0,        # sec. 5.1: boundary : non-boundary = 1 : 5
            "loss_weights": {"coarse": 1.0, "gate": 1.0, "final": 1.0, "components": 1.0},
            "component_loss_weights": {},  # e.g. {"mouth": 3.0}: that crop's loss counts x3
            # median-frequency class weights, floored at 1: classes rarer than the median one
            # (brows, eyes) are up-weighted, frequent ones (background, skin, hair) are not
            # down-weighted, which would let them leak into the background
            "class_weight_max": 10.0, "class_weight_min": 1.0, "class_weight_power": 1.0,
            "crop_jitter": [0.06, 0.06, 0.08, 0.08],  # centre a, b (units of d), log scale, angle (rad)
            "augment": True,              # sec. 5.1 random affine and mirror: models.data.augment via the loop
            # data: a main batch of fully labelled faces plus a cycled batch of real faces
            # (LFW with hair masks and auto-labelled face classes, auto-labelled portraits/videos)
            "sources": ["facesynthetics"], "real_sources": ["lfw_hair", "portraits", "video:"],
            "real_batch_size": 12,
            # not in the paper: ours
            "optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 8,
            "epochs": 160, "lr_schedule": "cosine", "val_every": 16,
        }

    def build(self, config: dict) -> torch.nn.Module:
        cfg = {**self.default_config(), "stage1_size": 128, **config}
        self.input_size = int(cfg["input_size"])
        return RNNGNet(cfg)

    def extra_datasets(self, config, data_dir) -> dict:
        """The loop's extra loader: real faces (see default_config), cycled beside the main one."""
        if not config.get("real_sources"):
            return {}
        from models.data.dataset import FaceParsingDataset
        from models.training.train import make_augment
        ds = FaceParsingDataset(data_dir, "train", self.input_size, augment=make_augment(config, self.input_size),
                                sources=config["real_sources"], label_kinds=["full", "partial", "auto"])
        return {"real": ds} if len(ds) else {}

    def _class_weights(self, model, label, cfg) -> torch.Tensor:
        """Running pixel counts of the labels seen in training -> median-frequency weights."""
        if not hasattr(model, "_pixel_counts"):
            model._pixel_counts = torch.zeros(NUM_CLASSES, dtype=torch.float64, device=label.device)
        valid = label[label != IGNORE]
        model._pixel_counts += torch.bincount(valid, minlength=NUM_CLASSES)[:NUM_CLASSES].double()
        return median_frequency_weights(model._pixel_counts, cfg["class_weight_max"], cfg["class_weight_power"],
                                        cfg.get("class_weight_min", 0.0))

    def loss(self, model, batch):
        cfg = {**self.default_config(), **getattr(model, "config", {})}
        model.rnn.constrain_()  # keep ||W|| <= 1 after the previous step (sec. 3.2)
        if isinstance(batch.get("real"), dict):  # the main batch and the real-face batch as one
            batch = {k: torch.cat([batch[k], batch["real"][k]]) for k in ("image", "label", "five")}
        image, label = batch["image"], batch["label"]
        weights = self._class_weights(model, label, cfg)
        lw = cfg["loss_weights"]
        out = model.stage1(image, backend="torch", heads=True)
        label1 = label  # stage-1 losses at stage1_size (nearest), stage 2 at the full input
        if label.shape[-1] != out["logits"].shape[-1]:
            label1 = F.interpolate(label[:, None].float(), size=out["logits"].shape[-2:], mode="nearest")[:, 0].long()
        coarse = weighted_ce(out["coarse_logits"], label1, weights)
        final = weighted_ce(out["logits"], label1, weights)
        target, valid = boundary_target(label1, label1.shape[-1] // out["gate"].shape[-1])
        gate = sampled_boundary_loss(out["boundary_logit"], target, valid, cfg["boundary_ratio"])
        total = lw["coarse"] * coarse + lw["gate"] * gate + lw["final"] * final
        logs = {"coarse": coarse.item(), "gate": gate.item(), "final": final.item()}
        if len(model.components):
            n = image.shape[0]
            jit = torch.as_tensor(cfg["crop_jitter"], device=image.device)
            jitter = {k: (torch.rand(n, 4, device=image.device) * 2 - 1) * jit for k in COMPONENTS}
            comps = model.crops(model.normalise(image), batch["five"], jitter)
            comp_loss = 0
            for name, (theta, logits) in comps.items():
                target = component_labels(label, theta, COMPONENTS[name])
                comp_loss = comp_loss + cfg["component_loss_weights"].get(name, 1.0) * weighted_ce(
                    logits, target, torch.ones(logits.shape[1], device=image.device))
            comp_loss = comp_loss / len(comps)
            total = total + lw["components"] * comp_loss
            logs["components"] = comp_loss.item()
        logs["loss"] = total.item()
        return total, logs

    def onnx_parts(self, model: RNNGNet) -> dict:
        """{name: (module, example input)}: the plain convolutional parts ONNX Runtime can run."""
        parts = {"cnn": (model.cnn, torch.zeros(1, 3, model.stage1_size, model.stage1_size))}
        for name, net in model.components.items():
            size = next(c.size for c in COMPONENTS.values() if c.net == name)
            parts[name] = (net, torch.zeros((1, 3) + tuple(size)))
        return parts

    def for_cpu_inference(self, model: RNNGNet, checkpoint) -> RNNGNet:
        """The shallow CNN and the component nets on ONNX Runtime, from the files exported beside
        the checkpoint (models.parsers.onnx_runtime): on this 2-core CPU they ran 2-3x faster
        than torch on one thread (benchmarks/onnx_vs_torch.py); numba keeps the recurrence,
        torch the crops and pasting. A part without a matching file stays on torch."""
        from models.parsers import onnx_runtime
        if not onnx_runtime.available():
            return model
        sha = onnx_runtime.digest(checkpoint)
        for name in self.onnx_parts(model):
            part = onnx_runtime.load(onnx_runtime.folder(checkpoint) / f"{name}.onnx", sha)
            if part is None:
                continue
            if name == "cnn":
                model.cnn = part
            else:
                model.components[name] = part
        return model

    def predict(self, model, batch):
        backend = "numba" if batch["image"].device.type == "cpu" else "torch"
        return model(batch["image"], batch.get("five"), backend)

"""RNN-G's training recipe (Liu et al., "Face Parsing via Recurrent Propagation", BMVC 2017);
the network is models.parsers.rnng.

Three stage-1 losses (sec. 3.3): X through its own deconvolution against the labels (coarse),
the gate through a 1x1 convolution against label boundaries (1 = inside a region, 0 = on a
boundary, boundary:non-boundary pixels sampled 1:5, sec. 5.1), and the RNN output against the
labels; plus the component networks' losses on their crops (sec. 4), jittered to mimic landmark
noise. ||W||_2 <= 1 (sec. 3.2): every step first projects the stored W back into the ball.

Departures from the paper (see also models.parsers.rnng):
- Class-balanced stage-1 losses: median-frequency weights (Eigen & Fergus 2015) from running
  pixel counts of the labels seen, floored at 1 (brows and eyes up-weighted; background,
  skin and hair not down-weighted, which made them leak into the background); without any
  weighting brows and eyes stay at F1 0 on this small data. The component crops are
  balanced by construction (as the paper says) and unweighted.
- Stage 1 and stage 2 are trained together, in one loss, rather than separately.
- The paper gives no optimiser settings; default_config's are ours.
"""
import torch
import torch.nn.functional as F

from core.classes import IGNORE, NUM_CLASSES
from models.parsers.rnng import COMPONENTS, Component, RNNGNet
from models.training.trainable import Recipe, merge_batches, real_face_datasets


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


class RNNGRecipe(Recipe):
    name = "rnng"
    network = RNNGNet

    def __init__(self):
        # running pixel counts of the labels seen in this training run -> class weights
        self.pixel_counts = torch.zeros(NUM_CLASSES, dtype=torch.float64)

    def default_config(self) -> dict:
        return {
            **RNNGNet.defaults,
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

    def extra_datasets(self, config, data_dir) -> dict:
        """The loop's extra loader: real faces (see default_config), cycled beside the main one."""
        return real_face_datasets(config, data_dir)

    def class_weights(self, label, cfg) -> torch.Tensor:
        """Running pixel counts of the labels seen in training -> median-frequency weights."""
        valid = label[label != IGNORE]
        self.pixel_counts = self.pixel_counts.to(label.device)
        self.pixel_counts += torch.bincount(valid, minlength=NUM_CLASSES)[:NUM_CLASSES].double()
        return median_frequency_weights(self.pixel_counts, cfg["class_weight_max"], cfg["class_weight_power"],
                                        cfg.get("class_weight_min", 0.0))

    def loss(self, model, batch, stage):
        cfg = {**self.default_config(), **stage.config}
        model.rnn.constrain_()  # keep ||W|| <= 1 after the previous step (sec. 3.2)
        batch = merge_batches(batch, batch.get("real"))  # the main batch and the real-face batch as one
        image, label = batch["image"], batch["label"]
        weights = self.class_weights(label, cfg)
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

"""Two-stage semi-supervised distillation of Wei et al., "Accurate Facial Image Parsing at Real-Time
Speed" (IEEE TIP), Sec. V-B/V-C, Fig. 4.

Stage "supervised" (Sec. V-B), on labelled faces:
  L = CE(student, label) + kd_weight * KL(softmax(t / T) || softmax(s / T))
  * gradient re-weighting: pixels of the small classes (brows, eyes, nose, lips, mouth) have
    their gradients multiplied by `small_class_weight` > 1, in both terms;
  * teacher-prediction filtering: the pixel-wise softmax loss of the *teacher* against the
    label is computed, and the top-K pixels with the highest loss (K = `filter_fraction` of
    the labelled pixels of each image) are left out of the KL term.
  Unlabelled pixels (255) of a labelled image still take the KL term, weighted by the
  teacher's predicted class.

Stage "unsupervised" (Sec. V-C), on unlabelled faces (label_kind "auto"/"none"; their
auto-labels are not used): the teacher's argmax is the estimated label, used for the
student's softmax loss, for the re-weighting and for the filtering; the filter is
"self-assessed": the teacher's softmax loss against its own estimate (-log max p), top-K
pixels dropped from both terms. Learning rate 10x lower than stage 1 (Sec. VI-A).
Our choice, not the paper's: `unsupervised_freeze_bn` keeps stage 1's BatchNorm statistics in
stage 2 (here the unlabelled faces are real photos, the labelled ones mostly synthetic renders).

Paper settings (Sec. VI-A): T = 4, distillation weight 4x the softmax loss; stage 1 120k
iterations at lr 1e-6, stage 2 160k at lr 1e-7 (Caffe SGD, batch 1). Here: Adam on
mini-batches for minutes of CPU (see checkpoints/student.md). The KL term is weighted 4
without the T^2 factor of Hinton et al. (the paper gives only the weight 4). K is a fraction
of the labelled pixels, since the paper does not give its value.
"""
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.classes import IGNORE, NUM_CLASSES
from models.parsers import checkpoint as ckpt
from models.parsers.student import StudentNet
from models.parsers.teacher import TeacherNet
from models.training.trainable import merge_batches, open_train_extra

SUPERVISED, UNSUPERVISED = "supervised", "unsupervised"
# classes whose gradients are multiplied (Sec. V-B: "eyebrows, eyes, nose, lips and mouth")
SMALL_CLASSES = (2, 3, 4, 5, 6, 7, 8, 9)


def class_weight_vector(small_class_weight: float, device=None) -> torch.Tensor:
    w = torch.ones(NUM_CLASSES, device=device)
    w[list(SMALL_CLASSES)] = small_class_weight
    return w


def default_distill_config() -> dict:
    return {
        "teacher_checkpoint": None,      # path; None = softmax loss only (Table VIII baseline)
        "temperature": 4.0, "kd_weight": 4.0,
        "small_class_weight": 10.0,      # the re-weighting constant (> 1); x3 left eyes at F1 0
        "filter_fraction": 0.05,         # top-K = this share of an image's pixels
        # stage 1 on labelled data, stage 2 on unlabelled data at lr * unsupervised_lr_scale
        "supervised_epochs": 60, "unsupervised_epochs": 20, "unsupervised_lr_scale": 0.1,
        "unsupervised_freeze_bn": True,  # keep stage 1's BN statistics in stage 2 (our choice)
        # data: main loader = fully labelled faces; extras: "partial" (real faces with hair
        # masks + auto face classes) in stage 1, "unlabelled" (label_kind auto/none) in stage 2
        "sources": ["facesynthetics"], "partial_sources": ["lfw_hair"], "partial_batch_size": 4,
        "unlabelled_kinds": ["auto", "none"], "unlabelled_sources": None, "unlabelled_batch_size": 8,
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 8,
    }


def distillation_datasets(config: dict, data_dir) -> dict:
    """extra_datasets hook: the loop cycles these next to the main (fully labelled) loader."""
    size, out = int(config["input_size"]), {}
    if config.get("partial_sources"):
        out["partial"] = open_train_extra(config, data_dir, size, sources=config["partial_sources"])
    if config.get("teacher_checkpoint") and config["unsupervised_epochs"] > 0:
        out["unlabelled"] = open_train_extra(config, data_dir, size, sources=config["unlabelled_sources"],
                                             label_kinds=config["unlabelled_kinds"])
    return {k: v for k, v in out.items() if v is not None}


def distillation_stages(config: dict, extras: dict):
    """The two stages as (name, epochs, config overrides) for the shared training loop; the
    second only with a teacher and unlabelled faces in the dataset."""
    stages = [(SUPERVISED, config["supervised_epochs"], {})]
    if config.get("teacher_checkpoint") and config["unsupervised_epochs"] > 0 and "unlabelled" in extras:
        stages.append((UNSUPERVISED, config["unsupervised_epochs"],
                       {"lr": config["lr"] * config["unsupervised_lr_scale"]}))
    return stages


@functools.lru_cache(maxsize=1)
def frozen_teacher(path: str) -> TeacherNet:
    """The teacher of `teacher_checkpoint`, frozen, loaded once per path."""
    blob = ckpt.load(path, "teacher")
    return ckpt.load_into(TeacherNet.from_config(blob["config"]), blob).eval().requires_grad_(False)


@torch.no_grad()
def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None):
    """Weight and bias of conv followed by (eval-mode) BatchNorm as one conv."""
    w = conv.weight.detach().clone()
    b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(w.shape[0])
    if bn is None:
        return w, b
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return w * scale[:, None, None, None], (b - bn.running_mean) * scale + bn.bias


@torch.no_grad()
def copy_conv1_from_teacher(student: StudentNet, teacher: TeacherNet):
    """Sec. V-A: conv1_1 and conv1_2 of the student are the teacher's (BN folded in)."""
    dst = [m for m in student.conv1 if isinstance(m, nn.Conv2d)]
    for target, block in zip(dst, teacher.conv1):
        conv = block[0]
        bn = block[1] if isinstance(block[1], nn.BatchNorm2d) else None
        w, b = fold_bn(conv, bn)
        if target.weight.shape != w.shape:
            raise ValueError(f"student conv1 {tuple(target.weight.shape)} does not match the teacher's "
                             f"{tuple(w.shape)}: set conv1_channels / landmark_channel like the teacher")
        target.weight.copy_(w)
        target.bias.copy_(b)


@torch.no_grad()
def teacher_logits(teacher: TeacherNet, batch) -> torch.Tensor:
    """Teacher logits at the student's input size (the teacher resizes to its own)."""
    size = batch["image"].shape[-1]
    teacher.to(batch["image"].device)
    if teacher.input_size == size:
        return teacher.logits(batch)
    f = teacher.input_size / size
    resized = {"image": F.interpolate(batch["image"], size=(teacher.input_size,) * 2, mode="bilinear",
                                      align_corners=False, antialias=True),
               "five": (batch["five"] + 0.5) * f - 0.5}
    return F.interpolate(teacher.logits(resized), size=(size, size), mode="bilinear", align_corners=False)


def pixel_kl(student_logits, teacher_logits, temperature) -> torch.Tensor:
    """KL(p_t || p_s) per pixel at temperature T, (N, H, W)."""
    log_ps = F.log_softmax(student_logits / temperature, 1)
    log_pt = F.log_softmax(teacher_logits / temperature, 1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(1)


def top_k_keep(pixel_loss: torch.Tensor, valid: torch.Tensor, fraction: float) -> torch.Tensor:
    """Teacher-prediction filtering (Sec. V-B): per image, False at the K valid pixels with the
    highest loss (K = ceil(fraction * valid pixels)), True elsewhere (invalid pixels too)."""
    keep = torch.ones_like(valid)
    if fraction <= 0:
        return keep
    flat_loss, flat_valid, flat_keep = pixel_loss.flatten(1), valid.flatten(1), keep.view(len(keep), -1)
    for i in range(len(flat_loss)):
        k = math.ceil(fraction * int(flat_valid[i].sum()))
        if k > 0:
            scores = flat_loss[i].masked_fill(~flat_valid[i], float("-inf"))
            flat_keep[i, scores.topk(k).indices] = False
    return keep


def weighted_mean(values, weights):
    return (values * weights).sum() / weights.sum().clamp(min=1e-6)


def supervised_loss(s_logits, t_logits, label, config):
    """Sec. V-B: re-weighted softmax loss + filtered, re-weighted distillation."""
    valid = label != IGNORE
    cw = class_weight_vector(config["small_class_weight"], s_logits.device)
    t_pred = t_logits.argmax(1)
    target = torch.where(valid, label, t_pred)  # unlabelled pixels: weighted by the teacher's class
    w = cw[target]
    ce = F.cross_entropy(s_logits, label, ignore_index=IGNORE, reduction="none")
    t_ce = F.cross_entropy(t_logits, label, ignore_index=IGNORE, reduction="none")
    keep = top_k_keep(t_ce, valid, config["filter_fraction"])
    l_ce = weighted_mean(ce, w * valid)
    l_kd = weighted_mean(pixel_kl(s_logits, t_logits, config["temperature"]), w * keep)
    total = l_ce + config["kd_weight"] * l_kd
    filtered = float(1 - keep[valid].float().mean()) if valid.any() else 0.0
    return total, {"ce": float(l_ce.detach()), "kd": float(l_kd.detach()), "filtered": filtered}


def unsupervised_loss(s_logits, t_logits, config):
    """Sec. V-C: teacher argmax as estimated label, self-assessed filtering, re-weighting."""
    cw = class_weight_vector(config["small_class_weight"], s_logits.device)
    estimate = t_logits.argmax(1)
    self_loss = F.cross_entropy(t_logits, estimate, reduction="none")  # -log max p_t
    keep = top_k_keep(self_loss, torch.ones_like(estimate, dtype=torch.bool), config["filter_fraction"])
    w = cw[estimate] * keep
    l_ce = weighted_mean(F.cross_entropy(s_logits, estimate, reduction="none"), w)
    l_kd = weighted_mean(pixel_kl(s_logits, t_logits, config["temperature"]), w)
    total = l_ce + config["kd_weight"] * l_kd
    return total, {"ce": float(l_ce.detach()), "kd": float(l_kd.detach())}


def softmax_only_loss(s_logits, label, config):
    """No teacher: the re-weighted softmax loss alone."""
    valid = label != IGNORE
    w = class_weight_vector(config["small_class_weight"], s_logits.device)[label.clamp(max=NUM_CLASSES - 1)]
    ce = F.cross_entropy(s_logits, label, ignore_index=IGNORE, reduction="none")
    l_ce = weighted_mean(ce, w * valid)
    return l_ce, {"ce": float(l_ce.detach())}


def distillation_loss(model: StudentNet, batch: dict, stage_name: str, config: dict):
    """The Student's loss in stage `stage_name` on the batches that stage reads (main +
    "partial" in stage 1, "unlabelled" in stage 2); softmax loss alone without a teacher."""
    if stage_name == UNSUPERVISED and "unlabelled" in batch:
        batch = merge_batches(batch["unlabelled"])
    else:
        stage_name = SUPERVISED
        batch = merge_batches(batch, batch.get("partial"))
    s_logits = model.logits(batch)
    if not config.get("teacher_checkpoint"):
        loss, logs = softmax_only_loss(s_logits, batch["label"], config)
    else:
        t_logits = teacher_logits(frozen_teacher(str(config["teacher_checkpoint"])), batch).float()
        if stage_name == UNSUPERVISED:
            loss, logs = unsupervised_loss(s_logits, t_logits, config)
        else:
            loss, logs = supervised_loss(s_logits, t_logits, batch["label"], config)
    logs["loss"] = float(loss.detach())
    return loss, logs

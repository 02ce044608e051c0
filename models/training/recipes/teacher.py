"""The teacher's training recipe (Wei et al., "Accurate Facial Image Parsing at Real-Time Speed",
IEEE TIP); the network is models.parsers.teacher.

Loss: the softmax loss with the small classes re-weighted (`small_class_weight`; the paper
re-weights only in the distillation, Sec. V-B, but from scratch on ~64 images they otherwise
stay at F1 0) + sc_weight * the Statistical Contextual loss (Sec. IV, models.training.sc_loss).
Each step takes a batch of the main labelled source (FaceSynthetics, full labels) plus, when the
dataset has them, a batch of the "partial" extra (LFW hair: real faces, hair masks + auto face
classes, 255 where unknown).
"""
import torch.nn.functional as F

from core.classes import IGNORE, NUM_CLASSES
from models.parsers.teacher import TeacherNet
from models.training import sc_loss as sc
from models.training.distill import class_weight_vector
from models.training.trainable import Recipe, merge_batches, open_train_extra


def weighted_pixel_ce(logits, target, small_class_weight):
    """Per-pixel softmax loss (N, S, S), 0 at ignore pixels, and per-pixel weights."""
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    valid = target != IGNORE
    w = class_weight_vector(small_class_weight, logits.device)[target.clamp(max=NUM_CLASSES - 1)]
    return ce, w * valid


class TeacherRecipe(Recipe):
    name = "teacher"
    network = TeacherNet

    def default_config(self) -> dict:
        return {
            **TeacherNet.defaults,  # CPU training passes width_mult/input_size overrides
            # loss (Sec. VI-A: sc loss weight 0.01, margin d 3, centre lr 0.1, centre decay 5e-4)
            "sc_weight": 0.01, "sc_margin": 3.0, "sc_centre_lr": 0.1, "sc_centre_decay": 5e-4,
            "small_class_weight": 10.0,  # x3 left brows and eyes at F1 0 after 50 epochs
            # data: main loader = fully labelled faces; extra "partial" batches of real faces
            "sources": ["facesynthetics"], "partial_sources": ["lfw_hair"], "partial_batch_size": 4,
            # optimisation: the paper's SGD lr 1e-7, batch 1, 80k iterations (Caffe, pretrained)
            # does not fit from-scratch CPU training; Adam on mini-batches instead
            "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 8, "epochs": 100,
        }

    def extra_datasets(self, config, data_dir) -> dict:
        if not config.get("partial_sources"):
            return {}
        ds = open_train_extra(config, data_dir, int(config["input_size"]), sources=config["partial_sources"])
        return {"partial": ds} if ds is not None else {}

    def loss(self, model, batch, stage):
        """Re-weighted softmax loss + sc_weight * sc loss (Sec. IV) on main + partial batches."""
        cfg = {**self.default_config(), **stage.config}
        batch = merge_batches(batch, batch.get("partial"))
        logits = model.logits(batch)
        target = batch["label"]
        ce, w = weighted_pixel_ce(logits, target, cfg["small_class_weight"])
        ce_loss = (ce * w).sum() / w.sum().clamp(min=1)
        logs = {"ce": float(ce_loss.detach())}
        total = ce_loss
        if cfg["sc_weight"] > 0 and (target != IGNORE).any():
            intra, sc_logs = sc.sc_loss(logits, target, ce.detach(), model.sc_centres,
                                        margin=cfg["sc_margin"], centre_lr=cfg["sc_centre_lr"],
                                        centre_decay=cfg["sc_centre_decay"], update=model.training)
            total = total + cfg["sc_weight"] * intra
            logs.update(sc_logs)
        logs["loss"] = float(total.detach())
        return total, logs

"""BSPNet's training recipe (Liu et al., "A New Dataset and Boundary-Attention Semantic
Segmentation for Face Parsing" (LaPa, BSPNet), AAAI 2020, eq. 1-4); the network is models.parsers.bspnet.

L = l1 Ls + l2 Lb + l3 Lf: Ls the semantic branch's cross-entropy, Lb a positive/negative
balanced BCE on the label boundaries, Lf the fusion branch's cross-entropy whose boundary pixels
weigh 1 + alpha. Inverse-frequency class weights (not in the paper) balance the tiny parts.
"""
import torch
import torch.nn.functional as F

from core.classes import IGNORE
from models.parsers.bspnet import BSPNet
from models.training.recipes.rednet import class_weights
from models.training.trainable import REAL_FACE_CONFIG, Recipe, merge_batches, real_face_datasets


def boundary_map(label: torch.Tensor) -> torch.Tensor:
    """Ground truth of the boundary branch from the label gradients: a pixel is on a boundary
    when a 4-neighbour has another class. Pairs with an ignore pixel do not count.
    (N, H, W) int64 -> (N, H, W) bool."""
    edge = torch.zeros_like(label, dtype=torch.bool)
    for dim in (1, 2):
        a, b = label.narrow(dim, 0, label.shape[dim] - 1), label.narrow(dim, 1, label.shape[dim] - 1)
        diff = (a != b) & (a != IGNORE) & (b != IGNORE)
        pad = [0, 0, 0, 0]
        pad[2 * (2 - dim) + 1] = 1  # mark the first pixel of each differing pair ...
        first = F.pad(diff, pad)
        pad = [0, 0, 0, 0]
        pad[2 * (2 - dim)] = 1      # ... and the second
        edge |= first | F.pad(diff, pad)
    return edge


def boundary_weights(label: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 4's w_i: 1 + alpha on boundary pixels, 1 elsewhere (N, H, W) float."""
    return 1.0 + alpha * boundary_map(label).float()


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Eq. 3 with HED's class balancing: each side is weighted by the other side's pixel share."""
    target = target.float()
    valid = valid.float()
    n = valid.sum().clamp_min(1)
    pos_share = (target * valid).sum() / n
    weight = torch.where(target > 0, 1 - pos_share, pos_share) * valid
    loss = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum")
    return loss / n


class BSPNetRecipe(Recipe):
    name = "bspnet"
    network = BSPNet

    def default_config(self) -> dict:
        return {
            **BSPNet.defaults,
            **REAL_FACE_CONFIG,  # FaceSynthetics + real faces per step, as RNN-G
            "lambda_semantic": 1.0, "lambda_boundary": 1.0, "lambda_fusion": 2.0,  # paper: 1, 1, 2
            # paper: 200 at 473x473. Boundaries are ~2 px wide at any size, so their pixel share grows
            # as the input shrinks; 200 * 128 / 473 = 54 keeps the boundary share of Lf the paper's
            "alpha": 54.0,
            # paper: SGD momentum 0.9, wd 5e-4, poly lr from 1e-3, batch 64, ImageNet init;
            # from scratch on a tiny set Adam converges much faster here
            "optimizer": "adam", "lr": 2e-3, "weight_decay": 5e-4, "batch_size": 8, "epochs": 100,
            "class_weight_power": 0.5,  # not in the paper: balances the tiny parts on few images
        }

    def extra_datasets(self, config, data_dir) -> dict:
        return real_face_datasets(config, data_dir)

    def loss(self, model, batch, stage):
        c = {**self.default_config(), **stage.config}
        batch = merge_batches(batch, batch.get("real"))  # the synthetic and the real faces as one
        label = batch["label"]
        out = model(batch["image"])
        weights = class_weights(label, c["class_weight_power"])
        valid = label != IGNORE
        n = valid.sum().clamp_min(1)
        ls = (F.cross_entropy(out["semantic"], label, weight=weights, ignore_index=IGNORE, reduction="sum")
              / n)
        edges = boundary_map(label)
        lb = balanced_bce(out["boundary"][:, 0], edges, valid)
        pixel_w = boundary_weights(label, c["alpha"])
        ce = F.cross_entropy(out["fusion"], label, weight=weights, ignore_index=IGNORE, reduction="none")
        lf = (ce * pixel_w).sum() / n
        total = c["lambda_semantic"] * ls + c["lambda_boundary"] * lb + c["lambda_fusion"] * lf
        return total, {"loss": float(total.detach()), "semantic": float(ls.detach()),
                       "boundary": float(lb.detach()), "fusion": float(lf.detach())}

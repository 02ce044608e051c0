"""BSPNet: Boundary-Sensitive Parsing Network (Liu et al., AAAI 2020, section 4 and 5.1).

Three branches:
  * semantic-aware: ResNet backbone, stage 4 dilated (output stride 16), pyramid pooling with
    bins 1, 2, 3, 6 concatenated with the stage-4 features, then a classifier (p_s).
    The paper uses an ImageNet-pretrained ResNet-101; no weights exist here and a ResNet-101
    cannot be trained from scratch on a CPU, so a narrow ResNet-18 is trained from scratch.
  * boundary-aware: features of stages 1-3 (the paper's conv2_3, conv3_4, conv4_23) projected,
    upsampled to 1/4 and fused into a one-channel boundary map (p_b).
  * fusion: the last features of both branches concatenated -> classifier (p_f), the output.
Loss (eq. 1-4): L = l1 Ls + l2 Lb + l3 Lf, Lb a positive/negative balanced BCE, Lf a
cross-entropy whose boundary pixels weigh w = 1 + alpha.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.classes import IGNORE, NUM_CLASSES
from models.parsers.rednet import class_weights
from models.parsers.resnet import ResNet, conv_bn_relu


class PyramidPooling(nn.Module):
    """PSPNet pyramid pooling: average-pool to each bin size, 1x1 conv, upsample, concatenate."""

    def __init__(self, cin, bins=(1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        self.stages = nn.ModuleList(conv_bn_relu(cin, cin // len(bins), 1) for _ in bins)
        self.out_channels = cin + (cin // len(bins)) * len(bins)

    def forward(self, x):
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear",
                                align_corners=False) for b, stage in zip(self.bins, self.stages)]
        return torch.cat([x] + pooled, 1)


class SemanticBranch(nn.Module):
    def __init__(self, backbone_channels, features):
        super().__init__()
        self.ppm = PyramidPooling(backbone_channels)
        self.head = conv_bn_relu(self.ppm.out_channels, features, 3)
        self.classifier = nn.Conv2d(features, NUM_CLASSES, 1)

    def forward(self, c4):
        feat = self.head(self.ppm(c4))
        return feat, self.classifier(feat)


class BoundaryBranch(nn.Module):
    """Shared stage 1-3 features -> boundary features at 1/4 and one boundary logit per pixel."""

    def __init__(self, stage_channels, features):
        super().__init__()
        self.projections = nn.ModuleList(conv_bn_relu(c, features, 1) for c in stage_channels)
        self.head = conv_bn_relu(features * len(stage_channels), features, 3)
        self.classifier = nn.Conv2d(features, 1, 1)

    def forward(self, stages):
        size = stages[0].shape[-2:]
        feats = [F.interpolate(p(s), size=size, mode="bilinear", align_corners=False) if i else p(s)
                 for i, (p, s) in enumerate(zip(self.projections, stages))]
        feat = self.head(torch.cat(feats, 1))
        return feat, self.classifier(feat)


class FusionBranch(nn.Module):
    def __init__(self, semantic_features, boundary_features, features):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(semantic_features + boundary_features, features, 3),
                                  conv_bn_relu(features, features, 3))
        self.classifier = nn.Conv2d(features, NUM_CLASSES, 1)

    def forward(self, semantic_feat, boundary_feat):
        semantic_feat = F.interpolate(semantic_feat, size=boundary_feat.shape[-2:], mode="bilinear",
                                      align_corners=False)
        return self.classifier(self.body(torch.cat([semantic_feat, boundary_feat], 1)))


class BSPNet(nn.Module):
    def __init__(self, depth=18, width=32, semantic_features=128, boundary_features=32, fusion_features=64):
        super().__init__()
        self.backbone = ResNet(depth, width, dilate_last=True)
        ch = self.backbone.channels
        self.semantic = SemanticBranch(ch[3], semantic_features)
        self.boundary = BoundaryBranch(ch[:3], boundary_features)
        self.fusion = FusionBranch(semantic_features, boundary_features, fusion_features)

    def forward(self, image):
        """-> dict of logits at the input size: semantic (N,C), boundary (N,1), fusion (N,C)."""
        c1, c2, c3, c4 = self.backbone(image)
        sem_feat, sem_logits = self.semantic(c4)
        bnd_feat, bnd_logits = self.boundary((c1, c2, c3))
        fus_logits = self.fusion(sem_feat, bnd_feat)
        size = image.shape[-2:]
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        return {"semantic": up(sem_logits), "boundary": up(bnd_logits), "fusion": up(fus_logits)}


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


class BSPNetTrainable:
    name = "bspnet"
    input_size = 128  # the paper uses 473; 128 keeps CPU training feasible here

    def default_config(self) -> dict:
        return {
            "input_size": self.input_size, "depth": 18, "width": 32,
            "semantic_features": 128, "boundary_features": 32, "fusion_features": 64,
            "lambda_semantic": 1.0, "lambda_boundary": 1.0, "lambda_fusion": 2.0,  # paper: 1, 1, 2
            # paper: 200 at 473x473. Boundaries are ~2 px wide at any size, so their pixel share grows
            # as the input shrinks; 200 * 128 / 473 = 54 keeps the boundary share of Lf the paper's
            "alpha": 54.0,
            # paper: SGD momentum 0.9, wd 5e-4, poly lr from 1e-3, batch 64, ImageNet init;
            # from scratch on a tiny set Adam converges much faster here
            "optimizer": "adam", "lr": 2e-3, "weight_decay": 5e-4, "batch_size": 8, "epochs": 100,
            "class_weight_power": 0.5,  # not in the paper: balances the tiny parts on few images
        }

    def build(self, config: dict) -> nn.Module:
        c = {**self.default_config(), **(config or {})}
        model = BSPNet(c["depth"], c["width"], c["semantic_features"], c["boundary_features"],
                       c["fusion_features"])
        model.loss_config = {k: c[k] for k in ("lambda_semantic", "lambda_boundary", "lambda_fusion",
                                               "alpha", "class_weight_power")}
        return model

    def loss(self, model: BSPNet, batch: dict):
        c = getattr(model, "loss_config", None) or self.build_loss_defaults()
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

    def build_loss_defaults(self):
        c = self.default_config()
        return {k: c[k] for k in ("lambda_semantic", "lambda_boundary", "lambda_fusion", "alpha",
                                  "class_weight_power")}

    def predict(self, model: BSPNet, batch: dict) -> torch.Tensor:
        return model(batch["image"])["fusion"].float().softmax(1)

"""BSPNet: Boundary-Sensitive Parsing Network (Liu et al., AAAI 2020, section 4 and 5.1).

Three branches:
  * semantic-aware: ResNet backbone, stage 4 dilated (output stride 16), pyramid pooling with
    bins 1, 2, 3, 6 concatenated with the stage-4 features, then a classifier (p_s).
    The paper uses an ImageNet-pretrained ResNet-101; no weights exist here and a ResNet-101
    cannot be trained from scratch on a CPU, so a narrow ResNet-18 is trained from scratch.
  * boundary-aware: features of stages 1-3 (the paper's conv2_3, conv3_4, conv4_23) projected,
    upsampled to 1/4 and fused into a one-channel boundary map (p_b).
  * fusion: the last features of both branches concatenated -> classifier (p_f), the output.
Loss (eq. 1-4, models.training.recipes.bspnet): L = l1 Ls + l2 Lb + l3 Lf, Lb a positive/negative
balanced BCE, Lf a cross-entropy whose boundary pixels weigh w = 1 + alpha.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.classes import NUM_CLASSES
from models.parsers.network import TierNet
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


class BSPNet(TierNet):
    defaults = {"input_size": 128,  # the paper uses 473; 128 keeps CPU training feasible here
                "depth": 18, "width": 32, "semantic_features": 128, "boundary_features": 32, "fusion_features": 64}

    @classmethod
    def from_config(cls, config: dict) -> "BSPNet":
        c = {**cls.defaults, **config}
        return cls(c["depth"], c["width"], c["semantic_features"], c["boundary_features"], c["fusion_features"],
                   c["input_size"])

    def __init__(self, depth=18, width=32, semantic_features=128, boundary_features=32, fusion_features=64,
                 input_size=128):
        super().__init__()
        self.input_size = int(input_size)
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

    def predict(self, batch: dict) -> torch.Tensor:
        return self(batch["image"])["fusion"].float().softmax(1)

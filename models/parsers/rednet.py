"""RED-Net: Residual Encoder Decoder Network with an adaptive prior (Guo et al., AAAI 2018).

  * RE-Net: a ResNet-18 encoder with max-pooling between its units (models.parsers.resnet.PoolingResNet).
    The paper pre-trains it on CASIA-WebFace face recognition; that data is not here, so the
    encoder is trained from scratch.
  * RD-Net: one RD-Unit per pooling (section "Residual Decoder Network", Fig. 6-(a)):
    max-unpooling with the encoder's indices -> densification module -> detail-learning
    module -> dimension-reduction module.
  * Adaptive prior (equations 5-8): the mean label map of the N nearest training exemplars
    (distance between 5-point shapes in a PCA subspace), weighted per pixel by the normalised
    entropy of the decoder's output, added to it and renormalised. Training minimises eq. 2,
    the negative log of that final distribution.

The paper's exemplars come from the validation split; here they come from the TRAINING split
only (`models.training.recipes.rednet`), kept in the model as buffers so a checkpoint carries them.
Additions for training from scratch on a few images (checkpoints/rednet.md says why):
inverse-frequency class weights, eq. 2's loss on P_net alone as well as on P_final, and the
adaptive scale As held constant in back-propagation.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.classes import NUM_CLASSES
from models.parsers.network import TierNet
from models.parsers.resnet import PoolingResNet, conv_bn_relu


class DeconvBottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 "deconvolution bottleneck" (D.B. in Fig. 6). A stride-1 deconvolution
    is a convolution with a flipped kernel, so plain convolutions are used. The middle width is
    `ratio` of the input (config "bottleneck_ratio", 1/2 by default: at ResNet's 1/4 the narrow
    decoder here squeezed 11 classes through 8 channels and learned markedly slower)."""

    def __init__(self, cin, cout, relu_out=True, ratio=0.5):
        super().__init__()
        mid = max(int(cin * ratio), 16)
        self.body = nn.Sequential(conv_bn_relu(cin, mid, 1), conv_bn_relu(mid, mid, 3),
                                  conv_bn_relu(mid, cout, 1, relu=relu_out))

    def forward(self, x):
        return self.body(x)


class DensificationModule(nn.Module):
    """Fills the holes of the sparse unpooled map: a deconvolution bottleneck, no shortcut."""

    def __init__(self, channels, ratio=0.5):
        super().__init__()
        self.bottleneck = DeconvBottleneck(channels, channels, ratio=ratio)

    def forward(self, x):
        return self.bottleneck(x)


class DetailLearningModule(nn.Module):
    """H(x) = x + F(x): the bottleneck branch learns the details on top of an identity shortcut."""

    def __init__(self, channels, ratio=0.5):
        super().__init__()
        self.bottleneck = DeconvBottleneck(channels, channels, relu_out=False, ratio=ratio)

    def forward(self, x):
        return F.relu(x + self.bottleneck(x))


class DimensionReductionModule(nn.Module):
    """1x1 projection branch + bottleneck branch, added: reduces channels for the next unit."""

    def __init__(self, cin, cout, ratio=0.5):
        super().__init__()
        self.projection = conv_bn_relu(cin, cout, 1, relu=False)
        self.bottleneck = DeconvBottleneck(cin, cout, relu_out=False, ratio=ratio)

    def forward(self, x):
        return F.relu(self.projection(x) + self.bottleneck(x))


class RDUnit(nn.Module):
    """Residual decoder unit (Fig. 6-(a)): unpool, densify, learn details, reduce dimensions."""

    def __init__(self, cin, cout, ratio=0.5):
        super().__init__()
        self.densification = DensificationModule(cin, ratio)
        self.detail = DetailLearningModule(cin, ratio)
        self.reduction = DimensionReductionModule(cin, cout, ratio)

    def forward(self, x, indices):
        x = F.max_unpool2d(x, indices, 2, 2, output_size=(x.shape[-2] * 2, x.shape[-1] * 2))
        return self.reduction(self.detail(self.densification(x)))


def normalized_entropy(probs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Adaptive scale As (eq. 6): per-pixel entropy of (N, C, H, W) probabilities divided by its
    maximum log C, so 0 = certain and 1 = uniform. -> (N, 1, H, W)."""
    h = -(probs * torch.log(probs.clamp_min(eps))).sum(1, keepdim=True)
    return h / math.log(probs.shape[1])


def apply_adaptive_prior(p_net: torch.Tensor, prior: torch.Tensor, detach_scale: bool = False) -> torch.Tensor:
    """Eq. 7-8: P_final = N(P_net + As * Pr), N renormalising each pixel to sum 1.

    detach_scale: treat As as a constant in back-propagation (training). Otherwise the loss
    rewards the decoder for staying uncertain wherever the prior happens to be right."""
    scale = normalized_entropy(p_net)
    final = p_net + (scale.detach() if detach_scale else scale) * prior
    return final / final.sum(1, keepdim=True)


class ExemplarPrior(nn.Module):
    """Eq. 5: the mean ground truth of the N exemplars nearest in 5-point PCA space.

    Buffers (filled by `fit`, resized on load so a checkpoint of any exemplar count loads):
      mean (10,), components (K, 10): PCA of the exemplars' flattened five points
      codes (E, K): each exemplar's projection; labels (E, S, S) uint8 ground truth (255 = ignore)
    """

    def __init__(self, neighbours=5, components=6):
        super().__init__()
        self.neighbours = neighbours
        self.num_components = components
        self.register_buffer("mean", torch.zeros(10))
        self.register_buffer("components", torch.zeros(0, 10))
        self.register_buffer("codes", torch.zeros(0, 0))
        self.register_buffer("labels", torch.zeros(0, 0, 0, dtype=torch.uint8))

    @property
    def ready(self) -> bool:
        return self.labels.shape[0] > 0

    def fit(self, five: np.ndarray, labels: np.ndarray):
        """five (E, 5, 2) crop px, labels (E, S, S) uint8 at the model's input size."""
        x = torch.as_tensor(np.asarray(five, np.float32).reshape(len(five), 10))
        mean = x.mean(0)
        _, _, vt = torch.linalg.svd(x - mean, full_matrices=False)
        comps = vt[: min(self.num_components, vt.shape[0])]
        self.mean = mean
        self.components = comps.contiguous()
        self.codes = (x - mean) @ comps.T
        self.labels = torch.as_tensor(np.asarray(labels, np.uint8))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("mean", "components", "codes", "labels"):
            if prefix + name in state_dict:  # exemplar count is data-dependent: take the stored shape
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, five: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
        """(N, 5, 2) five points -> prior (N, C, S, S), zeros for faces without valid points.

        exclude_self: during training a training image is its own nearest exemplar (distance
        0); it is skipped so that the net does not learn to copy its own label from the prior.
        """
        n = five.shape[0]
        e, s = self.labels.shape[0], self.labels.shape[-1]
        prior = torch.zeros(n, NUM_CLASSES, s, s, device=five.device)
        if e == 0:
            return prior
        flat = five.reshape(n, 10).float()
        valid = torch.isfinite(flat).all(1)
        if not valid.any():
            return prior
        # buffers may be fp16 (TorchParser on CUDA): the distances are computed in fp32
        codes = (flat[valid] - self.mean.float()) @ self.components.float().T
        dist = torch.cdist(codes, self.codes.float())
        if exclude_self:
            dist = torch.where(dist < 1e-3, torch.full_like(dist, float("inf")), dist)
        k = min(self.neighbours, e)
        nearest = dist.topk(k, largest=False).indices  # (V, k)
        labels = self.labels[nearest].long()  # (V, k, S, S)
        onehot = F.one_hot(labels.clamp_max(NUM_CLASSES), NUM_CLASSES + 1)[..., :NUM_CLASSES]  # ignore -> 0
        prior[valid] = onehot.float().mean(1).permute(0, 3, 1, 2)
        return prior


class REDNet(TierNet):
    """RE-Net encoder + RD-Net decoder + classifier; `forward` returns P_net logits."""
    defaults = {
        "input_size": 128,  # the paper uses 224; 128 keeps CPU training feasible here
        "depth": 18, "width": 24, "bottleneck_ratio": 0.5,
        "neighbours": 5,    # N closest exemplars (paper: 5)
        "pca_components": 6,
    }

    @classmethod
    def from_config(cls, config: dict) -> "REDNet":
        c = {**cls.defaults, **config}
        return cls(c["depth"], c["width"], c["neighbours"], c["pca_components"], c["bottleneck_ratio"],
                   c["input_size"])

    def __init__(self, depth=18, width=32, neighbours=5, components=6, bottleneck_ratio=0.5, input_size=128):
        super().__init__()
        self.input_size = int(input_size)
        self.encoder = PoolingResNet(depth, width)
        pooled = self.encoder.pooled_channels  # finest first
        # bring the deepest map to the channels of the last pooling's indices
        self.bottom = DimensionReductionModule(self.encoder.out_channels, pooled[3], bottleneck_ratio)
        outs = (pooled[2], pooled[1], pooled[0], width)
        self.units = nn.ModuleList(RDUnit(pooled[3 - i], outs[i], bottleneck_ratio) for i in range(4))
        self.classifier = nn.Conv2d(width, NUM_CLASSES, 3, padding=1)
        self.prior = ExemplarPrior(neighbours, components)

    def forward(self, image):
        x, indices = self.encoder(image)
        x = self.bottom(x)
        for unit, idx in zip(self.units, reversed(indices)):
            x = unit(x, idx)
        return self.classifier(x)

    def final_probs(self, image, five, exclude_self=False, detach_scale=False):
        """(P_final, P_net): eq. 8 where the prior exists, P_net alone otherwise."""
        p_net = self.forward(image).float().softmax(1)
        if not self.prior.ready:
            return p_net, p_net
        prior = self.prior(five, exclude_self)
        if prior.shape[-1] != p_net.shape[-1]:
            prior = F.interpolate(prior, size=p_net.shape[-2:], mode="nearest")
        return apply_adaptive_prior(p_net, prior, detach_scale), p_net

    def predict(self, batch: dict) -> torch.Tensor:
        return self.final_probs(batch["image"], batch["five"])[0]

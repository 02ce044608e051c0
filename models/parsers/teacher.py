"""Teacher network of Wei et al., "Accurate Facial Image Parsing at Real-Time Speed" (IEEE TIP).

A truncated VGG16 FCN (Sec. VI-A, DeepLab-LargeFOV style [39]):
  * conv1..conv5 of VGG16, 3x3 max-pools with pad 1; pool4 and pool5 keep stride 1;
  * the optimal Normalised Receptive Field (Sec. III-A, Table II/III): the feature maps in
    front of conv5_1 are upsampled x2 (nearest) and fc6 uses dilation 1;
  * fc6 is a 3x3 convolution, fc6/fc7 have 1024 channels (dropout 0.5), fc8 gives 11 logits,
    bilinearly resized to the input;
  * a landmark-heatmap input channel (Sec. III-B) built from the five points of the batch
    (core.align.five_point_heatmap), so it also exists for detector-only faces;
  * trained with softmax loss + the Statistical Contextual loss (Sec. IV, models.training.sc_loss).

Departures from the paper (also on the checkpoint card):
  * No ImageNet weights can be had here: trained from scratch. A plain 16-layer VGG does not
    train from scratch in minutes, so every convolution gets BatchNorm (`batch_norm`,
    set False for the paper's plain VGG16 when ImageNet weights are available). The paper's
    zero-initialised heatmap weights with 100x learning rate (a graft onto pretrained
    weights) are therefore not needed: the 4-channel conv1_1 is initialised like the rest.
  * `width_mult` scales every channel count (1.0 = the paper; the CPU-trained teacher
    uses a narrower width, see checkpoints/teacher.md) and `input_size` may be 128 on the CPU.
  * The softmax loss re-weights the small classes (brows, eyes, nose, lips, mouth) by
    `small_class_weight`: from scratch on ~64 images they otherwise stay at F1 0. The paper
    applies this re-weighting only in the distillation (Sec. V-B).
  * The heatmap has Gaussians at the five alignment points (the paper draws blurred squares
    at the detected landmarks).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.align import five_point_heatmap
from core.classes import NUM_CLASSES
from models.parsers.network import TierNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


# ----------------------------------------------------------------------------------------
# Receptive field (paper Sec. III-A, Eq. 1: r_norm = r / s)
# ----------------------------------------------------------------------------------------
def receptive_field(geometry) -> float:
    """Receptive field (input pixels) of the last layer of a single-path net.

    geometry: sequence of ("conv"|"pool", kernel, stride, dilation) or ("up", factor).
    Standard recursion r += (k - 1) * d * jump; jump *= stride; an x f nearest upsampling
    divides the jump by f (each new cell still sees what its source cell saw)."""
    r, jump = 1.0, 1.0
    for layer in geometry:
        if layer[0] == "up":
            jump /= layer[1]
            continue
        _, k, s, d = layer
        r += (k - 1) * d * jump
        jump *= s
    return r


def normalised_receptive_field(geometry, input_size: int) -> float:
    return receptive_field(geometry) / input_size


def heatmap_batch(five: torch.Tensor, size: int, dtype=torch.float32) -> torch.Tensor:
    """(N, 5, 2) five points in crop pixels -> (N, 1, S, S) landmark heatmaps (Sec. III-B).
    Faces without points (NaN) get an empty map."""
    pts = five.detach().float().cpu().numpy()
    maps = np.zeros((len(pts), 1, size, size), np.float32)
    for i, p in enumerate(pts):
        if np.isfinite(p).all():
            maps[i, 0] = five_point_heatmap(p, size)
    return torch.from_numpy(maps).to(device=five.device, dtype=dtype)


def normalise(image: torch.Tensor) -> torch.Tensor:
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


def network_input(batch: dict, landmark_channel: bool) -> torch.Tensor:
    """Normalised RGB, with the landmark heatmap stacked as a 4th channel when asked."""
    image = normalise(batch["image"])
    if not landmark_channel:
        return image
    heat = heatmap_batch(batch["five"], image.shape[-1], image.dtype).to(image.device)
    return torch.cat([image, heat], 1)


def conv_block(cin, cout, dilation=1, batch_norm=True, kernel=3):
    layers = [nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                        bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def init_fcn_weights(model: nn.Module, head: nn.Conv2d):
    """He init for every convolution, zero biases, and small initial logits from `head`
    (DeepLab's fc8 init)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    nn.init.normal_(head.weight, std=0.01)


def scaled(channels: int, width_mult: float) -> int:
    return max(4, int(round(channels * width_mult)))


class LandmarkChannelFCN(TierNet):
    """What the teacher and the Student share: an FCN on RGB (+ the landmark heatmap channel)."""
    input_size: int
    landmark_channel: bool

    @classmethod
    def from_config(cls, config: dict) -> "LandmarkChannelFCN":
        c = {**cls.defaults, **config}
        return cls(**{k: c[k] for k in cls.defaults})

    def logits(self, batch: dict) -> torch.Tensor:
        return self(network_input(batch, self.landmark_channel))

    def predict(self, batch: dict) -> torch.Tensor:
        return torch.softmax(self.logits(batch).float(), 1)


class TeacherNet(LandmarkChannelFCN):
    """Truncated VGG16 FCN with the optimal r_norm; forward(x) -> logits (N, 11, S, S)."""
    # the paper's full width; the CPU-trained teacher overrides width_mult and input_size
    defaults = {"input_size": 256, "width_mult": 1.0, "fc_dim": 1024, "fc6_dilation": 1, "conv5_upsample": 2,
                "landmark_channel": True, "batch_norm": True, "dropout": 0.5}

    def __init__(self, width_mult=1.0, fc_dim=1024, fc6_dilation=1, conv5_upsample=2,
                 landmark_channel=True, batch_norm=True, dropout=0.5, num_classes=NUM_CLASSES, input_size=256):
        super().__init__()
        self.input_size, self.landmark_channel = int(input_size), bool(landmark_channel)
        self.conv5_upsample = conv5_upsample
        cin = 4 if landmark_channel else 3
        blocks = []
        for widths in VGG16_BLOCKS:
            layers = []
            for w in widths:
                layers.append(conv_block(cin, scaled(w, width_mult), batch_norm=batch_norm))
                cin = scaled(w, width_mult)
            blocks.append(nn.Sequential(*layers))
        self.conv1, self.conv2, self.conv3, self.conv4, self.conv5 = blocks
        # pool1-3 stride 2, pool4/pool5 stride 1 (Sec. VI-A: "strides in pool4 and pool5 are removed")
        self.pools = nn.ModuleList([nn.MaxPool2d(3, s, 1) for s in (2, 2, 2, 1, 1)])
        fc = scaled(fc_dim, width_mult)
        self.fc6 = conv_block(cin, fc, dilation=fc6_dilation, batch_norm=batch_norm)
        self.fc7 = conv_block(fc, fc, batch_norm=batch_norm, kernel=1)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)  # element-wise, as Caffe's
        self.fc8 = nn.Conv2d(fc, num_classes, 1)
        # sc-loss feature centres (Sec. IV): training state, kept with the weights (11x11 floats)
        self.register_buffer("sc_centres", torch.zeros(num_classes, num_classes))
        init_fcn_weights(self, self.fc8)

    def forward(self, x):
        size = x.shape[-2:]
        for i, block in enumerate((self.conv1, self.conv2, self.conv3, self.conv4)):
            x = self.pools[i](block(x))
        if self.conv5_upsample > 1:  # Sec. VI-B: features before conv5_1 upsampled x2, nearest
            x = F.interpolate(x, scale_factor=self.conv5_upsample, mode="nearest")
        x = self.pools[4](self.conv5(x))
        x = self.drop7(self.fc7(self.drop6(self.fc6(x))))
        return F.interpolate(self.fc8(x), size=size, mode="bilinear", align_corners=False)


def teacher_geometry(config: dict):
    """Layer geometry of TeacherNet for receptive_field()."""
    g = [("conv", 3, 1, 1)] * 2 + [("pool", 3, 2, 1)]
    g += [("conv", 3, 1, 1)] * 2 + [("pool", 3, 2, 1)]
    g += [("conv", 3, 1, 1)] * 3 + [("pool", 3, 2, 1)]
    g += [("conv", 3, 1, 1)] * 3 + [("pool", 3, 1, 1)]
    if config.get("conv5_upsample", 2) > 1:
        g += [("up", config.get("conv5_upsample", 2))]
    g += [("conv", 3, 1, 1)] * 3 + [("pool", 3, 1, 1)]
    g += [("conv", 3, 1, config.get("fc6_dilation", 1)), ("conv", 1, 1, 1), ("conv", 1, 1, 1)]
    return g

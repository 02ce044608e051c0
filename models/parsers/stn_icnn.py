"""STN-iCNN: end-to-end face parsing with interlinked CNNs and a spatial transformer
(Yin et al.; iCNN of Zhou et al. 2015).

Pipeline (section 2.1, eq. 1-6): the aligned crop (S = 256 here) is resized to 128 for a coarse
iCNN K; a localisation net L turns its soft mask into one affine theta per part (eq. 8:
scale + translation only); a differentiable crop (affine_grid/grid_sample) cuts each part out
of the full-resolution crop; part iCNNs label the patches; the inverse transform pastes the
part predictions back (eq. 5).

The paper parses the inner-face parts only. For the 11-class interface, the coarse iCNN's
prediction supplies skin, hair and background (and is the fallback for everything outside the
pasted patches); the part iCNNs replace the brows, eyes, nose and mouth inside their patches.

Training (section 2.5.2, models.training.recipes.stn_icnn), three stages of the shared loop:
  coarse    pre-train K (cross-entropy with the resized label, eq. 11)
  localizer pre-train L on K's masks: Smooth-L1 to the affines computed from the labels (eq. 12-14)
  end2end   everything: the part cross-entropy on patches cut by the predicted theta (eq. 10),
            plus (our additions, said so in the card) the coarse loss, which keeps skin/hair/bg
            trained, and the eq. 14 loss as a regulariser, so that on a tiny set the crops do not
            drift off the parts (an empty patch is an easy zero loss).
Patch sides are odd (section 3.3): with theta from eq. 14 and align_corners=False, the sampling
grid then falls on integer pixels and the crop equals a plain slice.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.classes import (INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NOSE, NUM_CLASSES,
                            RIGHT_BROW, RIGHT_EYE, UPPER_LIP)
from models.parsers.network import TierNet
from models.parsers.resnet import conv_bn_relu

COARSE_SIZE = 128  # the paper's input of K (section 3.3)

# (part name, its classes, which part iCNN, horizontal flip so one iCNN serves both sides)
PARTS = (
    ("left_brow", (LEFT_BROW,), "brow", False),
    ("right_brow", (RIGHT_BROW,), "brow", True),
    ("left_eye", (LEFT_EYE,), "eye", False),
    ("right_eye", (RIGHT_EYE,), "eye", True),
    ("nose", (NOSE,), "nose", False),
    ("mouth", (UPPER_LIP, INNER_MOUTH, LOWER_LIP), "mouth", False),
)
PART_MODELS = {"brow": 1, "eye": 1, "nose": 1, "mouth": 3}  # part classes besides background
# Where each part sits in the aligned crop (x, y in units of the side): eyes and mouth are the
# core.align template, brows and nose the FaceSynthetics training means (std 3-8 px at 256).
# The localisation net starts there and learns the offsets; STN practice starts at identity.
CANONICAL_CENTRES = ((0.42, 0.425), (0.58, 0.425), (0.40, 0.48), (0.60, 0.48), (0.50, 0.565), (0.50, 0.70))


def downsample(x):
    return F.max_pool2d(x, 3, 2, 1)


class InterlinkLayer(nn.Module):
    """One interlinking layer (Fig. 2): every scale concatenates its coarser neighbour
    (nearest-upsampled) and its finer neighbour (max-pooled), then two convolutions."""

    def __init__(self, channels, k):
        super().__init__()
        n = len(channels)
        self.nodes = nn.ModuleList()
        for i, c in enumerate(channels):
            cin = c + (channels[i - 1] if i > 0 else 0) + (channels[i + 1] if i < n - 1 else 0)
            self.nodes.append(nn.Sequential(conv_bn_relu(cin, c, k), conv_bn_relu(c, c, k)))

    def forward(self, feats):
        out = []
        for i, node in enumerate(self.nodes):
            parts = [feats[i]]
            if i > 0:
                parts.insert(0, downsample(feats[i - 1]))
            if i < len(feats) - 1:
                parts.append(F.interpolate(feats[i + 1], size=feats[i].shape[-2:], mode="nearest"))
            out.append(node(torch.cat(parts, 1)))
        return out


class ICNN(nn.Module):
    """Interlinked CNN: an image pyramid of four scales, no downsampling inside a scale,
    interlinking layers between scales, then coarse-to-fine output integration and three
    final convolutions (Zhou et al. 2015; BN + ReLU added as in STN-iCNN section 2.2)."""

    def __init__(self, in_channels, labels, channels=(8, 16, 24, 32), k=5, interlinks=3, last_k=9):
        super().__init__()
        self.inputs = nn.ModuleList(conv_bn_relu(in_channels, c, k) for c in channels)
        self.interlinks = nn.ModuleList(InterlinkLayer(channels, k) for _ in range(interlinks))
        self.integration = nn.ModuleList(conv_bn_relu(channels[i] + channels[i + 1], channels[i], k)
                                         for i in range(len(channels) - 1))
        self.last = nn.Sequential(conv_bn_relu(channels[0], 2 * labels + 8, k),
                                  nn.Conv2d(2 * labels + 8, labels, k, padding=k // 2),
                                  nn.Conv2d(labels, labels, last_k, padding=last_k // 2))

    def forward(self, x):
        pyramid = [x]
        for _ in range(len(self.inputs) - 1):
            pyramid.append(downsample(pyramid[-1]))
        feats = [conv(p) for conv, p in zip(self.inputs, pyramid)]
        for layer in self.interlinks:
            feats = layer(feats)
        y = feats[-1]
        for i in range(len(feats) - 2, -1, -1):  # coarse to fine
            up = F.interpolate(y, size=feats[i].shape[-2:], mode="nearest")
            y = self.integration[i](torch.cat([feats[i], up], 1))
        return self.last(y)


class LocalizationNet(nn.Module):
    """Fig. 3: eight conv-BN-ReLU layers, an average pooling (3, stride 2) after every two, a
    fully connected layer -> (s_x, s_y, t_x, t_y) per part, assembled into eq. 8's theta.
    Channels are narrower than the paper's VGG-like net to fit the CPU."""

    def __init__(self, in_channels, parts, channels=(8, 16, 32, 64), size=COARSE_SIZE, init_scale=None,
                 init_centres=None, fc_channels=16):
        super().__init__()
        layers, cin = [], in_channels
        for c in channels:
            layers += [conv_bn_relu(cin, c, 3), conv_bn_relu(c, c, 3), nn.AvgPool2d(3, 2, 1)]
            cin = c
        layers.append(conv_bn_relu(cin, fc_channels, 1))
        cin = fc_channels
        self.features = nn.Sequential(*layers)
        side = size
        for _ in channels:
            side = (side - 1) // 2 + 1
        self.fc = nn.Linear(cin * side * side, parts * 4)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        # the FC predicts offsets from a canonical theta: each crop starts at its canonical place
        # at its nominal scale (STN practice starts at identity)
        base = torch.zeros(parts, 4)
        if init_scale is not None:
            base[:, :2] = torch.as_tensor(init_scale, dtype=torch.float32).view(-1, 1)
        if init_centres is not None:  # centre u in [0, 1] of the side -> t = 2u - 1
            base[:, 2:] = 2 * torch.as_tensor(init_centres, dtype=torch.float32) - 1
        self.register_buffer("base", base)
        self.parts = parts

    # Adam first moves every weight by ~lr whatever its gradient; summed over the FC's 1,024
    # inputs that moved the crops by tens of pixels per step (measured: the theta loss rose 15x
    # from its canonical start). Scaling the offsets keeps a step near a pixel at the paper's lr.
    OFFSET_SCALE = 0.01

    def forward(self, mask):
        offsets = self.fc(self.features(mask).flatten(1)).view(-1, self.parts, 4)
        return params_to_theta(self.base + self.OFFSET_SCALE * offsets)


def params_to_theta(p: torch.Tensor) -> torch.Tensor:
    """(N, P, 4) = (s_x, s_y, t_x, t_y) -> (N, P, 2, 3) = [[s_x, 0, t_x], [0, s_y, t_y]] (eq. 8)."""
    zero = torch.zeros_like(p[..., 0])
    row0 = torch.stack([p[..., 0], zero, p[..., 2]], -1)
    row1 = torch.stack([zero, p[..., 1], p[..., 3]], -1)
    return torch.stack([row0, row1], -2)


def crop(image: torch.Tensor, theta: torch.Tensor, side: int, mode: str = "bilinear") -> torch.Tensor:
    """Grid transformer T_theta (eq. 3, 7): a side x side patch of (N, C, H, W); outside = 0."""
    grid = F.affine_grid(theta, (image.shape[0], image.shape[1], side, side), align_corners=False)
    return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)


def invert_theta(theta: torch.Tensor) -> torch.Tensor:
    """Inverse of eq. 8's theta: [[1/s_x, 0, -t_x/s_x], [0, 1/s_y, -t_y/s_y]]."""
    s = torch.stack([theta[..., 0, 0], theta[..., 1, 1]], -1)
    t = theta[..., :, 2]
    p = torch.cat([1 / s, -t / s], -1)
    return params_to_theta(p)


def paste(patch: torch.Tensor, theta: torch.Tensor, size) -> torch.Tensor:
    """Inverse grid transformer T_theta^-1 (eq. 5): the patch placed back on an (H, W) canvas."""
    inv = invert_theta(theta)
    grid = F.affine_grid(inv, (patch.shape[0], patch.shape[1], size[0], size[1]), align_corners=False)
    return F.grid_sample(patch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def merge_part(probs: torch.Tensor, part_probs: torch.Tensor, mask: torch.Tensor, classes) -> torch.Tensor:
    """Inside a pasted patch (mask in [0, 1]) the part iCNN decides its classes; its background
    mass is shared among the other classes in the proportions `probs` already gives them."""
    classes = list(classes)
    others = torch.ones(probs.shape[1], dtype=torch.bool, device=probs.device)
    others[classes] = False
    inside = probs.clone()
    other_sum = (probs * others.view(1, -1, 1, 1)).sum(1, keepdim=True).clamp_min(1e-6)
    inside = torch.where(others.view(1, -1, 1, 1), probs / other_sum * part_probs[:, :1], inside)
    inside[:, classes] = part_probs[:, 1:]
    return (1 - mask) * probs + mask * inside


class STNiCNN(TierNet):
    defaults = {
        "input_size": 256,  # the crop the parts are cut from; K itself sees 128 (section 3.3)
        # odd sides (section 3.3), sized to the parts of a 256 aligned crop (median widths: brow
        # 34, eye 17, nose 33x47, mouth 40x35 px on FaceSynthetics); the paper uses 81 on Helen
        "patch_sizes": [65, 65, 41, 41, 65, 81],
        "channels": [8, 16, 24, 32], "loc_channels": [8, 16, 32, 64],
    }

    @classmethod
    def from_config(cls, config: dict) -> "STNiCNN":
        c = {**cls.defaults, **config}
        return cls(c["patch_sizes"], tuple(c["channels"]), tuple(c["loc_channels"]), c["input_size"])

    def __init__(self, patch_sizes, channels=(8, 16, 24, 32), loc_channels=(8, 16, 32, 64), input_size=256):
        super().__init__()
        self.input_size = int(input_size)
        self.patch_sizes = tuple(int(s) for s in patch_sizes)
        assert all(s % 2 == 1 for s in self.patch_sizes), "patch sides must be odd (paper section 3.3)"
        self.coarse = ICNN(3, NUM_CLASSES, channels)
        self.localizer = LocalizationNet(NUM_CLASSES, len(PARTS), loc_channels,
                                         init_scale=[s / input_size for s in self.patch_sizes],
                                         init_centres=CANONICAL_CENTRES)
        self.part_nets = nn.ModuleDict({k: ICNN(3, n + 1, channels) for k, n in PART_MODELS.items()})
        self.register_buffer("mean", torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1), persistent=False)

    def coarse_logits(self, image):
        small = F.interpolate(image, size=(COARSE_SIZE, COARSE_SIZE), mode="bilinear", align_corners=False,
                              antialias=True) if image.shape[-1] != COARSE_SIZE else image
        return self.coarse(self.normalize(small))

    def normalize(self, x):
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def part_logits(self, image, theta):
        """Each part's logits (N, n+1, side, side) in the image's orientation, eq. 3-4."""
        image = self.normalize(image)
        out = []
        for p, (_, _, kind, flip) in enumerate(PARTS):
            patch = crop(image, theta[:, p], self.patch_sizes[p])
            if flip:
                out.append(self.part_nets[kind](patch.flip(-1)).flip(-1))
            else:
                out.append(self.part_nets[kind](patch))
        return out

    def forward(self, image):
        """-> coarse logits (N, 11, 128, 128), theta (N, 6, 2, 3), part logits (list)."""
        coarse = self.coarse_logits(image)
        theta = self.localizer(coarse.softmax(1))
        return coarse, theta, self.part_logits(image, theta)

    def assemble(self, image, coarse, theta, parts):
        """Eq. 5-6: coarse probabilities at the input size with the part predictions pasted in."""
        size = image.shape[-2:]
        probs = F.interpolate(coarse.float().softmax(1), size=size, mode="bilinear", align_corners=False)
        ones = torch.ones(image.shape[0], 1, 1, 1, device=image.device, dtype=torch.float32)
        for p, (_, classes, _, _) in enumerate(PARTS):
            t = theta[:, p].float()
            side = self.patch_sizes[p]
            mask = paste(ones.expand(-1, 1, side, side), t, size)
            pasted = paste(parts[p].float().softmax(1), t, size) / mask.clamp_min(1e-6)
            probs = merge_part(probs, pasted, mask, classes)
        return probs / probs.sum(1, keepdim=True)

    def predict(self, batch: dict) -> torch.Tensor:
        coarse, theta, parts = self(batch["image"])
        return self.assemble(batch["image"], coarse, theta, parts)

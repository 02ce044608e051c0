"""A small ResNet-18/34 (He et al. 2016) trained from scratch, shared by RED-Net and BSPNet.

No pretrained weights exist on these machines, so the width is a parameter (the papers use
64 at the first stage; CPU training here uses 16-32). Two variants of one set of blocks:
  * `ResNet` - the classic layout (7x7 stride-2 stem, max-pool, strided stages); stage 4 can
    be dilated instead of strided (output stride 16, as BSPNet section 4 asks).
  * `PoolingResNet` - stride-1 stages separated by max-pooling layers that return their
    indices, so a decoder can max-unpool with them (RED-Net's RE-Net, Fig. 3).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

LAYOUTS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn_relu(cin, cout, k=3, stride=1, dilation=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, bias=False),
              nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride, dilation)
        self.conv2 = conv_bn_relu(cout, cout, 3, 1, dilation, relu=False)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else conv_bn_relu(cin, cout, 1, stride, relu=False))

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def make_stage(cin, cout, blocks, stride=1, dilation=1):
    layers = [BasicBlock(cin, cout, stride, 1 if stride > 1 else dilation)]
    layers += [BasicBlock(cout, cout, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def stage_widths(width):
    return (width, 2 * width, 4 * width, 8 * width)


class Normalize(nn.Module):
    """[0, 1] RGB -> ImageNet-normalised (the models normalise inside forward)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class ResNet(nn.Module):
    """Classic ResNet feature extractor: returns the four stage outputs (strides 4, 8, 16, 16|32)."""

    def __init__(self, depth=18, width=64, dilate_last=True):
        super().__init__()
        w = stage_widths(width)
        blocks = LAYOUTS[depth]
        self.normalize = Normalize()
        self.stem = nn.Sequential(conv_bn_relu(3, width, 7, 2), nn.MaxPool2d(3, 2, 1))
        self.layer1 = make_stage(width, w[0], blocks[0])
        self.layer2 = make_stage(w[0], w[1], blocks[1], stride=2)
        self.layer3 = make_stage(w[1], w[2], blocks[2], stride=2)
        # dilation 2 instead of stride 2 keeps stage 4 at 1/16 (BSPNet section 4)
        self.layer4 = (make_stage(w[2], w[3], blocks[3], dilation=2) if dilate_last
                       else make_stage(w[2], w[3], blocks[3], stride=2))
        self.channels = w

    def forward(self, x):
        c1 = self.layer1(self.stem(self.normalize(x)))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c1, c2, c3, c4


class PoolingResNet(nn.Module):
    """Residual encoder with max-pooling between units (RED-Net's RE-Net).

    Unit 1 is a 3x3 conv at full resolution, units 2-5 are ResNet stages at stride 1; four
    2x2 max-pools with indices separate them (the paper's sixth unit is dropped after its
    face-recognition pre-training, which is not possible here). Returns the last feature map,
    the pooling indices (finest first) and the channels of each pooled map.
    """

    def __init__(self, depth=18, width=32):
        super().__init__()
        w = stage_widths(width)
        blocks = LAYOUTS[depth]
        self.normalize = Normalize()
        self.unit1 = conv_bn_relu(3, width, 3)
        self.unit2 = make_stage(width, w[0], blocks[0])
        self.unit3 = make_stage(w[0], w[1], blocks[1])
        self.unit4 = make_stage(w[1], w[2], blocks[2])
        self.unit5 = make_stage(w[2], w[3], blocks[3])
        self.pooled_channels = (width, w[0], w[1], w[2])  # channels at each pooling, finest first
        self.out_channels = w[3]

    def forward(self, x):
        indices = []
        x = self.unit1(self.normalize(x))
        for unit in (self.unit2, self.unit3, self.unit4, self.unit5):
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(idx)
            x = unit(x)
        return x, indices

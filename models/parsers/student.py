"""Student Network of Wei et al., "Accurate Facial Image Parsing at Real-Time Speed" (IEEE TIP,
Sec. V-A and Table IX), distilled from the teacher.

Table IX, at full width (about 4.3 M parameters, ~8.5 MB in fp16):
  conv1_1, conv1_2   64, 3x3        copied from the teacher (Sec. V-A "reuse shallow layers")
  pool1              max 3x3, stride 2
  conv2              64, 3x3        \
  pool2              max 3x3, stride 2
  conv3              96, 3x3         |
  pool3              max 3x3, stride 2
  conv4              192, 3x3, d 1   |  each conv: BatchNorm + PReLU
  pool4..pool7       max 3x3, stride 1
  conv5              256, 3x3, d 2   |  hybrid dilations 1-2-3 on conv4-6 (Sec. V-A, [35])
  conv6              480, 3x3, d 3   |
  conv7              480, 3x3, d 1  /
  conv8              720, 1x1, ReLU + dropout
  output             11, 1x1; bilinear to the input size ("blob align")

Departures and choices (also on the checkpoint card):
  * Strides: the text says only pool1 and pool3 have stride, Table IX gives stride 2 to
    pool1-3. We follow the table (`pool_strides`, default (2, 2, 2, 1, 1, 1, 1)); the text's
    variant is (2, 1, 2, 1, 1, 1, 1). By the receptive-field recursion the table's layout
    gives r = 207 px (r_norm 0.81 at 256), the text's r = 111 px (r_norm 0.43, close to the
    paper's optimum 0.445, Table III) at four times the cost of conv3-conv8.
  * conv1 is copied from the teacher with the teacher's BatchNorm folded in (our teacher has
    BN, the paper's VGG16 has none), so it is a plain conv + ReLU as in Table IX. Its width is
    the teacher's conv1 width (`conv1_channels`): 64 for the full teacher, narrower when the
    teacher was trained narrow on the CPU. It is kept fixed while the student trains
    (`freeze_conv1`); the paper does not say whether it is fine-tuned.
  * The student takes the landmark heatmap channel as well, since its conv1 is the teacher's.
  * The CPU-trained checkpoint runs at 128x128 (checkpoints/student.md says why and what it
    costs); `input_size` 256 is the paper's.
"""
import torch.nn as nn
import torch.nn.functional as F

from core.classes import NUM_CLASSES
from models.parsers.teacher import LandmarkChannelFCN, init_fcn_weights, receptive_field, scaled

TABLE_IX_STRIDES = (2, 2, 2, 1, 1, 1, 1)
TEXT_STRIDES = (2, 1, 2, 1, 1, 1, 1)
# (channels, dilation) of conv2..conv7 (Table IX)
TABLE_IX_CONVS = ((64, 1), (96, 1), (192, 1), (256, 2), (480, 3), (480, 1))
CONV8_CHANNELS = 720


def conv_bn_prelu(cin, cout, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.PReLU(cout))


class StudentNet(LandmarkChannelFCN):
    """Table IX single-path FCN; forward(x) -> logits (N, 11, S, S)."""
    defaults = {"input_size": 256, "width_mult": 1.0, "conv1_channels": 64, "pool_strides": list(TABLE_IX_STRIDES),
                "landmark_channel": True, "dropout": 0.5}

    def __init__(self, width_mult=1.0, conv1_channels=64, pool_strides=TABLE_IX_STRIDES,
                 landmark_channel=True, dropout=0.5, num_classes=NUM_CLASSES, input_size=256):
        super().__init__()
        self.input_size, self.landmark_channel = int(input_size), bool(landmark_channel)
        pool_strides = tuple(pool_strides)
        cin = 4 if landmark_channel else 3
        c1 = conv1_channels
        self.conv1 = nn.Sequential(nn.Conv2d(cin, c1, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(c1, c1, 3, padding=1), nn.ReLU(inplace=True))
        self.pools = nn.ModuleList([nn.MaxPool2d(3, s, 1) for s in pool_strides])
        convs, cin = [], c1
        for channels, dilation in TABLE_IX_CONVS:
            convs.append(conv_bn_prelu(cin, scaled(channels, width_mult), dilation))
            cin = scaled(channels, width_mult)
        self.convs = nn.ModuleList(convs)
        c8 = scaled(CONV8_CHANNELS, width_mult)
        self.conv8 = nn.Sequential(nn.Conv2d(cin, c8, 1), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.output = nn.Conv2d(c8, num_classes, 1)
        init_fcn_weights(self, self.output)

    def forward(self, x):
        size = x.shape[-2:]
        x = self.pools[0](self.conv1(x))
        for conv, pool in zip(self.convs, self.pools[1:]):
            x = pool(conv(x))
        return F.interpolate(self.output(self.conv8(x)), size=size, mode="bilinear", align_corners=False)


def student_geometry(config: dict):
    strides = tuple(config.get("pool_strides", TABLE_IX_STRIDES))
    g = [("conv", 3, 1, 1)] * 2 + [("pool", 3, strides[0], 1)]
    for (_, dilation), stride in zip(TABLE_IX_CONVS, strides[1:]):
        g += [("conv", 3, 1, dilation), ("pool", 3, stride, 1)]
    return g + [("conv", 1, 1, 1), ("conv", 1, 1, 1)]


def student_receptive_field(config: dict) -> float:
    return receptive_field(student_geometry(config))

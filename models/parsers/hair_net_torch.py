"""MediaPipe's 2019 hair segmentation network, rebuilt in torch (weights: checkpoints/hair_net.pt;
loading, and the ONNX Runtime path that runs without torch: models.parsers.hair_net).

The graph is `mediapipe/models/hair_segmentation.tflite` at mediapipe commit d68f5e41 (2019,
Apache-2.0; see checkpoints/hair_net.md and checkpoints/LICENSE-mediapipe-hair.txt). It is an
ENet-like encoder-decoder with PReLU everywhere:

    input (N, 4, H, W): RGB in [0, 1] + the previous frame's hair mask (0 for a still image)
    stem        2x2/2 conv 4->8, 2x2/2 conv 8->32                         H/4, 32 ch
    down1       bottleneck 32->64 (2x2/2 reduce; skip: max pool + 1x1)   H/8, 64 ch   + 2 blocks
    down2       bottleneck 64->128                                        H/16, 128 ch + 4 blocks
    down3       bottleneck 128->128 (skip: max pool only)                 H/32, 128 ch
                + 12 blocks: separable 3x3, dilated 3x3 (2, 4, 8), 5x5 depthwise, then a plain 3x3
    up1         3x3/2 transposed conv; skip: 1x1 then max-unpool at down3's maxima; concat
                with down2's first output; projection block                 H/16, 128 ch
    up2, up3    the same with down2's and down1's maxima                    H/8, H/4
    head        2x2/2 transposed conv 32->8, PReLU, 2x2/2 transposed conv 8->2 (logits)

The layers are created in the order the original Keras model created them (main branch, then
the skip, then the block's closing PReLU), so the converter can pair them with the tflite
tensors conv2d_N, depthwise_conv2d_N, p_re_lu_N and conv2d_transpose_N in numeric order.
Needs only torch (no tflite, no opencv) at run time. The max pooling with argmax and the
unpooling are written as a one-hot mask of each window's first maximum, so that the network
exports to ONNX (torch's exporter has no max_unpool2d); the result is the same.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding for one axis: the odd pixel goes at the end, not the start."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class TfConv2d(nn.Conv2d):
    """nn.Conv2d with TensorFlow padding ('same' or 'valid'), done by an explicit F.pad because
    torch's symmetric padding differs from TF's for even kernels or stride 2."""

    def __init__(self, cin, cout, kernel, stride=1, dilation=1, groups=1, tf_padding="same"):
        super().__init__(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups, bias=True)
        self.tf_padding = tf_padding

    def forward(self, x):
        if self.tf_padding == "same":
            top, bottom = _same_pad(x.shape[2], self.kernel_size[0], self.stride[0], self.dilation[0])
            left, right = _same_pad(x.shape[3], self.kernel_size[1], self.stride[1], self.dilation[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def pointwise(cin, cout):
    return TfConv2d(cin, cout, 1, tf_padding="valid")


def depthwise(ch, kernel=3):
    return TfConv2d(ch, ch, kernel, groups=ch, tf_padding="same")


def strided(cin, cout):
    """2x2 stride-2 conv; 'valid' in the graph (exact halving, no padding at all)."""
    return TfConv2d(cin, cout, 2, stride=2, tf_padding="valid")


class TransposeConvBias(nn.Module):
    """MediaPipe's Convolution2DTransposeBias, stride 2, 'same': the full transposed convolution
    (2n - 2 + k pixels) cropped to 2n, with floor((k - 2) / 2) pixels dropped at the start, i.e.
    for k = 3 none at the start and one at the end (torch's padding/output_padding would crop
    symmetrically instead). Weight layout (in, out, kh, kw) as torch's conv_transpose2d.

    MediaPipe's kernel (transpose_conv_bias.cc) gives exactly this whenever n is even, which is
    every call in the graph for inputs that are multiples of 64 (256, 512). For odd n (input
    96, 160, ..., 480: H/32 odd) its Prepare() makes 2n - 1 rows, which the following ADD
    cannot take, so the tflite graph itself cannot run there; we keep 2n rows, as Keras's
    Conv2DTranspose(padding="same") that the model was trained as does."""

    def __init__(self, cin, cout, kernel, stride=2):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.zeros(cin, cout, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        k, s = self.weight.shape[2], self.stride
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=s)
        start = max(k - s, 0) // 2
        return y[:, :, start:start + s * x.shape[2], start:start + s * x.shape[3]]


class SeparableBody(nn.Module):
    """depthwise 3x3, pointwise, PReLU, depthwise 3x3, PReLU (no PReLU after the first depthwise)."""

    def __init__(self, ch):
        super().__init__()
        self.dw1 = depthwise(ch)
        self.pw = pointwise(ch, ch)
        self.act1 = nn.PReLU(ch)
        self.dw2 = depthwise(ch)
        self.act2 = nn.PReLU(ch)

    def forward(self, x):
        return self.act2(self.dw2(self.act1(self.pw(self.dw1(x)))))


class Depthwise5Body(nn.Module):
    """depthwise 5x5, pointwise, PReLU."""

    def __init__(self, ch):
        super().__init__()
        self.dw = depthwise(ch, 5)
        self.pw = pointwise(ch, ch)
        self.act = nn.PReLU(ch)

    def forward(self, x):
        return self.act(self.pw(self.dw(x)))


class ConvBody(nn.Module):
    """full 3x3 conv ('same', optionally dilated), PReLU."""

    def __init__(self, ch, dilation=1):
        super().__init__()
        self.conv = TfConv2d(ch, ch, 3, dilation=dilation, tf_padding="same")
        self.act = nn.PReLU(ch)

    def forward(self, x):
        return self.act(self.conv(x))


def make_body(kind: str, ch: int) -> nn.Module:
    if kind == "sep":
        return SeparableBody(ch)
    if kind == "dw5":
        return Depthwise5Body(ch)
    if kind.startswith("dil"):
        return ConvBody(ch, int(kind[3:]))
    if kind == "conv3":
        return ConvBody(ch)
    raise ValueError(kind)


class Bottleneck(nn.Module):
    """Residual block: 1x1 reduce + PReLU, body, 1x1 expand, + input, PReLU."""

    def __init__(self, ch, mid, kind):
        super().__init__()
        self.reduce = pointwise(ch, mid)
        self.reduce_act = nn.PReLU(mid)
        self.body = make_body(kind, mid)
        self.expand = pointwise(mid, ch)
        self.out_act = nn.PReLU(ch)

    def forward(self, x):
        return self.out_act(self.expand(self.body(self.reduce_act(self.reduce(x)))) + x)


def max_pool_argmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MaxPoolingWithArgmax2D, 2x2 stride 2, no padding: (pooled, mask), the mask 1 at the first
    maximum of each window in row-major order (ties: the first, as MediaPipe and torch) and 0
    elsewhere, at x's size."""
    n, c, h, w = x.shape
    windows = F.pixel_unshuffle(x, 2).reshape(n, c, 4, h // 2, w // 2)   # window positions in row-major order
    pooled, first = windows.max(2)
    mask = (first[:, :, None] == torch.arange(4, device=x.device)[:, None, None]).to(x.dtype)
    return pooled, F.pixel_shuffle(mask.reshape(n, c * 4, h // 2, w // 2), 2)


def max_unpool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MaxUnpooling2D: each value back at its window's maximum (the mask of max_pool_argmax)."""
    n, c, h, w = x.shape
    spread = F.pixel_shuffle(x[:, :, None].expand(n, c, 4, h, w).reshape(n, c * 4, h, w), 2)
    return spread * mask


class DownBottleneck(nn.Module):
    """Halving block: main = 2x2/2 reduce + PReLU, separable body, 1x1 expand; skip = 2x2 max
    pool (where its maxima were is kept for the decoder's unpooling), then a 1x1 conv when the
    width changes. Returns (output, pool mask)."""

    def __init__(self, cin, cout, mid):
        super().__init__()
        self.reduce = strided(cin, mid)
        self.reduce_act = nn.PReLU(mid)
        self.body = SeparableBody(mid)
        self.expand = pointwise(mid, cout)
        self.skip = pointwise(cin, cout) if cin != cout else None
        self.out_act = nn.PReLU(cout)

    def forward(self, x):
        main = self.expand(self.body(self.reduce_act(self.reduce(x))))
        pooled, mask = max_pool_argmax(x)
        skip = self.skip(pooled) if self.skip is not None else pooled
        return self.out_act(main + skip), mask


class UpBottleneck(nn.Module):
    """Doubling block: main = 1x1 reduce + PReLU, 3x3/2 transposed conv + PReLU, 1x1 expand;
    skip = 1x1 conv, then max-unpool (MaxUnpooling2D) with the matching encoder pool mask."""

    def __init__(self, cin, cout, mid):
        super().__init__()
        self.reduce = pointwise(cin, mid)
        self.reduce_act = nn.PReLU(mid)
        self.up = TransposeConvBias(mid, mid, 3)
        self.up_act = nn.PReLU(mid)
        self.expand = pointwise(mid, cout)
        self.skip = pointwise(cin, cout)
        self.out_act = nn.PReLU(cout)

    def forward(self, x, mask):
        main = self.expand(self.up_act(self.up(self.reduce_act(self.reduce(x)))))
        skip = max_unpool(self.skip(x), mask)
        return self.out_act(main + skip)


class ProjectionBottleneck(nn.Module):
    """Residual block after a concat: 1x1 reduce + PReLU, 3x3 conv + PReLU, 1x1 expand; the
    skip is a 1x1 conv when the width changes, else the input."""

    def __init__(self, cin, cout, mid):
        super().__init__()
        self.reduce = pointwise(cin, mid)
        self.reduce_act = nn.PReLU(mid)
        self.body = ConvBody(mid)
        self.expand = pointwise(mid, cout)
        self.skip = pointwise(cin, cout) if cin != cout else None
        self.out_act = nn.PReLU(cout)

    def forward(self, x):
        main = self.expand(self.body(self.reduce_act(self.reduce(x))))
        return self.out_act(main + (self.skip(x) if self.skip is not None else x))


# The 12 blocks at H/32, in graph order.
MIDDLE_KINDS = ["sep", "dil2", "dw5", "dil4", "sep", "dil8", "sep", "dil2", "dw5", "dil4", "sep", "dil8"]


class HairNet(nn.Module):
    """(N, 4, H, W) float in [0, 1] -> (N, 2, H, W) logits (0 background, 1 hair); H and W
    multiples of 32 (64 to match the tflite graph exactly: see TransposeConvBias)."""

    def __init__(self):
        super().__init__()
        self.stem1 = strided(4, 8)
        self.stem1_act = nn.PReLU(8)
        self.stem2 = strided(8, 32)
        self.stem2_act = nn.PReLU(32)
        self.down1 = DownBottleneck(32, 64, 16)
        self.stage1 = nn.Sequential(*[Bottleneck(64, 16, "sep") for _ in range(2)])
        self.down2 = DownBottleneck(64, 128, 32)
        self.stage2 = nn.Sequential(*[Bottleneck(128, 16, "sep") for _ in range(4)])
        self.down3 = DownBottleneck(128, 128, 16)
        self.stage3 = nn.Sequential(*[Bottleneck(128, 8, kind) for kind in MIDDLE_KINDS],
                                    Bottleneck(128, 4, "conv3"))
        self.up1 = UpBottleneck(128, 128, 8)
        self.fuse1 = ProjectionBottleneck(256, 128, 8)
        self.up2 = UpBottleneck(128, 64, 8)
        self.fuse2 = ProjectionBottleneck(128, 64, 4)
        self.up3 = UpBottleneck(64, 32, 4)
        self.fuse3 = ProjectionBottleneck(32, 32, 4)
        self.head_up = TransposeConvBias(32, 8, 2)
        self.head_act = nn.PReLU(8)
        self.head_out = TransposeConvBias(8, 2, 2)

    def forward(self, x):
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"hair network input must be a multiple of 32, got {tuple(x.shape[2:])}")
        x = self.stem2_act(self.stem2(self.stem1_act(self.stem1(x))))
        x, pool1 = self.down1(x)
        skip1 = x                          # concatenated back at H/8 (first output of down1)
        x = self.stage1(x)
        x, pool2 = self.down2(x)
        skip2 = x                          # concatenated back at H/16
        x = self.stage2(x)
        x, pool3 = self.down3(x)
        x = self.stage3(x)
        x = self.fuse1(torch.cat([self.up1(x, pool3), skip2], 1))
        x = self.fuse2(torch.cat([self.up2(x, pool2), skip1], 1))
        x = self.fuse3(self.up3(x, pool1))
        return self.head_out(self.head_act(self.head_up(x)))

    @torch.no_grad()
    def hair_probability(self, x: np.ndarray) -> np.ndarray:
        """(N, 4, H, W) float32 input -> (N, H, W) hair probability (what the ONNX file gives)."""
        return torch.softmax(self(torch.from_numpy(x)), 1)[:, 1].numpy()

    @torch.no_grad()
    def segment(self, rgb: np.ndarray, prev_mask: np.ndarray | None = None, size: int = 512) -> np.ndarray:
        """Hair probability (float32 HxW in [0, 1]) of one uint8 HxWx3 RGB image. The image is
        stretched to size x size (as MediaPipe does), `prev_mask` (HxW, float in [0, 1] or
        uint8 0..255) is the 4th channel, 0 when None (still images / first frame)."""
        if size % 32:
            raise ValueError(f"size must be a multiple of 32, got {size}")
        h, w = rgb.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1)[None].float() / 255
        if prev_mask is None:
            mask = torch.zeros(1, 1, h, w)
        else:
            mask = torch.from_numpy(np.asarray(prev_mask, np.float32))[None, None]
            if np.asarray(prev_mask).dtype == np.uint8:
                mask = mask / 255
        x = torch.cat([image, mask], 1)
        if (h, w) != (size, size):
            x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=True)
        prob = torch.softmax(self(x.to(self.stem1.weight.dtype)).float(), 1)[:, 1:2]
        if (h, w) != (size, size):
            prob = F.interpolate(prob, (h, w), mode="bilinear", align_corners=False, antialias=True)
        return prob[0, 0].clamp(0, 1).numpy().astype(np.float32)

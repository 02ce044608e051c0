"""The teacher (truncated VGG16 FCN) and Student (Table IX) networks of Wei et al., "Accurate
Facial Image Parsing at Real-Time Speed". Their training and the distillation:
tests/models/training/test_distill.py."""
from pathlib import Path

import numpy as np
import pytest
import torch

from core import align
from core.classes import NUM_CLASSES, SKIN
from models.parsers.student import TABLE_IX_STRIDES, TEXT_STRIDES, StudentNet, student_receptive_field
from models.parsers.teacher import TeacherNet, heatmap_batch, receptive_field, teacher_geometry

REPO = Path(__file__).resolve().parents[3]


def table_ix_parameters(cin=4, c1=64):
    """Parameter count written out from Table IX (conv weights + biases, BN, PReLU slopes)."""
    n = (cin * 9 * c1 + c1) + (c1 * 9 * c1 + c1)                   # conv1_1, conv1_2 (+bias, no BN)
    prev = c1
    for c in (64, 96, 192, 256, 480, 480):                         # conv2..conv7, no bias
        n += prev * 9 * c + 2 * c + c                              # + BN (gamma, beta) + PReLU
        prev = c
    n += prev * 720 + 720                                          # conv8 1x1
    n += 720 * NUM_CLASSES + NUM_CLASSES                           # output layer
    return n


def test_student_follows_table_ix():
    net = StudentNet()
    assert sum(p.numel() for p in net.parameters()) == table_ix_parameters()
    fp16_mb = 2 * sum(p.numel() for p in net.parameters()) / 1e6
    assert 8.3 < fp16_mb < 8.7  # the brief's ~8.5 MB
    convs = [m[0] for m in net.convs]
    assert [c.out_channels for c in convs] == [64, 96, 192, 256, 480, 480]
    assert [c.dilation[0] for c in convs[2:5]] == [1, 2, 3]       # hybrid dilations on conv4-6
    assert all(isinstance(m[2], torch.nn.PReLU) and isinstance(m[1], torch.nn.BatchNorm2d) for m in net.convs)
    assert [p.stride for p in net.pools] == list(TABLE_IX_STRIDES)
    assert net.conv8[0].out_channels == 720 and net.output.out_channels == NUM_CLASSES
    net.eval()
    with torch.no_grad():
        out = net(torch.rand(2, 4, 128, 128))
    assert out.shape == (2, NUM_CLASSES, 128, 128)


def test_receptive_fields_and_paper_optimum():
    # the student as printed in Table IX vs the text's "only pool1 and pool3 have stride"
    table = student_receptive_field({"pool_strides": TABLE_IX_STRIDES})
    text = student_receptive_field({"pool_strides": TEXT_STRIDES})
    assert table == 207 and text == 111
    assert abs(text / 256 - 0.445) < 0.02  # Table III's optimum r_norm at 256
    # teacher: x2 upsampling before conv5 shrinks the receptive field (Sec. III-A)
    with_up = receptive_field(teacher_geometry({"conv5_upsample": 2}))
    without = receptive_field(teacher_geometry({"conv5_upsample": 1}))
    assert with_up == 155 and without == 195
    assert receptive_field(teacher_geometry({"conv5_upsample": 2, "fc6_dilation": 4})) == with_up + 8 * 3
    # measured: the gradient of one output cell (before the final resize) spans at most r pixels
    torch.manual_seed(0)
    net = StudentNet(width_mult=0.1, conv1_channels=4, pool_strides=TEXT_STRIDES, dropout=0.0).eval()
    x = torch.rand(1, 4, 256, 256, requires_grad=True)
    h = net.pools[0](net.conv1(x))
    for conv, pool in zip(net.convs, net.pools[1:]):
        h = pool(conv(h))
    h = net.output(net.conv8(h))
    h[0, :, h.shape[-2] // 2, h.shape[-1] // 2].sum().backward()
    cols = torch.nonzero(x.grad[0].abs().sum((0, 1)))
    assert 0.8 * text <= cols.max() - cols.min() + 1 <= text


def test_teacher_shapes_width_and_full_size():
    full = TeacherNet()
    assert 20_000_000 < sum(p.numel() for p in full.parameters()) < 21_000_000  # VGG16 conv + 1024-d fc
    assert full.fc6[0].kernel_size == (3, 3) and full.fc6[0].out_channels == 1024
    assert [p.stride for p in full.pools] == [2, 2, 2, 1, 1]
    narrow = TeacherNet(width_mult=0.25).eval()
    assert narrow.conv1[0][0].out_channels == 16 and narrow.conv1[0][0].in_channels == 4
    with torch.no_grad():
        assert narrow(torch.rand(1, 4, 128, 128)).shape == (1, NUM_CLASSES, 128, 128)


def test_landmark_heatmap_peaks_at_the_five_points():
    five = torch.tensor([[[40.0, 60.0], [88.0, 60.0], [64.0, 75.0], [50.0, 90.0], [78.0, 90.0]]])
    nan = torch.full((1, 5, 2), float("nan"))
    heat = heatmap_batch(torch.cat([five, nan]), 128)
    assert heat.shape == (2, 1, 128, 128)
    for x, y in five[0].int().tolist():
        assert heat[0, 0, y, x] == pytest.approx(1.0)
    assert heat[0, 0, 10, 10] < 1e-3 and heat[1].abs().sum() == 0  # no points: empty map


def test_committed_student_checkpoint_parses_the_astronaut():
    path = REPO / "checkpoints" / "student.pt"
    if not path.is_file():
        pytest.skip(f"no committed checkpoint at {path}")
    from models.parsers.registry import create_parser
    from tests.faces import tracked
    image, face = tracked("astronaut")
    crop = align.warp_crop(image, face.matrix)
    five = align.transform_points(face.five, face.matrix)
    parser = create_parser("student", device="cpu")
    probs = parser(crop[None], five[None])
    assert probs.shape == (1, NUM_CLASSES, 256, 256)
    assert np.allclose(probs.sum(1), 1, atol=1e-3)
    labels = probs[0].argmax(0)
    eyes, mouth = five[:2], (five[3] + five[4]) / 2
    # the face centre: between the eye line and the mouth, beside the nose (the cheeks)
    for side in (0, 1):
        x, y = (0.55 * eyes[side] + 0.45 * mouth).round().astype(int)
        x += -12 if side == 0 else 12
        patch = labels[y - 3:y + 4, x - 3:x + 4]
        assert np.mean(patch == SKIN) > 0.5, f"cheek {side}: {np.bincount(patch.ravel(), minlength=11)}"

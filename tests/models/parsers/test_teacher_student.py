"""Teacher (truncated VGG16 FCN), Student (Table IX) and the two-stage distillation of paper 000."""
from pathlib import Path
from types import SimpleNamespace
import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import align
from models.parsers import checkpoint as ckpt
from core.classes import IGNORE, LEFT_EYE, NUM_CLASSES, SKIN
from models.training.distill import (SUPERVISED, UNSUPERVISED, supervised_loss, top_k_keep, unsupervised_loss)
from models.parsers.student import (TABLE_IX_STRIDES, TEXT_STRIDES, StudentNet, StudentTrainable,
                            copy_conv1_from_teacher, student_receptive_field)
from models.parsers.teacher import (TeacherNet, TeacherTrainable, heatmap_batch, receptive_field,
                            teacher_geometry)

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


def test_conv1_copied_from_teacher_with_bn_folded():
    torch.manual_seed(0)
    teacher = TeacherNet(width_mult=0.25)
    for m in teacher.conv1.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    teacher.eval()
    student = StudentNet(conv1_channels=16).eval()
    copy_conv1_from_teacher(student, teacher)
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(student.conv1(x), teacher.conv1(x), atol=1e-5)
    with pytest.raises(ValueError, match="conv1_channels"):
        copy_conv1_from_teacher(StudentNet(conv1_channels=64), teacher)


def test_top_k_filtering_drops_the_k_highest_losses_of_each_image():
    loss = torch.tensor([[[0.1, 5.0, 0.3, 9.0], [0.2, 0.4, 7.0, 0.0]],
                         [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]])
    valid = torch.ones_like(loss, dtype=torch.bool)
    valid[0, 0, 3] = False  # an ignore pixel: never filtered, never counted
    keep = top_k_keep(loss, valid, fraction=0.25)  # K = ceil(0.25 * 7) = 2 and ceil(0.25 * 8) = 2
    assert keep[0].tolist() == [[True, False, True, True], [True, True, False, True]]
    assert keep[1].tolist() == [[True, True, True, True], [True, True, False, False]]
    assert top_k_keep(loss, valid, 0.0).all()


def test_supervised_loss_reweights_small_classes_and_filters_bad_teacher_pixels():
    label = torch.tensor([[[SKIN, LEFT_EYE], [SKIN, IGNORE]]])
    s = torch.zeros(1, NUM_CLASSES, 2, 2, requires_grad=True)
    t = torch.zeros(1, NUM_CLASSES, 2, 2)
    t[0, SKIN, 0, 0] = t[0, LEFT_EYE, 0, 1] = 5.0
    t[0, 0, 1, 0] = 5.0  # the teacher is wrong at (1, 0): background on skin
    cfg = {"small_class_weight": 3.0, "filter_fraction": 0.3, "temperature": 4.0, "kd_weight": 4.0}
    loss, logs = supervised_loss(s, t, label, cfg)  # K = ceil(0.3 * 3 labelled pixels) = 1
    loss.backward()
    g = s.grad[0]
    assert logs["filtered"] == pytest.approx(1 / 3)
    # the wrong teacher pixel (1, 0) is left out of the KL term: its gradient is the softmax
    # loss's alone (weights: skin 1, eye 3, skin 1, ignore 0)
    s2 = torch.zeros_like(s, requires_grad=True)
    F.cross_entropy(s2, label, ignore_index=IGNORE, reduction="none").mul(
        torch.tensor([[[1.0, 3.0], [1.0, 0.0]]])).sum().div(5.0).backward()
    assert torch.allclose(g[:, 1, 0], s2.grad[0, :, 1, 0], atol=1e-6)
    assert not torch.allclose(g[:, 0, 0], s2.grad[0, :, 0, 0], atol=1e-4)  # kept pixels do distil
    # the ignore pixel (1, 1) still learns from the teacher (distillation on unlabelled pixels)
    assert g[:, 1, 1].abs().sum() > 0
    # without re-weighting the eye's share of the softmax gradient drops to a third
    s3 = torch.zeros_like(s, requires_grad=True)
    supervised_loss(s3, t, label, {**cfg, "small_class_weight": 1.0, "kd_weight": 0.0})[0].backward()
    s4 = torch.zeros_like(s, requires_grad=True)
    supervised_loss(s4, t, label, {**cfg, "kd_weight": 0.0})[0].backward()
    ratio = (s4.grad[0, LEFT_EYE, 0, 1] / s4.grad[0, SKIN, 0, 0]) / (s3.grad[0, LEFT_EYE, 0, 1] / s3.grad[0, SKIN, 0, 0])
    assert ratio == pytest.approx(3.0)


def test_unsupervised_loss_learns_the_teachers_argmax_and_drops_its_doubts():
    torch.manual_seed(0)
    t = torch.randn(2, NUM_CLASSES, 8, 8) * 4
    t[:, :, 0, 0] = 0.0  # the teacher has no idea here: the highest self-assessed loss
    cfg = {"small_class_weight": 3.0, "filter_fraction": 1 / 64, "temperature": 4.0, "kd_weight": 4.0}
    s = torch.zeros(2, NUM_CLASSES, 8, 8, requires_grad=True)
    loss, _ = unsupervised_loss(s, t, cfg)
    loss.backward()
    assert s.grad[:, :, 0, 0].abs().sum() == 0  # filtered out of both terms
    # student = teacher: the loss is its own softmax loss only (KL 0)
    _, logs = unsupervised_loss(t.clone(), t, cfg)
    assert logs["kd"] == pytest.approx(0.0, abs=1e-6)
    onehot = F.one_hot(t.argmax(1), NUM_CLASSES).permute(0, 3, 1, 2).float() * 20
    assert unsupervised_loss(onehot, t, {**cfg, "kd_weight": 0.0})[1]["ce"] < 1e-6


# -------------------------------------------------------------------- real data


def facesynthetics_batch(shared_dir, n=4, size=128):
    """n FaceSynthetics faces aligned by their own landmarks (core.align), labels mapped with
    the dataset reader's class table."""
    import cv2
    from models.data.readers import remap
    from models.data.readers.facesynthetics import CLASS_MAP
    root = shared_dir / "data" / "facesynthetics"
    images, labels, fives = [], [], []
    for i in range(n):
        image = cv2.cvtColor(cv2.imread(str(root / f"{i:06d}.png")), cv2.COLOR_BGR2RGB)
        seg = remap(cv2.imread(str(root / f"{i:06d}_seg.png"), cv2.IMREAD_UNCHANGED), CLASS_MAP)
        five = align.five_from_ibug68(np.loadtxt(root / f"{i:06d}_ldmks.txt", dtype=np.float32))
        m = align.alignment_matrix(five, size)
        images.append(align.warp_crop(image, m, size))
        labels.append(align.warp_crop(seg[..., None], m, size, cv2.INTER_NEAREST))
        fives.append(align.transform_points(five, m))
    return {
        "image": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255,
        "label": torch.from_numpy(np.stack(labels).astype(np.int64)),
        "five": torch.from_numpy(np.stack(fives)),
    }


def stage(name):
    return SimpleNamespace(name=name, config={}, autocast=contextlib.nullcontext)


def train_steps(trainable, model, batch, steps, stage_name=SUPERVISED, lr=3e-3):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr)
    model.train()
    losses = []
    for _ in range(steps):
        if isinstance(trainable, StudentTrainable):
            losses.append(trainable.train_step(model, batch, optimizer, stage(stage_name))["loss"])
        else:
            optimizer.zero_grad()
            loss, _ = trainable.loss(model, batch)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    return losses


def test_teacher_then_two_stage_distillation_reduce_their_losses(shared_dir, tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    batch = facesynthetics_batch(shared_dir)
    small = {"input_size": 128, "width_mult": 0.125, "dropout": 0.0}
    teacher_t = TeacherTrainable()
    teacher = teacher_t.build(small)
    losses = train_steps(teacher_t, teacher, batch, 12)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert teacher.sc_centres.abs().sum() > 0  # the sc centres moved
    ckpt.save(tmp_path / "teacher.pt", "teacher", teacher, teacher_t.config)

    student_t = StudentTrainable()
    student = student_t.build({"input_size": 128, "width_mult": 0.125, "conv1_channels": 8, "dropout": 0.0,
                               "teacher_checkpoint": str(tmp_path / "teacher.pt")})
    assert not any(p.requires_grad for p in student.conv1.parameters())
    sup = train_steps(student_t, student, batch, 10, SUPERVISED)
    assert np.mean(sup[-3:]) < 0.8 * np.mean(sup[:3])
    # conv1 is the (loaded, fp16-stored) teacher's, BN folded, and stayed fixed
    loaded = student_t._teacher[1]
    with torch.no_grad():
        x = torch.rand(1, 4, 32, 32)
        assert torch.allclose(student.conv1(x), loaded.conv1(x), atol=1e-5)
    unlabelled = {**batch, "label": torch.full_like(batch["label"], IGNORE)}
    unsup = train_steps(student_t, student, {**batch, "unlabelled": unlabelled}, 8, UNSUPERVISED, lr=1e-3)
    assert np.mean(unsup[-3:]) < np.mean(unsup[:3])


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

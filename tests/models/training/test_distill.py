"""Training the teacher and distilling the Student (Wei et al., "Accurate Facial Image Parsing at
Real-Time Speed", Sec. V): conv1 copy, teacher-prediction filtering, the two stages' losses,
and both recipes on real FaceSynthetics faces."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import align
from core.classes import IGNORE, LEFT_EYE, NUM_CLASSES, SKIN
from models.parsers import checkpoint as ckpt
from models.parsers.student import StudentNet
from models.parsers.teacher import TeacherNet
from models.training.distill import (SUPERVISED, UNSUPERVISED, copy_conv1_from_teacher, frozen_teacher,
                                     supervised_loss, top_k_keep, unsupervised_loss)
from models.training.recipes.student import StudentRecipe
from models.training.recipes.teacher import TeacherRecipe
from models.training.trainable import Stage


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


def train_steps(recipe, model, config, batch, steps, stage_name=SUPERVISED, lr=3e-3):
    """`steps` of the recipe's train_step, as the loop makes them."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr)
    model.train()
    stage = Stage(stage_name, config={**recipe.default_config(), **config})
    return [recipe.train_step(model, batch, optimizer, stage)["loss"] for _ in range(steps)]


def test_teacher_then_two_stage_distillation_reduce_their_losses(shared_dir, tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    batch = facesynthetics_batch(shared_dir)
    small = {"input_size": 128, "width_mult": 0.125, "dropout": 0.0}
    teacher_r = TeacherRecipe()
    teacher_config = {**teacher_r.default_config(), **small}
    teacher = teacher_r.build(teacher_config)
    losses = train_steps(teacher_r, teacher, teacher_config, batch, 12)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert teacher.sc_centres.abs().sum() > 0  # the sc centres moved
    ckpt.save(tmp_path / "teacher.pt", "teacher", teacher, teacher_config)

    student_r = StudentRecipe()
    config = {**student_r.default_config(), "input_size": 128, "width_mult": 0.125, "conv1_channels": 8,
              "dropout": 0.0, "teacher_checkpoint": str(tmp_path / "teacher.pt")}
    student = student_r.build(config)
    assert not any(p.requires_grad for p in student.conv1.parameters())
    student_r.prepare(student, config, data_dir=None)  # conv1 from the teacher, before the first step
    sup = train_steps(student_r, student, config, batch, 10, SUPERVISED)
    assert np.mean(sup[-3:]) < 0.8 * np.mean(sup[:3])
    # conv1 is the (loaded, fp16-stored) teacher's, BN folded, and stayed fixed
    loaded = frozen_teacher(str(tmp_path / "teacher.pt"))
    with torch.no_grad():
        x = torch.rand(1, 4, 32, 32)
        assert torch.allclose(student.conv1(x), loaded.conv1(x), atol=1e-5)
    unlabelled = {**batch, "label": torch.full_like(batch["label"], IGNORE)}
    unsup = train_steps(student_r, student, config, {**batch, "unlabelled": unlabelled}, 8, UNSUPERVISED, lr=1e-3)
    assert np.mean(unsup[-3:]) < np.mean(unsup[:3])

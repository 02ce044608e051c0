"""The Student's training recipe (Wei et al., "Accurate Facial Image Parsing at Real-Time Speed",
IEEE TIP, Sec. V); the network is models.parsers.student.

Without a teacher checkpoint it trains with a re-weighted softmax loss alone (Table VIII's
"Student Network + SoftMax loss" baseline); with `teacher_checkpoint` it runs the two-stage
semi-supervised distillation of models.training.distill, conv1 copied from the teacher before
the first step (Sec. V-A) and, with `freeze_conv1`, kept fixed.
"""
import torch.nn as nn

from models.parsers.student import StudentNet
from models.training import distill
from models.training.trainable import Recipe


def freeze_batch_norm(model: nn.Module):
    """BatchNorm layers to eval mode: the running statistics of the labelled faces stay put
    while the unlabelled faces (another domain here: real photos vs synthetic renders) train."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


class StudentRecipe(Recipe):
    name = "student"
    network = StudentNet

    def default_config(self) -> dict:
        return {**StudentNet.defaults, "freeze_conv1": True, **distill.default_distill_config()}

    def build(self, config: dict) -> StudentNet:
        model = StudentNet.from_config(config)
        if config.get("freeze_conv1", True) and config.get("teacher_checkpoint"):
            model.conv1.requires_grad_(False)
        return model

    def prepare(self, model, config, data_dir) -> None:
        # conv1 comes from the teacher here, not in build, so that a trained student loads
        # for inference without its teacher
        if config.get("teacher_checkpoint"):
            distill.copy_conv1_from_teacher(model, distill.frozen_teacher(str(config["teacher_checkpoint"])))

    def extra_datasets(self, config, data_dir) -> dict:
        return distill.distillation_datasets(config, data_dir)

    def stages(self, config, extras):
        return distill.distillation_stages(config, extras)

    def loss(self, model, batch, stage):
        return distill.distillation_loss(model, batch, stage.name, {**self.default_config(), **stage.config})

    def train_step(self, model, batch, optimizer, stage) -> dict:
        if stage.name == distill.UNSUPERVISED and stage.config.get("unsupervised_freeze_bn"):
            freeze_batch_norm(model)
        return super().train_step(model, batch, optimizer, stage)

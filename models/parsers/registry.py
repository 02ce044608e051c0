"""One registry of parser tiers: a name maps to a builder and a default checkpoint.

The CLI, the Gradio page, training and evaluation all go through `create_parser` /
`get_trainable`, as timm's create_model does. Modules are imported lazily so that the
training path never imports mediapipe and the pipeline never imports what it does not use.
"""
import importlib
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


@dataclass(frozen=True)
class Tier:
    name: str
    module: str            # module holding the tier
    trainable: str | None  # attribute: a Trainable class (None for the landmark tier)
    description: str

    @property
    def checkpoint(self) -> Path:
        return CHECKPOINT_DIR / f"{self.name}.pt"


TIERS = {t.name: t for t in [
    Tier("landmarks", "models.parsers.landmark_parser", None, "fits parts from the 478 face-mesh points (LaPa 3.2); no weights"),
    Tier("rnng", "models.parsers.rnng", "RNNGTrainable", "shallow CNN + gated spatial RNN (Liu et al. BMVC 2017)"),
    Tier("student", "models.parsers.student", "StudentTrainable", "Student Network distilled from the teacher (Wei et al. TIP)"),
    Tier("teacher", "models.parsers.teacher", "TeacherTrainable", "truncated-VGG16 FCN with sc loss (Wei et al. TIP)"),
    Tier("rednet", "models.parsers.rednet", "REDNetTrainable", "residual encoder-decoder + adaptive prior (Guo et al. AAAI 2018)"),
    Tier("bspnet", "models.parsers.bspnet", "BSPNetTrainable", "boundary-sensitive parsing network (Liu et al. AAAI 2020)"),
    Tier("stn-icnn", "models.parsers.stn_icnn", "STNiCNNTrainable", "STN + interlinked CNNs (Yin et al.)"),
]}


class UnknownModel(ValueError):
    pass


def tier(name: str) -> Tier:
    if name not in TIERS:
        raise UnknownModel(f"unknown model '{name}'; choose from: {', '.join(TIERS)}")
    return TIERS[name]


def get_trainable(name: str):
    t = tier(name)
    if t.trainable is None:
        raise UnknownModel(f"model '{name}' has no weights to train")
    return getattr(importlib.import_module(t.module), t.trainable)()


def create_parser(name: str, device: str = "auto", checkpoint=None):
    """A ready Parser for tier `name`; `checkpoint` overrides the committed default."""
    t = tier(name)
    if t.trainable is None:
        return importlib.import_module(t.module).LandmarkParser()
    from models.parsers.checkpoint import CheckpointError
    from models.parsers.torch_parser import TorchParser
    if checkpoint is None and not t.checkpoint.is_file():
        raise CheckpointError(f"no weights for '{name}' ship with the project: train them with "
                              f"python -m models.train --model {name} --data DIR --export "
                              f"(see checkpoints/{name}.md), or pass --checkpoint")
    return TorchParser.from_checkpoint(get_trainable(name), checkpoint or t.checkpoint, device)


def available_checkpoints() -> list[str]:
    """Tiers that can run here: the landmark tier and those whose checkpoint is present."""
    return [n for n, t in TIERS.items() if t.trainable is None or t.checkpoint.is_file()]

"""One registry of parser tiers: a name maps to what builds its parser and to its checkpoint.

The CLI, the Gradio page, evaluation and training all find tiers here; `create_parser` is
the way in, as timm's create_model is. Entries are "module:attribute" strings (core.lazy), so a
tier's module is imported only when that tier is used: the landmark tier runs without torch.
Each learned tier's training recipe is listed beside it in models.training.recipes.
"""
from dataclasses import dataclass
from pathlib import Path

from core.lazy import resolve

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


@dataclass(frozen=True)
class Tier:
    name: str
    description: str
    parser: str | None = None   # "module:Parser class" of a tier without weights
    network: str | None = None  # "module:TierNet class" of a learned tier, rebuilt from its checkpoint
    cpu_parser: str | None = None  # "module:function": checkpoint path -> a parser without torch, or None
    uses: tuple[str, ...] = ()     # learned tiers whose weights this weightless tier runs (built with device, checkpoint)

    @property
    def learned(self) -> bool:
        return self.network is not None

    @property
    def checkpoint(self) -> Path:
        return CHECKPOINT_DIR / f"{self.name}.pt"


TIERS = {t.name: t for t in [
    Tier("landmarks", "fits parts from the 478 face-mesh points (LaPa annotation module); no weights",
         parser="models.parsers.landmark_parser:LandmarkParser"),
    Tier("rnng", "shallow CNN + gated spatial RNN (Liu et al. BMVC 2017)", network="models.parsers.rnng:RNNGNet",
         cpu_parser="models.parsers.rnng_ort:load"),
    Tier("combined", "brows, eyes and lips averaged from the landmark tier and RNN-G, RNN-G's "
         "skin, nose and hair", parser="models.parsers.combined:CombinedParser", uses=("rnng",)),
    Tier("student", "Student Network distilled from the teacher (Wei et al. TIP)",
         network="models.parsers.student:StudentNet"),
    Tier("teacher", "truncated-VGG16 FCN with sc loss (Wei et al. TIP)", network="models.parsers.teacher:TeacherNet"),
    Tier("rednet", "residual encoder-decoder + adaptive prior (Guo et al. AAAI 2018)",
         network="models.parsers.rednet:REDNet"),
    Tier("bspnet", "boundary-sensitive parsing network (Liu et al. AAAI 2020)", network="models.parsers.bspnet:BSPNet"),
    Tier("stn-icnn", "STN + interlinked CNNs (Yin et al.)", network="models.parsers.stn_icnn:STNiCNN"),
]}


class UnknownModel(ValueError):
    pass


def tier(name: str) -> Tier:
    if name not in TIERS:
        raise UnknownModel(f"unknown model '{name}'; choose from: {', '.join(TIERS)}")
    return TIERS[name]


def network_class(name: str):
    """The TierNet class of learned tier `name` (imports its module now)."""
    t = tier(name)
    if not t.learned:
        raise UnknownModel(f"model '{name}' has no network weights")
    return resolve(t.network)


def create_parser(name: str, device: str = "auto", checkpoint=None):
    """A ready Parser for tier `name`; `checkpoint` overrides the committed default. On the CPU a
    tier with a torch-free path (RNN-G: ONNX Runtime) runs on it when the files exported for
    these weights are there; otherwise, and on a GPU, on torch."""
    t = tier(name)
    if t.uses:   # `checkpoint`: weights for the learned tier it runs
        return resolve(t.parser)(device=device, checkpoint=checkpoint)
    if not t.learned:
        return resolve(t.parser)()
    from models.parsers.checkpoint import CheckpointError
    if checkpoint is None and not t.checkpoint.is_file():
        raise CheckpointError(f"no weights for '{name}' ship with the project: train them with "
                              f"python -m models.train --model {name} --data DIR --export "
                              f"(see checkpoints/{name}.md), or pass --checkpoint")
    path = checkpoint or t.checkpoint
    from models.parsers.onnx_runtime import nvidia_gpu
    if t.cpu_parser and (device == "cpu" or device == "auto" and not nvidia_gpu()):
        parser = resolve(t.cpu_parser)(path)
        if parser is not None:
            return parser
    from models.parsers.torch_parser import TorchParser
    return TorchParser.from_checkpoint(name, network_class(name), path, device)


def available_checkpoints() -> list[str]:
    """Tiers that can run here: the landmark tier and those whose checkpoints are present."""
    def present(t: Tier) -> bool:
        return (not t.learned or t.checkpoint.is_file()) and all(TIERS[u].checkpoint.is_file() for u in t.uses)
    return [n for n, t in TIERS.items() if present(t)]

"""Adapter: a learned tier's network (models.parsers.network.TierNet) behind the Parser interface."""
import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InputError
from models.parsers import checkpoint as ckpt
from models.parsers.network import TierNet
from models.parsers.parser import Parser


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but no CUDA GPU is available here (--device cpu or auto runs on the CPU)")
    return torch.device(device)


class TorchParser(Parser):
    def __init__(self, name: str, model: TierNet, device="auto"):
        self.name = name
        self.device = pick_device(device) if isinstance(device, str) else device
        self.fp16 = self.device.type == "cuda"
        model = model.eval().to(self.device)
        if self.fp16:
            model = model.half().to(memory_format=torch.channels_last)
        self.model = model

    @classmethod
    def from_checkpoint(cls, name: str, network: type[TierNet], path, device="auto"):
        blob = ckpt.load(path, name)
        parser = cls(name, ckpt.load_into(network.from_config(blob["config"]), blob), device)
        parser.prior = ckpt.class_prior(blob["config"])
        return parser

    @torch.inference_mode()
    def parse(self, crops, five, mesh=None):
        n, size = crops.shape[0], crops.shape[1]
        s = self.model.input_size
        image = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float() / 255
        if s != size:
            image = F.interpolate(image, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        scale = s / size
        if mesh is None:
            mesh = np.full((n, 478, 2), np.nan, np.float32)
        batch = {
            "image": image.half().contiguous(memory_format=torch.channels_last) if self.fp16 else image,
            "five": torch.as_tensor(np.asarray(five, np.float32) * scale, device=self.device),
            "mesh": torch.as_tensor(np.asarray(mesh, np.float32) * scale, device=self.device),
        }
        probs = self.model.predict(batch).float()
        if s != size:
            probs = F.interpolate(probs, size=(size, size), mode="bilinear", align_corners=False)
        return probs.cpu().numpy()

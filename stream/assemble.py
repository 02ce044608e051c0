"""Assembles a FacePipeline from user options; run_live.py and the Gradio page both use it.

torch is imported only when a learned tier is used: the landmark tier runs without it (its
fallback for detector-only faces, a learned tier, is loaded on the first such face)."""
import os
from functools import lru_cache

import numpy as np

from core import align
from models.parsers import registry, select
from models.parsers.parser import Parser
from stream.pipeline import FacePipeline


@lru_cache(maxsize=1)
def warmup_batch():
    """A real aligned face (the public-domain astronaut) to time the tiers on."""
    from skimage.data import astronaut
    from models.perception.tracker import FaceTracker
    image = astronaut()
    tracker = FaceTracker(max_faces=1, static_images=True)
    face = tracker.process(image)[0]
    tracker.close()
    crop = align.warp_crop(image, face.matrix)
    return (crop[None], align.transform_points(face.five, face.matrix)[None],
            align.transform_points(face.mesh, face.matrix)[None])


def create_parser(model: str = "auto", device: str = "auto", budget_ms: float = select.DEFAULT_BUDGET_MS,
                  log=print):
    """A Parser for a tier name, or for "auto" the tier that fits the time budget here."""
    if model != "auto" and not registry.tier(model).learned:
        return registry.create_parser(model, device=device)
    leave_a_core_to_tracking()  # before "auto" times the tiers: as the pipeline will run them
    if model != "auto":
        return registry.create_parser(model, device=device)
    name, parser, timings = select.pick_tier(*warmup_batch(), budget_ms=budget_ms, device=device)
    times = ", ".join(f"{n} {ms:.1f} ms" for n, ms in timings.items())
    log(f"--model auto picked '{name}' (per face here: {times}; budget {budget_ms:g} ms)")
    return parser


def build_pipeline(model="auto", device="auto", effects=None, max_faces=4, smooth=True,
                   static_images=False, show_labels=False, parser=None, log=print,
                   whole_hair=True) -> FacePipeline:
    parser = parser or create_parser(model, device, log=log)
    return FacePipeline(parser, effects=effects, max_faces=max_faces, smooth=smooth,
                        static_images=static_images, show_labels=show_labels,
                        fallback_parser=fallback_parser(parser, device),
                        hair=hair_stage(parser, video=not static_images) if whole_hair else None)


def hair_stage(parser, video: bool):
    """Whole-head hair from the hair network (one shared copy of its weights, 0.7 MB), its
    fusion weighted for the parser's tier."""
    from models.perception.hair import EVERY, HairStage
    leave_a_core_to_tracking()   # the landmark tier ran no torch before: the network now shares the cores
    return HairStage(net=_hair_net(), video=video, tier=getattr(getattr(parser, "parser", parser), "name", None),
                     every=EVERY)


@lru_cache(maxsize=1)
def _hair_net():
    from models.parsers.hair_net import load_hair_net
    return load_hair_net()


def leave_a_core_to_tracking():
    """The tracking thread keeps a core busy with mediapipe (mesh, person mask) while frames are
    parsed: torch gets the other cores. On 2 cores, two torch threads fought the tracking thread
    (RNN-G pipeline 24.5-26.1 fps; with one torch thread 27.7-28.9)."""
    import torch
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def fallback_parser(parser, device="auto"):
    """For a tier that needs the face mesh: the most accurate learned real-time tier, to parse
    the faces that only the detector found (profiles, masks); None when there is none."""
    if not parser.needs_mesh:
        return None
    available = registry.available_checkpoints()
    if not any(registry.tier(n).learned for n in select.REAL_TIME_TIERS if n in available):
        return None
    return FallbackParser(device)


class FallbackParser(Parser):
    """The best learned real-time tier, picked and loaded on the first face it gets (a face
    without a mesh is rare), so that a landmark-tier run needs no torch until then."""
    name = "fallback"

    def __init__(self, device="auto"):
        self.device = device

    def parse(self, crops, five, mesh=None):
        learned = [n for n in select.ranked() if registry.tier(n).learned]
        return _cached_parser(learned[0], self.device).parse(crops, five, mesh)


@lru_cache(maxsize=4)
def _cached_parser(name, device):
    leave_a_core_to_tracking()
    return registry.create_parser(name, device=device)


def label_map(result, shape=None) -> np.ndarray:
    """Frame-sized map of class ids from a FrameResult (0 where no face)."""
    h, w = shape or result.frame.image.shape[:2]
    best = np.zeros((h, w), np.float32)
    label = np.zeros((h, w), np.uint8)
    for fp in result.faces:
        x0, y0, x1, y1 = fp.box
        if x1 <= x0 or y1 <= y0:
            continue
        fg = 1.0 - fp.probs[0]   # where faces overlap, the more confident one wins
        cls = fp.probs.argmax(0).astype(np.uint8)
        region_best = best[y0:y1, x0:x1]
        take = fg > region_best
        region_best[take] = fg[take]
        label[y0:y1, x0:x1][take] = cls[take]
    return label

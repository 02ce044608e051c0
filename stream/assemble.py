"""Assembles a FacePipeline from user options; run_live.py and the Gradio page both use it.

torch is imported only when a learned tier is used: the landmark tier runs without it (its
fallback for detector-only faces, a learned tier, is loaded on the first such face).
torch's thread count is process-wide, so it changes only when the caller asks (leave_a_core=True:
run_live.py, demo.py and the benchmarks); the Python API (faceparse.py) leaves it alone."""
import logging
import os
import sys
from functools import lru_cache

import numpy as np

from core import align
from core.classes import argmax_labels
from models.parsers import registry, select
from models.parsers.parser import Parser
from stream.pipeline import FacePipeline

_log = logging.getLogger("faceparse.assemble")


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
                  log=_log.info, leave_a_core: bool = False, live: bool = True):
    """A Parser for a tier name, or for "auto": live, the most accurate tier that fits the time
    budget here (it says what it measured); for photos, the most accurate tier.
    leave_a_core: apply the pipeline's process-wide thread settings (pipeline_threads) first."""
    if leave_a_core:
        pipeline_threads()  # before "auto" times the tiers: as the pipeline will run them
    if model != "auto":
        parser = registry.create_parser(model, device=device)
    elif not live:
        name, parser = select.most_accurate(device)
        log(f"--model auto picked '{name}' (the most accurate tier here; photos have no frame budget)")
    else:  # each tier timed as the pipeline will run it
        name, parser, timings, when = select.pick_tier_remembered(
            *warmup_batch(), budget_ms=budget_ms, device=device, prepare=pipeline_threads if leave_a_core else None)
        log(f"--model auto picked '{name}' ({select.describe_pick(timings, when, budget_ms)})")
    if leave_a_core:
        leave_a_core_to_tracking()   # the tier is loaded now: torch may have come in
    return parser


def build_pipeline(model="auto", device="auto", effects=None, max_faces=4, smooth=True,
                   static_images=False, show_labels=False, parser=None, log=_log.info,
                   leave_a_core: bool = False, whole_hair: bool = True) -> FacePipeline:
    """leave_a_core: the pipeline's process-wide thread settings (pipeline_threads), which
    run_live.py, demo.py and the benchmarks ask for; the Python API leaves them alone.
    whole_hair: the hair network on a head crop per face (models/perception/hair.py)."""
    parser = parser or create_parser(model, device, log=log, leave_a_core=leave_a_core, live=not static_images)
    hair = hair_stage(parser, video=not static_images) if whole_hair else None
    if leave_a_core:
        pipeline_threads()   # after the hair network brought torch in: its threads too
    return FacePipeline(parser, effects=effects, max_faces=max_faces, smooth=smooth,
                        static_images=static_images, show_labels=show_labels,
                        fallback_parser=fallback_parser(parser, device, leave_a_core), hair=hair)


def hair_stage(parser, video: bool):
    """Whole-head hair from the hair network (one shared copy of its weights, 0.7 MB), its
    fusion weighted for the parser's tier."""
    from models.perception.hair import EVERY, HairStage
    return HairStage(load=_hair_net, video=video, tier=getattr(getattr(parser, "parser", parser), "name", None),
                     every=EVERY)


@lru_cache(maxsize=1)
def _hair_net():
    from models.parsers.hair_net import load_hair_net
    return load_hair_net()


def pipeline_threads():
    """Thread settings for the pipeline (process-wide): see the three functions below."""
    one_blas_thread()
    quick_gil_handover()
    leave_a_core_to_tracking()


def leave_a_core_to_tracking():
    """The tracking thread keeps a core busy with mediapipe (mesh, person mask) while frames are
    parsed: torch gets the other cores. On 2 cores, two torch threads fought the tracking thread
    (RNN-G pipeline 24.5-26.1 fps; with one torch thread 27.7-28.9). Only once a learned tier
    has loaded torch: the landmark tier never imports it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def one_blas_thread():
    """numpy's OpenBLAS on one thread: the pipeline runs its own stages in parallel, and after
    each small threaded call (a 3x3 inverse, a colour-model matmul) OpenBLAS's idle threads spin
    in sched_yield: on a landmark-tier run 1.1 million involuntary context switches and 4.5 s of
    system time on a 448-frame clip (1.2 s, 13 thousand, on one thread)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1, user_api="blas")


def quick_gil_handover(seconds: float = 0.0002):
    """The pipeline's stage threads make many short OpenCV/numpy calls, each releasing the GIL
    and taking it back; with Python's default 5 ms switch interval a thread coming back waits
    up to that long behind another stage's Python code. 0.2 ms: the landmark tier's run on a
    talking-head clip took 14% less wall time (0.5 ms: 10% less)."""
    sys.setswitchinterval(min(sys.getswitchinterval(), seconds))


def fallback_parser(parser, device="auto", leave_a_core: bool = False):
    """For a tier that needs the face mesh: the most accurate learned real-time tier, to parse
    the faces that only the detector found (profiles, masks); None when there is none."""
    if not parser.needs_mesh:
        return None
    available = registry.available_checkpoints()
    if not any(registry.tier(n).learned for n in select.REAL_TIME_TIERS if n in available):
        return None
    return FallbackParser(device, leave_a_core)


class FallbackParser(Parser):
    """The best learned real-time tier, picked and loaded on the first face it gets (a face
    without a mesh is rare), so that a landmark-tier run needs no torch until then."""
    name = "fallback"

    def __init__(self, device="auto", leave_a_core: bool = False):
        self.device = device
        self.leave_a_core = leave_a_core

    def parse(self, crops, five, mesh=None):
        learned = [n for n in select.ranked() if registry.tier(n).learned]
        return _cached_parser(learned[0], self.device, self.leave_a_core).parse(crops, five, mesh)


@lru_cache(maxsize=4)
def _cached_parser(name, device, leave_a_core=False):
    parser = registry.create_parser(name, device=device)
    if leave_a_core:
        leave_a_core_to_tracking()
    return parser


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
        cls = argmax_labels(fp.probs)
        region_best = best[y0:y1, x0:x1]
        take = fg > region_best
        region_best[take] = fg[take]
        label[y0:y1, x0:x1][take] = cls[take]
    return label

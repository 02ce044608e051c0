"""The small data types that travel between the pipeline's stages."""
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    image: np.ndarray                 # (H, W, 3) uint8 RGB
    index: int                        # 0-based position in the source
    time: float                       # seconds since the source's start
    pts: int | None = None            # presentation timestamp in time_base units (video files)
    time_base: Fraction | None = None


@dataclass
class Face:
    """One tracked face in one frame. Points are in frame pixels."""
    id: int                           # stable across frames while the face is tracked
    five: np.ndarray                  # (5, 2) see core.align for the order
    matrix: np.ndarray                # (2, 3) frame -> aligned crop (core.align.CROP_SIZE)
    mesh: np.ndarray | None = None    # (478, 2) face-mesh points; None when only the detector found it
    score: float = 1.0                # detection confidence
    source: str = "mesh"              # "mesh" or "detector"


@dataclass
class FaceParse:
    """A face's parse, warped back into the frame: probabilities over a box of the frame."""
    face: Face
    box: tuple                        # (x0, y0, x1, y1) frame pixels
    probs: np.ndarray                 # (11, y1-y0, x1-x0) float32
    crop_probs: np.ndarray | None = None  # (11, S, S) in the aligned crop (smoothed)
    whole_hair: bool = False          # the box holds all of the head's hair (models.perception.hair)


@dataclass
class FrameResult:
    frame: Frame
    faces: list = field(default_factory=list)   # list[FaceParse]
    person_mask: np.ndarray | None = None       # (H, W) float32 person probability (learned tiers)
    hair: dict = field(default_factory=dict)    # face id -> models.perception.hair.HeadHair
    output: np.ndarray | None = None            # rendered RGB image
    timings: dict = field(default_factory=dict) # stage -> seconds

"""Face parsing as a library, for use from a clone of this repository (the folder on sys.path).

    import faceparse
    result = faceparse.parse("photo.jpg")          # a path, an RGB uint8 array or a PIL image
    result.labels                                  # (H, W) uint8 class ids, faceparse.CLASS_NAMES
    result.mask("hair")                            # (H, W) bool; also "brows", "eyes", "mouth"
    for face in result.faces:                      # one per face
        face.box, face.points, face.labels, face.probs
    out = faceparse.apply("photo.jpg", "lipstick=crimson:0.7,hair=#6a2ca0:0.5")   # RGB uint8 array

    with faceparse.FaceParser(model="rnng") as fp:   # reuse one parser for many images or a video
        for result, image in fp.video("clip.mp4", effects="lipstick=crimson:0.7"):
            ...

Effects take run_live.py's --effects spec. Bad input raises ValueError subclasses with one line
(effects.EffectSpecError, registry.UnknownModel) or core.errors.InputError (unreadable file).
Torch's global settings are left alone: pass torch_threads=N to set its thread count (run_live.py
leaves one core to the tracking thread, which is what makes its frame rate on 2 cores).
A FaceParser is for one thread at a time.
"""
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.classes import CLASS_GROUPS, CLASS_NAMES, argmax_labels
from core.errors import InputError
from core.types import Frame

__all__ = ["parse", "apply", "FaceParser", "ParseResult", "FaceResult", "CLASS_NAMES"]

log = logging.getLogger("faceparse")


@dataclass
class FaceResult:
    """One face: where it is and what each pixel of its box is."""
    id: int                  # stable across the frames of a video while the face is tracked
    box: tuple               # (x0, y0, x1, y1) image pixels
    points: np.ndarray       # (5, 2) eyes, nose, mouth corners, the image's left first
    probs: np.ndarray        # (11, y1-y0, x1-x0) float32 class probabilities over the box

    @property
    def labels(self) -> np.ndarray:
        """(y1-y0, x1-x0) uint8 class ids over the box."""
        return argmax_labels(self.probs)


@dataclass
class ParseResult:
    labels: np.ndarray       # (H, W) uint8 class ids of the whole image, 0 where no face
    faces: list              # list[FaceResult]

    def mask(self, name: str) -> np.ndarray:
        """(H, W) bool mask of a class ("hair", "left_eye", ...) or group ("brows", "eyes", "mouth")."""
        if name in CLASS_NAMES:
            ids = (CLASS_NAMES.index(name),)
        elif name in CLASS_GROUPS:
            ids = CLASS_GROUPS[name]
        else:
            raise ValueError(f"unknown class {name!r}; choose from: {', '.join(CLASS_NAMES + tuple(CLASS_GROUPS))}")
        return np.isin(self.labels, ids)


class FaceParser:
    """A loaded parser and a face tracker, reused across calls."""

    def __init__(self, model: str = "auto", device: str = "auto", max_faces: int = 4,
                 torch_threads: int | None = None):
        from stream import assemble
        if torch_threads is not None:   # only when asked: it is process-wide
            import torch
            torch.set_num_threads(torch_threads)
        self.max_faces = max_faces
        self._parser = assemble.create_parser(model, device, log=log.info)
        self._still = None   # the pipeline for still images, built at the first one
        self.model = getattr(self._parser, "name", model)

    def parse(self, image) -> ParseResult:
        return self._run_still(image, None)[0]

    def apply(self, image, effects) -> np.ndarray:
        """The image with the effects (a spec string, or effects.EffectSettings) painted on."""
        return self._run_still(image, _settings(effects))[1]

    def video(self, path, effects=None):
        """(ParseResult, RGB image with the effects) for each frame of a video file, tracked
        and smoothed over time as run_live.py does."""
        from stream import capture
        settings = _settings(effects)
        source = capture.VideoFileSource(path)
        pipeline = self._pipeline(static_images=False, effects=settings)
        try:
            for result in pipeline.run(source):
                yield _result(result), result.output
        finally:
            source.close()
            pipeline.close()

    def _run_still(self, image, settings):
        image = _rgb(image)
        if self._still is None:
            self._still = self._pipeline(static_images=True, effects=None)
        self._still.effects = settings
        self._still.labels_wanted = settings is None   # parse: label maps with the whole head's hair; apply: as run_live
        result = self._still.process(Frame(image=image, index=0, time=0.0))
        return _result(result), result.output

    def _pipeline(self, static_images: bool, effects):
        from stream import assemble   # as run_live.py builds it (whole-head hair too), thread settings left alone
        return assemble.build_pipeline(parser=self._parser, effects=effects, max_faces=self.max_faces,
                                       static_images=static_images)

    def close(self):
        if self._still is not None:
            self._still.close()
            self._still = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@lru_cache(maxsize=2)
def _default(model: str, device: str) -> FaceParser:
    return FaceParser(model, device)


def parse(image, model: str = "auto", device: str = "auto") -> ParseResult:
    """Every face in one image: ParseResult(labels for the whole image, one FaceResult per face)."""
    return _default(model, device).parse(image)


def apply(image, effects: str, model: str = "auto", device: str = "auto") -> np.ndarray:
    """One image with effects (run_live.py's --effects spec) -> RGB uint8 array; unchanged where no face."""
    settings = _settings(effects)   # a bad spec fails before anything loads
    return _default(model, device).apply(image, settings)


def _settings(effects):
    import effects as fx
    if effects is None or isinstance(effects, fx.EffectSettings):
        return effects
    return fx.parse_effects(effects)


def _rgb(image) -> np.ndarray:
    if isinstance(image, (str, Path)):
        from stream.capture import read_image
        return read_image(image)
    if hasattr(image, "convert"):   # a PIL image
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"expected an RGB uint8 image of shape (H, W, 3), got {array.dtype} {array.shape}")
    if not array.shape[0] or not array.shape[1]:   # mediapipe's graph fails on it, and stays broken
        raise InputError(f"empty image: {array.shape}")
    return np.ascontiguousarray(array)


def _result(result) -> ParseResult:
    from stream.assemble import label_map
    faces = [FaceResult(fp.face.id, tuple(int(v) for v in fp.box), fp.face.five, fp.probs) for fp in result.faces]
    return ParseResult(label_map(result), faces)

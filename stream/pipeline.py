"""The per-frame loop: track -> align -> parse (batched over faces) -> smooth -> render.

`FacePipeline.process(frame)` runs one frame through every stage (images, the Gradio page);
`FacePipeline.run(frames)` does the same for a stream, with tracking, parsing, smoothing and
rendering of consecutive frames overlapping in four threads (mediapipe, torch, numba and
OpenCV release the GIL), so the two cores are both busy.
"""
import logging
import time

import numpy as np

from core import align
from core.classes import HAIR
from models.perception import edge_snap, hair as whole_hair, part_colours
from models.perception.person_mask import PersonSegmenter, keep_inside
from stream.smoothing import LandmarkSmoother, ProbabilitySmoother
from stream.threads import in_thread, join_all
from models.perception.tracker import FaceTracker
from core.types import FaceParse, Frame, FrameResult

_log = logging.getLogger("faceparse.pipeline")


# effects that make the render thread the pipeline's slowest (ms a face, rnng profile: skin 3.9,
# blush 3.9, brows 2.4, eyeshadow 2.2); lipstick (2.7 with gloss) and teeth (0.8) do not alone
HEAVY_EFFECTS = frozenset(("smooth", "blush", "eyeshadow", "brows"))


class FacePipeline:
    def __init__(self, parser, effects=None, max_faces: int = 4, smooth: bool = True,
                 static_images: bool = False, show_labels: bool = False,
                 fallback_parser=None, hair=None):
        self.parser = parser
        # whole-head hair (models.perception.hair.HairStage), run in the tracking stage; None: off
        self.hair = hair
        # label maps are asked for (run_live.py --save-labels, the page, the Python API): they get
        # the whole head's hair; otherwise the hair network runs only for the hair effect or the overlay
        self.labels_wanted = True
        # parses the faces only the detector found (no mesh) when `parser` needs a mesh
        self.fallback_parser = fallback_parser
        self.effects = effects            # effects.EffectSettings or None
        self.show_labels = show_labels
        self.tracker = FaceTracker(max_faces=max_faces, static_images=static_images)
        # photos have no frame budget: the learned tiers also parse each crop's mirror image and
        # average (README, Accuracy: RNN-G +0.003 overall and mean F1, +0.011 LFW hair)
        self.mirror = static_images
        # and, for label maps and the overlay, their parse is snapped to the photo's edges and
        # its brows and lips re-weighed by the photo's colours (models/perception/edge_snap.py,
        # part_colours.py; the effects' feathered masks would not show it)
        self.refine_photos = static_images
        # learned tiers keep hair and skin inside the person (the landmark tier does it itself)
        self.person = None if parser.needs_mesh else PersonSegmenter()
        smooth = smooth and not static_images
        self.landmark_smoother = LandmarkSmoother() if smooth else None
        self.prob_smoother = ProbabilitySmoother() if smooth else None
        self._stages = []   # run()'s threads, waited for by close()

    # --- stages -----------------------------------------------------------------------
    def track(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        faces = self.tracker.process(frame.image)
        person = (self.person.frame_mask(frame.image, faces)
                  if faces and self.person is not None and self.person_wanted() else None)
        t1 = time.perf_counter()
        if self.landmark_smoother is not None:
            faces = self.landmark_smoother(faces, frame.time)
        t2 = time.perf_counter()
        hair = {}
        if self.hair is not None and self.hair_wanted():
            hair = self.hair(frame.image, faces, person=person)
        elif self.hair is not None:
            self.hair.reset()
        t3 = time.perf_counter()
        return FrameResult(frame, faces, person_mask=person, hair=hair,
                           timings={"landmarks": t1 - t0, "smoothing": t2 - t1, "hair": t3 - t2})

    def hair_wanted(self) -> bool:
        """Whether this frame's outputs use the whole head's hair: label maps, the label overlay
        or the hair effect (lipstick alone needs no hair network)."""
        return (self.labels_wanted or self.show_labels
                or (self.effects is not None and "hair" in self.effects.active()))

    def classes_wanted(self) -> frozenset | None:
        """The classes this frame's outputs read: None (all) for label maps and the overlay,
        else those of the enabled effects; the parser may skip and the smoother skips the rest."""
        if self.labels_wanted or self.show_labels:
            return None
        from effects.render import classes_read
        return classes_read(self.effects, whole_hair=self.hair is not None)

    def person_wanted(self) -> bool:
        """Whether the person mask can change what this frame's outputs show: it moves hair and
        skin to background beyond the head's outline, which matters to the label maps and the
        hair effect, not to makeup painted inside the face (the default effects on four held-out
        clips: at most 0.15% of pixel values differ, by 4 grey levels at most; its 3 ms a frame
        were 10% of rnng's run time: README, Speed)."""
        classes = self.classes_wanted()
        return classes is None or HAIR in classes

    def parse(self, result: FrameResult) -> FrameResult:
        return self.parse_batch([result])[0]

    def parse_batch(self, results: list[FrameResult]) -> list[FrameResult]:
        """Parse the faces of several frames in one batched call (folders of images)."""
        return self.smooth_parse(self.parse_crops(results))

    def parse_crops(self, results: list[FrameResult]) -> list[FrameResult]:
        """Cut each face's aligned crop and parse them all in one batch; the crops and their raw
        probabilities wait in `r.faces` as (face, crop, probs) for smooth_parse."""
        t0 = time.perf_counter()
        faces = [(r, f) for r in results for f in r.faces]
        classes = self.classes_wanted()
        for r in results:
            r.classes = classes
        if faces:
            crops = np.stack([align.warp_crop(r.frame.image, f.matrix) for r, f in faces])
            five = np.stack([align.transform_points(f.five, f.matrix) for _, f in faces])
            mesh = np.stack([align.transform_points(f.mesh, f.matrix) if f.mesh is not None
                             else np.full((478, 2), np.nan, np.float32) for _, f in faces])
            probs = self._parse_crops(crops, five, mesh, classes)
            for p, crop, (r, f) in zip(probs, crops, faces):
                person = None
                if r.person_mask is not None:
                    person = align.warp_crop(r.person_mask, f.matrix)
                    keep_inside(p, person)
                self._fuse_hair(r, f, p, crop, person)
        for r in results:
            r.faces = []
        for i, (r, f) in enumerate(faces):
            r.faces.append((f, crops[i], probs[i]))
        t1 = time.perf_counter()
        for r in results:  # batch time shared out over its frames
            r.timings["parse"] = (t1 - t0) / len(results)
        return results

    def smooth_parse(self, results: list[FrameResult]) -> list[FrameResult]:
        """Smooth the raw probabilities per face id (in frame order) and turn them into
        FaceParses, which warp back into the frame only what the effects or label maps use."""
        t0 = time.perf_counter()
        raw = [(r, item) for r in results for item in r.faces]
        if raw and self.prob_smoother is not None:
            # in place: the raw parse is this stage's own, and nothing reads it after smoothing
            probs = self.prob_smoother([f.id for _, (f, _, _) in raw], [p for _, (_, _, p) in raw],
                                       [c for _, (_, c, _) in raw], _union(r.classes for r in results), inplace=True)
        else:
            probs = [p for _, (_, _, p) in raw]
        for r in results:
            r.faces = []
        for (r, (f, _, _)), p in zip(raw, probs):
            parse = self._to_frame(r, f, p)
            if self.refine_photos and (self.labels_wanted or self.show_labels):
                _refine_photo(parse, r.frame.image)
            r.faces.append(parse)
        for r in results:
            whole_hair.keep_own_hair(r.faces)
        t1 = time.perf_counter()
        for r in results:
            r.timings["smoothing"] = r.timings.get("smoothing", 0) + (t1 - t0) / len(results)
            r.timings["warp_back"] = 0.0   # done on demand, inside the effects (counted there)
        return results

    # --- whole-head hair (models/perception/hair.py) ------------------------------------
    def _fuse_hair(self, result: FrameResult, face, probs, crop, person=None) -> None:
        """In the aligned crop: the parser's face parts, the hair network's hair or background."""
        hair = result.hair.get(face.id)
        if hair is not None:
            whole_hair.fuse(probs, whole_hair.hair_in_crop(hair, face.matrix, probs.shape[-1]),
                            self.hair.parser_weight, crop=crop, fusion=self.hair.fusion, person=person)

    @staticmethod
    def _to_frame(result: FrameResult, face, probs) -> FaceParse:
        """The parse in the frame, warped back on demand; with whole-head hair, warped now over
        the head crop too (the hair network's hair outside the aligned crop)."""
        hair = result.hair.get(face.id)
        shape = result.frame.image.shape[:2]
        if hair is None:
            return FaceParse(face, align.crop_box_in_frame(face.matrix, shape), crop_probs=probs)
        box, frame_probs = whole_hair.to_frame(probs, face.matrix, hair, shape, result.classes)
        return FaceParse(face, box, frame_probs, crop_probs=probs, whole_hair=True)

    def _parse_crops(self, crops, five, mesh, classes=None):
        probs = self.parser(crops, five, mesh, classes, mirror=self.mirror)
        no_mesh = np.isnan(mesh).any(axis=(1, 2))
        if self.parser.needs_mesh and self.fallback_parser is not None and no_mesh.any():
            probs[no_mesh] = self.fallback_parser(crops[no_mesh], five[no_mesh], mesh[no_mesh], classes)
        return probs

    def render(self, result: FrameResult) -> FrameResult:
        import effects
        t0 = time.perf_counter()
        out = result.frame.image
        if result.faces and self.effects is not None:
            out = effects.render(out, result.faces, self.effects)
        if result.faces and self.show_labels:
            out = effects.overlay_labels(out, result.faces)
        result.output = out
        result.timings["effects"] = time.perf_counter() - t0
        return result

    # --- whole frames ---------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        return self.render(self.parse(self.track(frame)))

    def run(self, frames, live: bool = False):
        """Results for a stream of frames, in order. Three stages overlap, each in its own thread
        (with decoding in the source's and encoding in the caller's): tracking; cutting and
        parsing the crops; rendering. mediapipe, OpenCV, numba and ONNX Runtime release the GIL,
        so the OS can keep both cores busy. Smoothing, many short numpy/OpenCV calls that hold
        the GIL in between, shares a thread with rendering, or with parsing when the effects make
        rendering the slowest stage (smooth_with_parse). `live` (a camera): one frame waits
        between stages instead of two, so that a frame is shown sooner after its capture."""
        size = 1 if live else 2
        if self.smooth_with_parse():
            parse, render = (lambda r: self.smooth_parse(self.parse_crops([r]))[0]), self.render
        else:
            parse, render = (lambda r: self.parse_crops([r])[0]), (lambda r: self.render(self.smooth_parse([r])[0]))
        tracked = in_thread((self.track(f) for f in frames), size, name="track", started=self._stages)
        parsed = in_thread((parse(r) for r in tracked), size, name="parse", started=self._stages)
        try:
            yield from in_thread((render(r) for r in parsed), size, name="render", started=self._stages)
        finally:
            # stop the upstream stages now: an exception raised in here (Ctrl-C) keeps this frame,
            # and with it these generators, alive in its traceback, and their workers would stay
            # blocked on full queues until close() gave up on them (30 s)
            parsed.close()
            tracked.close()

    def smooth_with_parse(self) -> bool:
        """Whether smoothing runs in the parse thread: with any of HEAVY_EFFECTS on, the render
        thread is the slowest and smoothing moves to the parse thread; else (lipstick, teeth,
        the hair effect, whose network loads the tracking thread) it stays with rendering. Measured (README, Speed): talking_d10, rnng with the
        default effects 11.6 -> 10.4 s, landmarks with them 9.4 -> 8.6 s; landmarks + lipstick
        3.65 -> 3.87 s and rnng + hair 12.6 -> 14.3 s the other way."""
        return self.effects is not None and not HEAVY_EFFECTS.isdisjoint(self.effects.active())

    def close(self):
        """Frees mediapipe's graphs once no stage thread can be in them: a stage left busy when
        its run was stopped (Ctrl-C) ends with its current frame (the source is closed first)."""
        if join_all(self._stages, timeout=30.0):
            _log.warning("a pipeline stage is still busy after 30 s; closing anyway")
        self._stages.clear()
        self.tracker.close()
        if self.person is not None:
            self.person.close()


def _refine_photo(parse: FaceParse, image: np.ndarray) -> None:
    """Every class plane of a photo's face, warped into its box, snapped to the photo's edges,
    and its brows and lips re-weighed by the face's own colours."""
    x0, y0, x1, y1 = parse.box
    if x1 > x0 and y1 > y0:
        rgb, frame_per_crop = image[y0:y1, x0:x1], 1.0 / align.crop_per_frame(parse.face.matrix)
        part_colours.refine(edge_snap.snap(parse.probs, rgb, frame_per_crop), rgb, frame_per_crop)


def _union(sets) -> frozenset | None:
    """Union of class sets, None (all classes) if any is None."""
    out = frozenset()
    for s in sets:
        if s is None:
            return None
        out |= s
    return out

"""What the Gradio page (demo.py) does with its inputs, free of gradio so it can be tested alone.

The page and run_live.py drive the same stages: stream.assemble.build_pipeline ->
FacePipeline.process / stream.video_loop.process_video. This module adds only what a web
page needs on top: the page's control values -> EffectSettings, input limits with readable
messages, one parser per (model, device) shared by all sessions, and one live pipeline per
browser session (its own tracker ids and smoothing state).
"""
import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np

import effects
from effects.colour import format_colour
from effects.spec import COLOUR_EFFECTS, DEFAULT_VALUES, EFFECT_NAMES, FINISHES, EffectSettings
from stream import capture, assemble as session, video_loop
from stream.user_errors import is_user_error
from core.errors import InputError
from core.types import Frame

log = logging.getLogger("faceparse.web")

MAX_IMAGE_SIDE = 4096            # larger images are downscaled to this long side
MAX_IMAGE_PIXELS = 100_000_000   # larger ones are refused before decoding (memory)
MAX_VIDEO_SECONDS = 60.0
MAX_VIDEO_FRAMES = 2000
MAX_VIDEO_SIDE = 1920            # larger video frames are downscaled (CPU time per frame)

# --- the page's controls ------------------------------------------------------------------
# Every control has a name; the page builds one widget per name, handlers get {name: value}.
CONTROL_NAMES = (("effects",) + tuple(f"{n}_colour" for n in COLOUR_EFFECTS)
                 + tuple(f"{n}_strength" for n in EFFECT_NAMES) + ("lipstick_finish", "model", "show_labels"))


def default_controls() -> dict:
    """The values the page opens with: effects.DEFAULT_EFFECTS on, every other effect at its default."""
    on = effects.parse_effects(effects.DEFAULT_EFFECTS)
    controls = {"effects": on.active(), "lipstick_finish": DEFAULT_VALUES["lipstick"][2],
                "model": "auto", "show_labels": False}
    for name in EFFECT_NAMES:
        p = on.effects.get(name)
        value = DEFAULT_VALUES[name]
        if name in COLOUR_EFFECTS:
            controls[f"{name}_colour"] = format_colour(p.colour) if p else value[0]
            controls[f"{name}_strength"] = p.strength if p else value[1]
        else:
            controls[f"{name}_strength"] = p.strength if p else value
    return controls


def settings_from_controls(controls: dict) -> EffectSettings:
    """EffectSettings from the page's values; missing values take the page's defaults.
    Raises effects.EffectSpecError for a bad colour or strength."""
    values = {**default_controls(), **{k: v for k, v in controls.items() if v is not None}}
    chosen = set(values["effects"] or [])
    finish = values["lipstick_finish"] if values["lipstick_finish"] in FINISHES else DEFAULT_VALUES["lipstick"][2]
    spec = {}
    for name in EFFECT_NAMES:
        if name not in chosen:
            continue
        strength = float(values[f"{name}_strength"])
        if name in COLOUR_EFFECTS:
            spec[name] = (values[f"{name}_colour"], strength) + ((finish,) if name == "lipstick" else ())
        else:
            spec[name] = strength
    return EffectSettings.from_values(**spec)


def controls_from_spec(spec: str, model: str = "auto", show_labels: bool = False) -> dict:
    """The page's control values for an --effects spec string (the API takes specs), so that the
    API runs the page's own path. Raises effects.EffectSpecError for a bad spec."""
    settings = effects.parse_effects(spec)
    controls = {**default_controls(), "effects": settings.active(), "model": model or "auto",
                "show_labels": bool(show_labels)}
    for name in settings.active():
        p = settings.params(name)
        controls[f"{name}_strength"] = p.strength
        if p.colour is not None:
            controls[f"{name}_colour"] = format_colour(p.colour)
        if p.finish is not None:
            controls["lipstick_finish"] = p.finish
    return controls


class SharedParser:
    """A parser used by several sessions' pipelines: one call at a time (the landmark tier
    holds a mediapipe graph, which must not run two frames at once)."""

    def __init__(self, parser):
        self.parser = parser
        self._lock = threading.Lock()

    def __call__(self, crops, five, mesh=None, classes=None, mirror=False):
        with self._lock:
            return self.parser(crops, five, mesh, classes, mirror=mirror)

    def __getattr__(self, name):
        return getattr(self.parser, name)


class ParserCache:
    """One parser per (model, device), shared by every session: loading and `auto`'s timing are
    slow, and parsers keep no per-stream state (trackers and smoothers live in the pipelines)."""

    def __init__(self, device: str = "auto", log=log.info, leave_a_core: bool = False):
        self.device = device
        self.log = log
        self.leave_a_core = leave_a_core   # stream.assemble's: set torch's threads for the pipelines
        self._parsers = {}
        self._lock = threading.Lock()

    def get(self, model: str = "auto", live: bool = True):
        """The parser of a tier; for "auto", live: the most accurate one that keeps up here,
        else (photos: no frame budget) the most accurate one, as run_live.py picks them."""
        model = model or "auto"
        with self._lock:   # two sessions asking at once load it once
            key = (model, self.device, live if model == "auto" else None)
            if key not in self._parsers:
                self._parsers[key] = SharedParser(session.create_parser(model, self.device, log=self.log,
                                                                        leave_a_core=self.leave_a_core, live=live))
            return self._parsers[key]

    def pipeline(self, model: str, **options):
        """A new FacePipeline (own tracker and smoothers) around the cached parser."""
        live = not options.get("static_images", False)
        return session.build_pipeline(model=model, device=self.device, parser=self.get(model, live=live),
                                      leave_a_core=self.leave_a_core, **options)


# --- images -------------------------------------------------------------------------------
def load_image(value, name: str | None = None) -> tuple[np.ndarray, str]:
    """An upload (a file path, or an array from the page) -> (RGB uint8 image, note).
    The note says when the image was downscaled; InputError for what cannot be used."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        name = name or path.name
        _check_pixels(path, name)
        try:
            image = capture.read_image(path)
        except InputError as exc:
            raise InputError(str(exc).replace(str(path), name)) from None
    else:
        image = as_rgb(value)
    return fit_image(image, MAX_IMAGE_SIDE)


def _check_pixels(path: Path, name: str):
    """Refuse images too large to decode safely, reading only the header."""
    import PIL.Image
    try:
        with PIL.Image.open(path) as im:
            width, height = im.size
    except PIL.Image.DecompressionBombError:
        raise InputError(f"{name} is too large to process (over {MAX_IMAGE_PIXELS // 1_000_000} megapixels)") from None
    except Exception:   # a format PIL does not know: OpenCV decides below
        return
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(f"{name} is too large to process ({width}x{height}, over "
                         f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels)")


def as_rgb(image) -> np.ndarray:
    """Gray, RGBA or float arrays -> (H, W, 3) uint8 RGB."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0 or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"not an image (array of shape {image.shape})")
    if image.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(image.dtype, np.floating) and image.max() <= 1.0 else 1.0
        image = np.clip(image * scale + 0.5 * (scale > 1), 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(image)


def fit_image(image: np.ndarray, max_side: int) -> tuple[np.ndarray, str]:
    """(image scaled down so its long side is at most max_side, a note when it was)."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, ""
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, f"downscaled from {w}x{h} to {size[0]}x{size[1]}"


def describe(result, seconds: float, model: str) -> str:
    n = len(result.faces)
    if n == 0:
        return "No face found: the image is shown unchanged. Try a larger, frontal, well-lit face."
    return f"{n} face{'s' if n > 1 else ''} found ({model} parser, {seconds * 1000:.0f} ms)."


def process_image(value, controls: dict, parsers: ParserCache, name: str | None = None, max_faces: int = 4):
    """(output RGB image, message) for one uploaded image; the input unchanged when no face."""
    result, message = _run_image(value, settings_from_controls(controls), controls.get("model"),
                                 bool(controls.get("show_labels")), parsers, name, max_faces)
    return result.output, message


def parse_image(value, model: str, parsers: ParserCache, max_faces: int = 4):
    """The API's /parse: (class-id map (H, W) uint8, label overlay RGB, [{id, box, points}] per face, message)."""
    result, message = _run_image(value, None, model, True, parsers, None, max_faces)
    faces = [{"id": int(fp.face.id), "box": [int(v) for v in fp.box],
              "points": np.round(fp.face.five, 1).tolist()} for fp in result.faces]
    return session.label_map(result), result.output, faces, message


def _run_image(value, settings, model, show_labels, parsers, name, max_faces):
    image, note = load_image(value, name)
    pipeline = parsers.pipeline(model or "auto", effects=settings, static_images=True,
                                show_labels=show_labels, max_faces=max_faces)
    try:
        t0 = time.perf_counter()
        result = pipeline.process(Frame(image=image, index=0, time=0.0))
        seconds = time.perf_counter() - t0
    finally:
        pipeline.close()
    message = describe(result, seconds, tier_name(pipeline.parser))
    return result, f"{message} Image {note}." if note else message


def tier_name(parser) -> str:
    parser = getattr(parser, "parser", parser)   # through SharedParser
    return getattr(parser, "name", type(parser).__name__)


# --- video files ----------------------------------------------------------------------------
def open_video(path, name: str | None = None) -> capture.VideoFileSource:
    """A VideoFileSource, or InputError for an unreadable or over-long video."""
    path = Path(path)
    name = name or path.name
    try:
        source = capture.VideoFileSource(path)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), name)) from None
    seconds = source.n_frames / source.fps if source.fps else 0.0
    if source.n_frames > MAX_VIDEO_FRAMES or seconds > MAX_VIDEO_SECONDS:
        source.close()
        raise InputError(f"{name} is too long for this demo ({seconds:.0f} s, {source.n_frames} frames; "
                         f"the limit is {MAX_VIDEO_SECONDS:.0f} s and {MAX_VIDEO_FRAMES} frames). "
                         f"Cut it shorter, or use run_live.py for long videos.")
    return source


def _fitted(frames, max_side: int):
    for frame in frames:
        image, _ = fit_image(frame.image, max_side)
        yield Frame(image=image, index=frame.index, time=frame.time, pts=frame.pts, time_base=frame.time_base)


def process_video(path, controls: dict, parsers: ParserCache, out_dir, name: str | None = None,
                  progress=None, max_faces: int = 4) -> tuple[Path, str]:
    """Process a whole video as run_live.py does (stream.video_loop.process_video: every frame,
    same timing, audio copied); returns (output mp4 path, message). `progress(done, total)` is
    called per frame."""
    source = open_video(path, name)
    name = name or Path(path).name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    big = max(source.size) > MAX_VIDEO_SIDE
    try:
        settings = settings_from_controls(controls)
        pipeline = parsers.pipeline(controls.get("model") or "auto", effects=settings,
                                    show_labels=bool(controls.get("show_labels")), max_faces=max_faces)
    except BaseException:
        source.close()
        raise
    report = None if progress is None else (lambda result, run: progress(run.frames, source.n_frames))
    run = video_loop.process_video(source, pipeline, out_dir / f"{Path(name).stem}_parsed.mp4",
                                   frames=_fitted(source, MAX_VIDEO_SIDE) if big else None, on_frame=report,
                                   max_frames=MAX_VIDEO_FRAMES, name=name)
    audio = "audio kept" if source.has_audio else "no audio in the input"
    message = (f"{run.frames} frames in {run.seconds:.1f} s ({run.fps:.1f} fps), faces in "
               f"{run.with_face} of them; {audio}.")
    if big:
        message += f" Frames downscaled to {MAX_VIDEO_SIDE} px on the long side."
    if run.lost:
        message += f" Warning: {run.lost_note()}."
    if run.with_face == 0:
        message = "No face found in any frame: the video is unchanged. " + message
    return run.output, message


# --- live webcam ------------------------------------------------------------------------------
class LiveSession:
    """One browser session's webcam stream: its own FacePipeline (tracker ids, landmark and
    label smoothing), created at the first frame, rebuilt when the model changes.

    Frames that arrive while the previous one is still being processed are dropped (process
    returns None), as stream.capture.CameraSource does: newest frame wins, no growing lag."""

    def __init__(self, parsers: ParserCache, max_faces: int = 4):
        self.parsers = parsers
        self.max_faces = max_faces
        self.pipeline = None
        self.model = None
        self.frames = 0
        self.dropped = 0
        self.closed = False
        self._start = time.monotonic()
        self._busy = threading.Lock()

    def process(self, image, controls: dict):
        """(output RGB image, message) for one webcam frame, or None when busy or closed."""
        if not self._busy.acquire(blocking=False):
            self.dropped += 1
            return None
        try:
            if self.closed:
                return None
            image, _ = fit_image(as_rgb(image), MAX_VIDEO_SIDE)
            model = controls.get("model") or "auto"
            if self.pipeline is None or model != self.model:
                self._close_pipeline()
                self.pipeline = self.parsers.pipeline(model, max_faces=self.max_faces)
                self.model = model
            self.pipeline.effects = settings_from_controls(controls)
            self.pipeline.show_labels = bool(controls.get("show_labels"))
            t0 = time.perf_counter()
            result = self.pipeline.process(Frame(image=image, index=self.frames,
                                                 time=time.monotonic() - self._start))
            self.frames += 1
            ms = (time.perf_counter() - t0) * 1000
            n = len(result.faces)
            message = f"{n} face{'' if n == 1 else 's'}, {ms:.0f} ms per frame" if n else "no face in view"
            return result.output, message
        finally:
            self._busy.release()

    def _close_pipeline(self):
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    def close(self):
        """Free the tracker; safe to call twice (the page's unload hook and the state's expiry)."""
        with self._busy:
            self.closed = True
            self._close_pipeline()


# --- messages -------------------------------------------------------------------------------------
def error_message(exc: BaseException) -> str:
    """One readable line for the page; unexpected errors are logged in full on the server."""
    if is_user_error(exc):
        return str(exc)
    log.exception("unexpected error in a page handler")
    return f"Something went wrong ({type(exc).__name__}: {exc}). The server is still running; try another input."


def cleanup_old_files(folder, max_age_s: float = 3600.0):
    """Delete results older than max_age_s (outputs are kept for the user to download)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    now = time.time()
    stale = []
    for path in folder.rglob("*"):   # ages first: deleting a file makes its folder look new
        try:
            if now - path.stat().st_mtime > max_age_s:
                stale.append(path)
        except OSError:
            pass
    for path in sorted(stale, reverse=True):   # files before the folders holding them
        try:
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            else:
                path.unlink()
        except OSError:
            pass

#!/usr/bin/env python
"""Face parsing with live effects: a webcam window, or a video/image/folder processed to files.

examples:
  python run_live.py --camera 0                                   # window; q quits, o labels, s/b/e/w/l/t/h effects
  python run_live.py --camera /dev/video2                         # a device path, or a stream URL (rtsp://...)
  python run_live.py --input assets/demo.mp4 --output out/demo.mp4
  python run_live.py --input photo.jpg --output out.png --save-labels labels.png
  python run_live.py --input photos/ --output out/ --save-labels labels/
  python run_live.py --input clip.mp4 --output out.mp4 --effects "lipstick=crimson:0.7:gloss,hair=#6a2ca0:0.5"
  python run_live.py --camera 0 --virtual-camera                  # into a video call (Zoom, Meet, Teams, OBS)

Results go to stdout, messages and warnings to stderr; bad input gives one "error:" line, exit code 2.
Only assembles the stages (stream/, models/, effects/); the logic lives there.
"""
import argparse
import logging
import sys
import time
from pathlib import Path

DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "demo.mp4"
log = logging.getLogger("faceparse.run_live")


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one "error:" line and exit code 2, like every other bad input."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def model_name(value: str) -> str:
    """--model's type: its own message for an unknown name (argparse's says "invalid choice")."""
    from models.parsers.registry import TIERS
    if value != "auto" and value not in TIERS:
        raise argparse.ArgumentTypeError(f"unknown model '{value}'; choose from: auto, {', '.join(TIERS)}")
    return value


def parse_args(argv=None):
    from models.parsers.registry import TIERS
    description, _, epilog = __doc__.partition("\nexamples:\n")
    p = OneLineParser(description=description.strip(), epilog="examples:\n" + epilog,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", metavar="N|DEVICE|URL",
                     help="live source: a webcam index (0), a device path (/dev/video2) or a stream URL")
    src.add_argument("--input", metavar="PATH", help="video file, image file or folder of images")
    p.add_argument("--output", metavar="PATH", help="output video/image (a folder for a folder input)")
    p.add_argument("--virtual-camera", nargs="?", const="", default=None, metavar="DEVICE",
                   help="send the frames to a virtual webcam for video calls (v4l2loopback on Linux, OBS Virtual "
                        "Camera on Windows/macOS), at the source's size and rate; DEVICE e.g. /dev/video2 "
                        "(default: the first one). With --camera or a video --input (played at its frame rate)")
    p.add_argument("--no-window", action="store_true", help="with --camera --virtual-camera: no local window")
    p.add_argument("--effects", default=None, metavar="SPEC",
                   help='e.g. "lipstick=crimson:0.7:gloss,hair=#6a2ca0:0.5,smooth=0.4" (colours: CSS names or '
                        '#rrggbb; "none" for none; default: a few tasteful ones)')
    p.add_argument("--model", default="auto", type=model_name, choices=["auto", *TIERS],
                   help="parser tier (default auto: the most accurate one that keeps up here; see "
                        "checkpoints/<model>.md for each one's scores)")
    p.add_argument("--checkpoint", metavar="PATH", help="weights for --model (default: checkpoints/<model>.pt)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--show-labels", action="store_true", help="overlay the class labels")
    p.add_argument("--save-labels", metavar="PATH",
                   help="label maps (class ids): a PNG for an image, a folder for a folder, "
                        "a lossless .mkv (one gray frame per video frame) for a video")
    p.add_argument("--max-faces", type=int, default=4, metavar="N")
    p.add_argument("--no-smooth", action="store_true", help="turn temporal smoothing off")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="results and warnings only: no messages, no "
                                                                  "progress bars")
    talk.add_argument("--verbose", action="store_true", help="debug messages, and mediapipe's native log lines")
    p.add_argument("--budget-ms", type=float, default=None, help="per-face parse budget for --model auto")
    p.add_argument("--ray", metavar="local|ADDRESS", help="spread a folder's photos and videos over Ray workers: "
                                                       "'local' (this machine) or a cluster's address")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="Ray workers for --ray (default 2)")
    return p.parse_args(argv)


def configure_logging(args):
    """Messages of the project's loggers ("faceparse.*") to stderr: warnings as "warning: ...";
    -q keeps warnings only, --verbose adds debug messages."""
    handler = _StderrHandler()
    handler.setFormatter(_MessageFormatter())
    logger = logging.getLogger("faceparse")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)
    logger.propagate = False


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (hide_native_stderr replaces it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _MessageFormatter(logging.Formatter):
    def format(self, record):
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname.lower()}: {message}"


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:   # --help, or a bad argument (its one line already printed)
        return exc.code
    if not args.verbose:
        from models.perception.quiet import hide_native_stderr
        hide_native_stderr()
    configure_logging(args)
    from stream.user_errors import user_errors
    from stream.video_loop import Interrupted
    try:
        return run(args)
    except user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(interrupted_message(stop.run, args), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def interrupted_message(run, args) -> str:
    """What Ctrl-C left behind, in one line."""
    kept = " and ".join(str(p) for p in (run.output, run.labels) if p is not None)
    if not kept:
        return "interrupted before any frame was done: nothing written"
    if not run.partial:   # a camera recording ends where it was stopped
        return f"stopped: wrote {kept} ({run.frames} frames)"
    return (f"interrupted: the {run.frames} frames done so far are in {kept} (partial: "
            f"{args.output or 'the output'} was not written)")


def run(args) -> int:
    import effects
    from stream import capture
    from core.errors import InputError

    if args.ray:
        from stream import ray_live
        return ray_live.run(args)
    if args.max_faces < 1:
        raise InputError("--max-faces must be at least 1")
    if args.budget_ms is not None and args.budget_ms <= 0:
        raise InputError("--budget-ms must be more than 0")
    settings = None if args.effects == "none" else effects.parse_effects(args.effects or effects.DEFAULT_EFFECTS)
    if args.camera is None and args.input is None:
        import cv2
        probe = cv2.VideoCapture(0)
        ok = probe.isOpened()
        probe.release()
        if not ok:
            raise InputError(f"no camera found and no --input given; try the bundled demo clip: "
                             f"python run_live.py --input {DEMO_CLIP.relative_to(Path.cwd()) if DEMO_CLIP.is_relative_to(Path.cwd()) else DEMO_CLIP} --output out/demo.mp4")
        args.camera = 0
    if args.no_window and (args.virtual_camera is None or args.input is not None):
        raise InputError("--no-window goes with --camera N --virtual-camera (nothing else opens a window)")
    if args.camera is not None:
        source = capture.CameraSource(int(args.camera) if str(args.camera).isdigit() else args.camera)
    else:
        source = capture.open_source(args.input)
    virtual_camera = None
    if args.virtual_camera is not None:   # opened first: a missing device stops the run before any output
        virtual_camera = open_virtual_camera(source, args.virtual_camera or None)
    try:
        return run_source(source, settings, virtual_camera, args)
    finally:
        if virtual_camera is not None:
            virtual_camera.close()
        source.close()   # closed already by the runs; here when a check or the model fails first


def run_source(source, settings, virtual_camera, args) -> int:
    from stream import capture, assemble as session
    if args.output:
        _check_writable(Path(args.output), folder=source.mode is capture.Mode.IMAGE and source.folder)
        if source.mode is not capture.Mode.IMAGE:
            _check_video_output(Path(args.output), source)
    if args.save_labels and source.mode is not capture.Mode.IMAGE:   # a video's labels: one .mkv, its folder made as --output's
        from stream.video_io import LabelVideoWriter, check_video_name
        _check_writable(Path(args.save_labels), folder=False)
        check_video_name(Path(args.save_labels), LabelVideoWriter.formats)
    targets = image_targets(source, args) if source.mode is capture.Mode.IMAGE else None

    # leave_a_core: torch gets one thread fewer than the cores, the tracking thread keeps one
    options = dict(model=args.model, device=args.device, effects=settings, max_faces=args.max_faces,
                   smooth=not args.no_smooth, show_labels=args.show_labels, leave_a_core=True)
    if args.checkpoint:
        from models.parsers import registry
        session.leave_a_core_to_tracking()   # weights: a learned tier, torch
        options["parser"] = registry.create_parser(args.model, device=args.device, checkpoint=args.checkpoint)
    elif args.budget_ms is not None and args.model == "auto":
        options["parser"] = session.create_parser("auto", args.device, budget_ms=args.budget_ms, leave_a_core=True)

    if source.mode is capture.Mode.LIVE:
        pipeline = session.build_pipeline(**options)
        pipeline.labels_wanted = False   # the window and the recording show effects, not label maps
        return run_camera(source, pipeline, settings, output=args.output,
                          virtual_camera=virtual_camera, window=not args.no_window, quiet=args.quiet)
    if source.mode is capture.Mode.IMAGE:
        pipeline = session.build_pipeline(static_images=True, **options)
        pipeline.labels_wanted = bool(args.save_labels)
        return run_images(source, pipeline, args, targets)
    pipeline = session.build_pipeline(**options)
    pipeline.labels_wanted = bool(args.save_labels)   # else the hair network runs only for the hair effect
    return run_video(source, pipeline, args, virtual_camera)


def open_virtual_camera(source, device):
    """A VirtualCamera at the source's size and rate; InputError for a still-image source or no device."""
    from stream import capture
    from stream.virtual_camera import VirtualCamera
    from core.errors import InputError
    if source.mode is capture.Mode.IMAGE:
        source.close()
        raise InputError("--virtual-camera needs --camera N or a video --input, not images")
    try:
        camera = VirtualCamera(*source.size, fps=source.fps, device=device)
    except InputError:
        source.close()
        raise
    log.info(f"virtual camera: {camera.device} ({camera.size[0]}x{camera.size[1]} at {camera.fps:g} fps); "
             f"pick it as the camera in the call")
    return camera


def _check_writable(path: Path, folder: bool):
    from core.errors import InputError
    target = path if folder else path.parent
    blocking = next((p for p in (target, *target.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise InputError(f"cannot write to {target}: {blocking} is a file, not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to {target}: {exc.strerror}") from None
    import os
    if not os.access(target, os.W_OK):
        raise InputError(f"output folder {target} is not writable")


LOSSLESS_IMAGES = (".png", ".bmp", ".tif", ".tiff")   # label maps hold class ids: no lossy format


def _image_format(path: Path) -> str:
    return path.suffix.lower() or ".png"   # a name without an extension gets PNG data


def _check_image_output(path: Path, labels: bool = False):
    """An image's output or label map: a format OpenCV writes (lossless for labels), refused
    before any work is done."""
    import cv2
    from core.errors import InputError
    ext = _image_format(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder (give a file name, e.g. {path / 'out.png'})")
    if labels and ext not in LOSSLESS_IMAGES:
        raise InputError(f"cannot write label map {path}: class ids need a lossless format, use .png")
    if not cv2.haveImageWriter(f"x{ext}"):
        raise InputError(f"cannot write an image as '{ext}': use .png or .jpg")


def _check_video_output(path: Path, source):
    """A video or camera makes a video: refuse an image name before any work is done."""
    from core.errors import InputError
    from stream.capture import IMAGE_EXTENSIONS, Mode
    from stream.video_io import check_video_name
    check_video_name(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS | {".gif"}:
        what = "the camera" if source.mode is Mode.LIVE else (
            f"{source.path.name} (an animated GIF)" if source.path.suffix.lower() == ".gif" else source.path.name)
        raise InputError(f"{what} makes a video, not an image: use --output NAME.mp4 (or .mkv, .mov, .webm)")


def run_video(source, pipeline, args, virtual_camera=None) -> int:
    """Every frame to --output (default out/<name>_parsed.mp4); with a virtual camera, to it at the
    clip's own rate, and to a file only when --output is given."""
    from stream.video_loop import process_video

    if args.output:
        output = Path(args.output)  # checked in run(); the writer checks again when it opens
    elif virtual_camera is None:
        output = Path("out") / f"{source.path.stem}_parsed.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
    else:
        output = None
    send = None
    if virtual_camera is not None:
        def send(result, run):
            virtual_camera.send(result.output, at=result.frame.time)
    run = process_video(source, pipeline, output, labels=args.save_labels, on_frame=send, progress=not args.quiet)
    if run.labels is not None:
        print(f"labels: {run.labels}")
    if run.output is not None:
        print(f"wrote {run.output} ({run.frames} frames)")
    if virtual_camera is not None:
        print(f"sent {virtual_camera.frames_sent} frames to {virtual_camera.device}")
    if run.lost:
        log.warning(run.lost_note())
    return 3 if run.damaged else 0


def image_targets(source, args) -> dict:
    """{photo: (output path or None, label path or None)}, checked before any work: a folder's
    go into folders (one name per photo), none over a photo."""
    from stream import output_names
    many = source.folder   # a folder of images, even of one: outputs go to folders
    if many and args.save_labels:  # --output's folder was checked in run_source
        _check_writable(Path(args.save_labels), folder=True)
    if not many:
        if args.output:
            _check_image_output(Path(args.output))
        if args.save_labels:
            _check_image_output(Path(args.save_labels), labels=True)
            _check_writable(Path(args.save_labels), folder=False)
    stems = output_names.output_stems(source.paths)

    def output_of(path):
        if many:
            return Path(args.output) / f"{stems[path]}.png" if args.output else None
        return Path(args.output) if args.output else Path("out") / f"{path.stem}_parsed.png"

    def labels_of(path):
        if not args.save_labels:
            return None
        return Path(args.save_labels) / f"{stems[path]}.png" if many else Path(args.save_labels)

    targets = {path: (output_of(path), labels_of(path)) for path in source.paths}
    output_names.check_not_inputs([p for pair in targets.values() for p in pair if p is not None], source.paths)
    return targets


def run_images(source, pipeline, args, targets: dict, batch: int = 8) -> int:
    from tqdm import tqdm
    from stream import assemble as session
    from core.errors import InputError

    many = source.folder
    failed, no_face, done = [], [], 0

    def save(result):
        path = source.paths[result.frame.index]
        if not result.faces:
            no_face.append(path)
        out, labels = targets[path]
        alpha = source.alphas.pop(result.frame.index, None)
        if out is not None:
            _write_image(out, result.output, alpha)
        if labels is not None:
            _write_image(labels, session.label_map(result))
        return out

    pending, last = [], None
    bar = tqdm(total=len(source), unit="image", disable=not many or args.quiet)

    def flush():
        nonlocal last, done
        for result in pipeline.parse_batch(pending):
            last = save(pipeline.render(result))
            done += 1
            bar.update(1)
        pending.clear()

    for i in range(len(source)):
        try:
            frame = source[i]
        except InputError as exc:
            failed.append(f"{exc}")
            bar.update(1)
            continue
        pending.append(pipeline.track(frame))
        if len(pending) == batch:
            flush()
    flush()
    bar.close()
    pipeline.close()
    for message in failed:
        log.warning(f"skipped: {message}")
    if source.videos_left_out:
        log.warning(f"left out {len(source.videos_left_out)} video(s) of the folder (a folder's photos only: run a "
                    f"video alone, or the folder with --ray): " + ", ".join(p.name for p in source.videos_left_out))
    for path in no_face:
        log.warning(f"no face found in {path}: written unchanged")
    from stream.capture import image_frames
    for path in source.paths:
        if (frames := image_frames(path)) > 1:   # PyAV reads no animated WebP/PNG as a video: say so
            log.warning(f"{path} holds {frames} frames: only its first was processed (an animated image "
                        f"converted to a video, e.g. .mp4 or .gif, is processed frame by frame)")
    if many:
        print(f"processed {done} of {len(source)} images" + (f" into {args.output}" if args.output else ""))
    elif last is not None:
        print(f"wrote {last}")
    if failed and not done:
        return 2
    return 0


def _write_image(path: Path, image, alpha=None):
    """An RGB image (with the input's transparency, where the format keeps one) or a label map
    (2-D class ids) to `path`, whole or not at all."""
    from stream.video_io import encode_image
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = _image_format(path)
    data = encode_image(ext, image, alpha)
    if data is None:
        from core.errors import InputError
        raise InputError(f"cannot write an image as '{ext}': use .png or .jpg")
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
    except OSError as exc:   # disk full, file-size limit: no truncated file left behind
        tmp.unlink(missing_ok=True)
        from core.errors import OutputError, os_reason
        raise OutputError(f"cannot write {path}: {os_reason(exc)}") from None
    tmp.replace(path)


def window_keys() -> str:
    from effects import TOGGLE_KEYS
    return "keys: q quit, o label overlay, " + ", ".join(f"{k} {n}" for k, n in TOGGLE_KEYS.items())


def has_display() -> bool:
    """Whether a window can open: on Linux OpenCV's Qt aborts the whole process without a display."""
    import os
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_camera(source, pipeline, settings, output=None, virtual_camera=None, window: bool = True,
               quiet: bool = False) -> int:
    """The live loop: each frame to the window (keys toggle effects) and/or the virtual camera, and
    with `output` recorded too, until q or Ctrl-C (without a display: no window)."""
    import cv2
    from core.errors import InputError
    from stream.video_loop import process_video

    window = window and has_display()
    if not window and output is None and virtual_camera is None:
        source.close()
        pipeline.close()
        raise InputError("cannot open a window here (no display): add --output FILE.mp4 to record the "
                         "camera, or --virtual-camera --no-window, or use --input/--output")
    log.info(window_keys() if window else "no window: " + (f"recording to {output}" if output else
             "sending to the virtual camera") + "; Ctrl-C stops")
    fps, last = 0.0, time.perf_counter()

    def show(result, run):
        nonlocal fps, last
        if virtual_camera is not None:
            virtual_camera.send(result.output)
        if not window:
            return True
        now = time.perf_counter()
        fps = 0.9 * fps + 0.1 / max(now - last, 1e-6)
        last = now
        bgr = cv2.cvtColor(result.output, cv2.COLOR_RGB2BGR)
        cv2.putText(bgr, f"{fps:4.1f} fps  {len(result.faces)} face(s)  dropped {source.dropped}",
                    (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        try:
            cv2.imshow("face parsing", bgr)
        except cv2.error:
            raise InputError("cannot open a window here; use --input/--output, "
                             "or --virtual-camera --no-window") from None
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        if key == ord("o"):
            pipeline.show_labels = not pipeline.show_labels
        elif settings is not None and key < 128:
            settings.toggle_key(chr(key))
        return True

    try:
        run = process_video(source, pipeline, output, on_frame=show, progress=False)
    finally:
        if window:
            cv2.destroyAllWindows()
    if run.output is not None:
        print(f"wrote {run.output} ({run.frames} frames)")
    if run.disconnected:
        kept = f"; the recording so far is in {run.output}" if run.output is not None else ""
        if "://" in source.name:
            why = ("the stream ended or the connection dropped; a video file's URL is read faster than it plays: "
                   "download it and use --input")
        elif Path(source.name).is_file():
            why = "the file ended; a file given to --camera is read as fast as it decodes, newest frame first: use --input"
        else:
            why = "unplugged, or taken by another program"
        log.warning(f"camera {source.name} stopped delivering frames after {run.frames} frames ({why}){kept}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Face parsing with live effects: a webcam window, or a video/image/folder processed to files.

    python run_live.py --camera 0
    python run_live.py --input assets/demo.mp4 --output out/demo.mp4
    python run_live.py --input photos/ --output out/ --save-labels labels/

Only assembles the stages (stream/, models/, effects/); the logic lives there.
"""
import argparse
import sys
import time
from pathlib import Path

DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "demo.mp4"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, metavar="N", help="webcam index: live window")
    src.add_argument("--input", metavar="PATH", help="video file, image file or folder of images")
    p.add_argument("--output", metavar="PATH", help="output video/image (a folder for a folder input)")
    p.add_argument("--effects", default=None, metavar="SPEC",
                   help='e.g. "lipstick=#b0103a:0.7:gloss,hair=#6a2ca0:0.5,smooth=0.4" ("none" for none; '
                        "default: a few tasteful ones)")
    p.add_argument("--model", default="auto", help="parser tier: auto, landmarks, rnng, student, teacher, "
                                                    "rednet, bspnet, stn-icnn")
    p.add_argument("--checkpoint", metavar="PATH", help="weights for --model (default: checkpoints/<model>.pt)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--show-labels", action="store_true", help="overlay the class labels")
    p.add_argument("--save-labels", metavar="PATH",
                   help="label maps (class ids): a PNG for an image, a folder for a folder, "
                        "a lossless .mkv (one gray frame per video frame) for a video")
    p.add_argument("--max-faces", type=int, default=4, metavar="N")
    p.add_argument("--no-smooth", action="store_true", help="turn temporal smoothing off")
    p.add_argument("--verbose", action="store_true", help="keep mediapipe's native log lines")
    p.add_argument("--budget-ms", type=float, default=None, help="per-face parse budget for --model auto")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.verbose:
        from models.perception.quiet import hide_native_stderr
        hide_native_stderr()
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
    from stream import capture, assemble as session
    from core.errors import InputError

    if args.max_faces < 1:
        raise InputError("--max-faces must be at least 1")
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
    if args.camera is not None:
        source = capture.CameraSource(args.camera)
    else:
        source = capture.open_source(args.input)
    try:
        return run_source(source, settings, args)
    finally:
        source.close()   # closed already by the runs; here when a check or the model fails first


def run_source(source, settings, args) -> int:
    from stream import capture, assemble as session
    if args.output:
        _check_writable(Path(args.output), folder=source.mode is capture.Mode.IMAGE and len(source) > 1)
        if source.mode is not capture.Mode.IMAGE:
            _check_video_output(Path(args.output), source)

    options = dict(model=args.model, device=args.device, effects=settings, max_faces=args.max_faces,
                   smooth=not args.no_smooth, show_labels=args.show_labels)
    if args.checkpoint:
        from models.parsers import registry
        options["parser"] = registry.create_parser(args.model, device=args.device, checkpoint=args.checkpoint)
    elif args.budget_ms is not None and args.model == "auto":
        options["parser"] = session.create_parser("auto", args.device, budget_ms=args.budget_ms)

    if source.mode is capture.Mode.LIVE:
        return run_camera(source, session.build_pipeline(**options), settings, output=args.output)
    if source.mode is capture.Mode.IMAGE:
        return run_images(source, session.build_pipeline(static_images=True, **options), args)
    return run_video(source, session.build_pipeline(**options), args)


def _check_writable(path: Path, folder: bool):
    from core.errors import InputError
    target = path if folder else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to {target}: {exc.strerror}") from None
    import os
    if not os.access(target, os.W_OK):
        raise InputError(f"output folder {target} is not writable")


def _check_video_output(path: Path, source):
    """A video or camera makes a video: refuse an image name before any work is done."""
    from core.errors import InputError
    from stream.capture import IMAGE_EXTENSIONS, Mode
    if path.suffix.lower() in IMAGE_EXTENSIONS | {".gif"}:
        what = "the camera" if source.mode is Mode.LIVE else (
            f"{source.path.name} (an animated GIF)" if source.path.suffix.lower() == ".gif" else source.path.name)
        raise InputError(f"{what} makes a video, not an image: use --output NAME.mp4 (or .mkv, .mov)")


def run_video(source, pipeline, args) -> int:
    from stream.video_loop import process_video

    if args.output:
        output = Path(args.output)  # checked in run(); the writer checks again when it opens
    else:
        output = Path("out") / f"{source.path.stem}_parsed.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
    run = process_video(source, pipeline, output, labels=args.save_labels)
    if run.labels is not None:
        print(f"labels: {run.labels}")
    print(f"wrote {run.output} ({run.frames} frames)")
    if run.lost:
        print(f"warning: {run.lost_note()}", file=sys.stderr)
    return 3 if run.damaged else 0


def run_images(source, pipeline, args, batch: int = 8) -> int:
    import cv2
    from tqdm import tqdm
    from stream import assemble as session
    from core.errors import InputError

    many = len(source) > 1
    out_dir = Path(args.output) if args.output and many else None
    label_dir = Path(args.save_labels) if args.save_labels and many else None
    if label_dir is not None:  # out_dir was checked in run()
        _check_writable(label_dir, folder=True)
    failed, no_face, done = [], [], 0

    def save(result):
        path = source.paths[result.frame.index]
        if not result.faces:
            no_face.append(path)
        out = Path(args.output) if args.output and not many else (out_dir / f"{path.stem}.png" if out_dir else None)
        if out is None and not many:
            out = Path("out") / f"{path.stem}_parsed.png"
            out.parent.mkdir(parents=True, exist_ok=True)
        if out is not None:
            _write_image(out, result.output)
        if args.save_labels:
            lab = Path(args.save_labels) if not many else label_dir / f"{path.stem}.png"
            lab.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(lab), session.label_map(result))
        return out

    pending, last = [], None
    bar = tqdm(total=len(source), unit="image", disable=not many)

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
        print(f"skipped: {message}", file=sys.stderr)
    for path in no_face:
        print(f"no face found in {path}: written unchanged")
    if many:
        print(f"processed {done} of {len(source)} images" + (f" into {out_dir}" if out_dir else ""))
    elif last is not None:
        print(f"wrote {last}")
    if failed and not done:
        return 2
    return 0


def _write_image(path: Path, rgb):
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower() if path.suffix else ".png"
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        from core.errors import InputError
        raise InputError(f"cannot write an image as '{ext}': use .png or .jpg")
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data.tobytes())
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


def run_camera(source, pipeline, settings, output=None) -> int:
    """The live window (keys toggle effects); with `output`, the processed stream is recorded too
    (without a display: recorded only, until Ctrl-C)."""
    import cv2
    from core.errors import InputError
    from stream.video_loop import process_video

    window = has_display()
    if not window and output is None:
        source.close()
        pipeline.close()
        raise InputError("cannot open a window here (no display): add --output FILE.mp4 to record the "
                         "camera, or use --input/--output")
    print(window_keys() if window else f"no display: recording to {output} without a window; Ctrl-C stops")
    fps, last = 0.0, time.perf_counter()

    def show(result, run):
        nonlocal fps, last
        now = time.perf_counter()
        fps = 0.9 * fps + 0.1 / max(now - last, 1e-6)
        last = now
        bgr = cv2.cvtColor(result.output, cv2.COLOR_RGB2BGR)
        cv2.putText(bgr, f"{fps:4.1f} fps  {len(result.faces)} face(s)  dropped {source.dropped}",
                    (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        try:
            cv2.imshow("face parsing", bgr)
        except cv2.error:
            raise InputError("cannot open a window here; use --input/--output instead") from None
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        if key == ord("o"):
            pipeline.show_labels = not pipeline.show_labels
        elif settings is not None and key < 128:
            settings.toggle_key(chr(key))
        return True

    try:
        run = process_video(source, pipeline, output, on_frame=show if window else None)
    finally:
        if window:
            cv2.destroyAllWindows()
    if run.output is not None:
        print(f"wrote {run.output} ({run.frames} frames)")
    if run.disconnected:
        kept = f"; the recording so far is in {run.output}" if run.output is not None else ""
        print(f"warning: camera {source.name} stopped delivering frames after {run.frames} frames "
              f"(unplugged, or taken by another program){kept}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
    from effects import EffectSpecError
    from models.parsers.checkpoint import CheckpointError
    from models.parsers.registry import UnknownModel
    from core.errors import InputError
    try:
        return run(args)
    except (InputError, EffectSpecError, UnknownModel, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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
    if args.output:
        _check_writable(Path(args.output), folder=isinstance(source, capture.ImageSource) and len(source) > 1)

    options = dict(model=args.model, device=args.device, effects=settings, max_faces=args.max_faces,
                   smooth=not args.no_smooth, show_labels=args.show_labels)
    if args.checkpoint:
        from models.parsers import registry
        options["parser"] = registry.create_parser(args.model, device=args.device, checkpoint=args.checkpoint)
    elif args.budget_ms is not None and args.model == "auto":
        options["parser"] = session.create_parser("auto", args.device, budget_ms=args.budget_ms)

    if isinstance(source, capture.CameraSource):
        return run_camera(source, session.build_pipeline(**options), settings)
    if isinstance(source, capture.ImageSource):
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


def run_video(source, pipeline, args) -> int:
    from tqdm import tqdm
    from stream import assemble as session, video_io

    if args.output:
        output = Path(args.output)  # checked in run(); the writer checks again when it opens
    else:
        output = Path("out") / f"{source.path.stem}_parsed.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
    writer = video_io.VideoWriter(output, source=source)
    labels = video_io.LabelVideoWriter(Path(args.save_labels), source=source) if args.save_labels else None
    n = 0
    try:
        with tqdm(total=source.n_frames or None, unit="frame", desc=source.path.name) as bar:
            for result in pipeline.run(source):
                writer.write(result.output, pts=result.frame.pts)
                if labels is not None:
                    labels.write(session.label_map(result), pts=result.frame.pts)
                n += 1
                bar.update(1)
    except BaseException:
        writer.abort()
        if labels is not None:
            labels.abort()
        raise
    finally:
        source.close()
        pipeline.close()
    path = writer.close()
    if labels is not None:
        print(f"labels: {labels.close()}")
    print(f"wrote {path} ({n} frames)")
    return 0


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
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)


def window_keys() -> str:
    from effects import TOGGLE_KEYS
    return "keys: q quit, o label overlay, " + ", ".join(f"{k} {n}" for k, n in TOGGLE_KEYS.items())


def run_camera(source, pipeline, settings) -> int:
    import cv2
    from core.errors import InputError

    print(window_keys())
    fps, last = 0.0, time.perf_counter()
    try:
        for result in pipeline.run(source, live=True):
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6)
            last = now
            bgr = cv2.cvtColor(result.output, cv2.COLOR_RGB2BGR)
            cv2.putText(bgr, f"{fps:4.1f} fps  {len(result.faces)} face(s)  dropped {source.dropped}",
                        (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            try:
                cv2.imshow("face parsing", bgr)
            except cv2.error:
                raise InputError("cannot open a window here (no display); use --input/--output instead") from None
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if key == ord("o"):
                pipeline.show_labels = not pipeline.show_labels
            elif settings is not None and key < 128:
                settings.toggle_key(chr(key))
    finally:
        source.close()
        pipeline.close()
        cv2.destroyAllWindows()
    return 0


if __name__ == "__main__":
    sys.exit(main())

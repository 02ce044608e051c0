"""`run_live.py --input FOLDER --ray local|ADDRESS --workers N`: the folder's photos and videos
spread over Ray workers (cluster/ray_collection.py). A video is one item (its smoothing runs
from its first frame to its last, as in one process). Each worker builds its parser once and
runs each item through the same pipeline calls as run_live.py, so the outputs are those of one
process: out/<stem>.png (photo) or out/<stem>.mp4 (video), labels/<stem>.png or .mkv.
"""
import tempfile
from pathlib import Path

from cluster import ray_collection
from core.errors import InputError
from stream import output_names

VIDEO_OUT, VIDEO_LABELS, IMAGE_OUT = ".mp4", ".mkv", ".png"


def collection_items(folder: Path) -> list:
    from stream.capture import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)


def is_video(name: str) -> bool:
    from stream.capture import VIDEO_EXTENSIONS
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


def output_paths(name: str, output: Path | None, labels: Path | None, stem: str | None = None) -> dict:
    """The final files of one item: {"output": path, "labels": path} for those asked for
    (`stem`: its name there, output_names.output_stems's; default the input's stem)."""
    stem, video = stem or Path(name).stem, is_video(name)
    paths = {}
    if output is not None:
        paths["output"] = output / f"{stem}{VIDEO_OUT if video else IMAGE_OUT}"
    if labels is not None:
        paths["labels"] = labels / f"{stem}{VIDEO_LABELS if video else IMAGE_OUT}"
    return paths


def run(args, worker_cls=None, worker_options=None) -> int:
    """The --ray branch of run_live.run; tests give another worker_cls and its extra options."""
    import effects
    folder = Path(args.input) if args.input else None
    if args.camera is not None or folder is None or not folder.is_dir():
        raise InputError("--ray spreads a folder's photos and videos over workers: give --input FOLDER")
    if not args.output and not args.save_labels:
        raise InputError("--ray needs --output FOLDER and/or --save-labels FOLDER")
    if args.workers < 1 or args.max_faces < 1:
        raise InputError("--workers and --max-faces must be at least 1")
    if args.effects != "none":
        effects.parse_effects(args.effects or effects.DEFAULT_EFFECTS)   # a bad spec fails here, not on each worker
    files = collection_items(folder)
    if not files:
        raise InputError(f"no photos or videos in folder {folder}")
    output = Path(args.output) if args.output else None
    labels = Path(args.save_labels) if args.save_labels else None
    for target in (output, labels):
        if target is not None:
            _check_folder(target)
    stems = output_names.output_stems(files)
    output_names.check_not_inputs([p for f in files for p in output_paths(f.name, output, labels, stems[f]).values()], files)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise InputError(f"no such checkpoint file: {args.checkpoint}")
    started = ray_collection.connect(args.ray, args.workers)   # an unreachable cluster fails first
    try:
        summary, notes = _run(args, folder, files, stems, output, labels, worker_cls or LiveWorker, worker_options or {})
    finally:
        if started:
            import ray
            ray.shutdown()
    for note in notes:
        print(note)
    return 2 if summary.failed and not summary.done and not summary.skipped else 0


def _run(args, folder, files, stems, output, labels, worker_cls, worker_options):
    checkpoint = Path(args.checkpoint).read_bytes() if args.checkpoint else None
    options = dict(model=resolve_model(args, files), device=args.device, checkpoint=checkpoint, effects=args.effects,
                   max_faces=args.max_faces, smooth=not args.no_smooth, show_labels=args.show_labels,
                   **worker_options)
    notes = []
    stems = {path.name: stem for path, stem in stems.items()}   # the items go by name

    def save(name, result):
        for kind, path in output_paths(name, output, labels, stems[name]).items():
            ray_collection.write_atomic(path, result[kind])
        notes.extend(result["notes"])

    def is_done(name):
        return all(p.exists() for p in output_paths(name, output, labels, stems[name]).values())

    items = [(p.name, lambda p=p: p.read_bytes()) for p in files]
    summary = ray_collection.run_items(items, worker_cls, (options,), save, is_done, args.workers, desc=folder.name)
    return summary, notes


def resolve_model(args, files=()) -> str:
    """"auto" is decided once, here, so that every worker runs the same tier: as run_live.py
    decides it in one process, the most accurate tier for a folder of photos (no frame budget),
    the most accurate one that fits the frame budget here when the folder holds a video."""
    if args.model != "auto" or args.checkpoint:
        from models.parsers import registry
        registry.tier(args.model)   # an unknown name fails here
        return args.model
    from models.parsers import select
    if not any(is_video(p.name) for p in files):
        name = select.ranked()[0]
        print(f"--model auto picked '{name}' for every worker (the most accurate tier here; photos have no frame budget)")
        return name
    from stream import assemble
    budget = args.budget_ms if args.budget_ms is not None else select.DEFAULT_BUDGET_MS
    name, _, timings, when = select.pick_tier_remembered(*assemble.warmup_batch(), budget_ms=budget, device=args.device)
    print(f"--model auto picked '{name}' for every worker ({select.describe_pick(timings, when, budget)})")
    return name


def _check_folder(path: Path):
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to {path}: {exc.strerror}") from None


class LiveWorker(ray_collection.Worker):
    """One Ray actor: its own parser; one still-image pipeline for all its photos (as run_live.py
    keeps one for a folder), a fresh pipeline per video (its smoothing starts at its first frame)."""

    def __init__(self, options: dict):
        import effects
        from models.parsers import registry
        from stream import assemble
        self.options = dict(options)
        checkpoint = self.options.pop("checkpoint")
        spec = self.options.pop("effects")
        self.settings = None if spec == "none" else effects.parse_effects(spec or effects.DEFAULT_EFFECTS)
        if checkpoint is not None:
            self._checkpoint = tempfile.NamedTemporaryFile(suffix=".pt")
            self._checkpoint.write(checkpoint)
            self._checkpoint.flush()
            checkpoint = self._checkpoint.name
        model, device = self.options.pop("model"), self.options["device"]
        self.parser = registry.create_parser(model, device=device, checkpoint=checkpoint)
        self.photos = assemble.build_pipeline(parser=self.parser, effects=self.settings, static_images=True,
                                              **self.options)
        import torch
        torch.set_num_threads(self.threads())

    def process(self, name: str, data: bytes) -> dict:
        return self.video(name, data) if is_video(name) else self.photo(name, data)

    def photo(self, name: str, data: bytes) -> dict:
        """run_live.run_images for one photo: track, parse, render, label map, PNG bytes."""
        from stream import assemble, capture
        from stream.video_io import encode_image
        with tempfile.TemporaryDirectory() as tmp:   # read as run_live.py reads it (EXIF orientation too)
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                photo = capture.ImageSource(path)
                frame = photo[0]
            except InputError as exc:
                raise InputError(str(exc).replace(str(path), name)) from None
        result = self.photos.render(self.photos.parse_batch([self.photos.track(frame)])[0])
        notes = [] if result.faces else [f"no face found in {name}: written unchanged"]
        return {"output": encode_image(IMAGE_OUT, result.output, photo.alphas.get(0)),
                "labels": encode_image(IMAGE_OUT, assemble.label_map(result)), "notes": notes}

    def video(self, name: str, data: bytes) -> dict:
        """As run_live.py's run_video: every frame through a fresh pipeline, into a temporary
        folder (the writers' own temporary names, then renames), returned as bytes."""
        import torch

        from stream import assemble, capture, video_io
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            source_path = tmp / "in" / name
            source_path.parent.mkdir()
            source_path.write_bytes(data)
            outputs = output_paths(name, tmp / "out", tmp / "labels")
            for path in outputs.values():
                path.parent.mkdir()
            source = capture.VideoFileSource(source_path)
            pipeline = assemble.build_pipeline(parser=self.parser, effects=self.settings, **self.options)
            torch.set_num_threads(self.threads())
            try:
                with video_io.VideoWriter(outputs["output"], source=source) as writer, \
                        video_io.LabelVideoWriter(outputs["labels"], source=source) as labels:
                    for result in pipeline.run(source):
                        writer.write(result.output, pts=result.frame.pts)
                        labels.write(assemble.label_map(result), pts=result.frame.pts)
            finally:
                source.close()
                pipeline.close()
            return {kind: path.read_bytes() for kind, path in outputs.items()} | {"notes": []}

"""`python -m models.data build --from images|video PATH --out DIR --ray local|ADDRESS --workers N`:
auto-labelling a large collection on Ray workers (cluster/ray_collection.py). models.data.build
calls it and hands it its own make_reader and record_build (this module does not import build).

An item is one photo or one video; each worker holds its own reader (face mesh, landmark
tier) and returns the aligned samples of an item, which the driver keeps as a shard
(DIR/.ray-shards/<item>.npz, lossless). When every item is through, the shards are merged
into DIR in the items' order with models.data.dataset.DatasetWriter, so the dataset is the
one a single-process build writes. A rerun of the same command skips items whose shard is
there: an interrupted or partly failed build resumes; the shards go once nothing failed.
"""
import io
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from cluster import ray_collection
from core.errors import InputError

SOURCES = ("images", "video")
SHARDS = ".ray-shards"


def main(source, path, out, ray: str, workers: int, make_reader, record_build, **options) -> int:
    try:
        meta = build(source, path, out, make_reader, record_build, ray=ray, workers=workers, **options)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if meta is not None else 2


def build(source: str, path, out, make_reader, record_build, ray: str = "local", workers: int = 2,
          append: bool = False, limit: int | None = None, quiet: bool = False, worker_cls=None,
          **options) -> dict | None:
    """models.data.build.build for images/video, on Ray; None when every item failed.
    make_reader(source, **options) builds a worker's reader; record_build(writer, report, quiet)
    closes the merged dataset."""
    from models.data.dataset import DatasetWriter

    start = time.time()
    path, out = Path(path), Path(out)
    if source not in SOURCES:
        raise InputError(f"--ray auto-labels photos or videos: use --from {' or --from '.join(SOURCES)}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    files = collection_files(source, path, limit)
    reader_options = {k: v for k, v in options.items() if v is not None}
    if source == "images":   # ids and source name come from the folder's name, as in ImagesReader.read
        reader_options.setdefault("name", path.name)
    shards = shard_folder(out, dict(source=source, path=str(path.resolve()), limit=limit, **options))
    started = ray_collection.connect(ray, workers)
    try:
        items = [(f.name, lambda f=f: f.read_bytes()) for f in files]
        summary = ray_collection.run_items(
            items, worker_cls or BuildWorker, (make_reader, source, reader_options, limit), save=lambda key, shard:
            ray_collection.write_atomic(shards / f"{key}.npz", shard), is_done=lambda key: (shards / f"{key}.npz").exists(),
            workers=workers, desc=source, log=(lambda line: None) if quiet else print)
    finally:
        if started:
            import ray as ray_module
            ray_module.shutdown()
    kept = [f for f in files if (shards / f"{f.name}.npz").exists()]
    if not kept:
        return None
    writer = DatasetWriter(out, append=append)
    added, drops = Counter(), Counter()
    for f in kept:
        samples, shard_drops = read_shard(shards / f"{f.name}.npz")
        drops.update(shard_drops)
        for sample in samples:
            writer.add(**sample)
            added[(sample["split"], sample["source"], sample["label_kind"])] += 1
    report = {"from": source, "path": str(path), "name": options.get("name"), "added": sum(added.values()),
              "added_by": {"/".join(k): v for k, v in sorted(added.items())}, "drops": dict(drops),
              "seconds": round(time.time() - start, 1), "ray_workers": dict(summary.by_worker())}
    if summary.failed:
        report["failed"] = dict(summary.failed)
    meta = record_build(writer, report, quiet)
    if summary.failed:
        print(f"{len(summary.failed)} item(s) failed: the same command again retries only those "
              f"(finished items are kept in {shards})")
    else:
        shutil.rmtree(shards)
    return meta


def collection_files(source: str, path: Path, limit) -> list:
    """The items, in the order the single-process reader reads them."""
    from models.data.readers.images import IMAGE_SUFFIXES
    from models.data.readers.video import VIDEO_SUFFIXES
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if source == "video" and path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path} is not a folder")
    suffixes = IMAGE_SUFFIXES if source == "images" else VIDEO_SUFFIXES
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
    files = files[:limit] if source == "images" else files   # video: limit counts frames per file
    if not files:
        raise InputError(f"no {'photos' if source == 'images' else 'videos'} in {path}")
    return files


def shard_folder(out: Path, job: dict) -> Path:
    """DIR/.ray-shards for this exact build; shards of another build there are dropped."""
    shards = out / SHARDS
    record = shards / "job.json"
    if shards.exists() and (not record.exists() or json.loads(record.read_text()) != job):
        print(f"{shards} holds another build's shards: starting over")
        shutil.rmtree(shards)
    try:
        shards.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to {out}: {exc.strerror}") from None
    record.write_text(json.dumps(job))
    return shards


def write_shard(samples: list, drops: dict) -> bytes:
    """Aligned samples (models.data.readers.align_sample dicts) as one compressed .npz, lossless."""
    records = [{k: s[k] for k in ("sample_id", "split", "source", "label_kind")} | {"labelled": s["label"] is not None}
               for s in samples]
    size = samples[0]["image"].shape[0] if samples else 0
    arrays = dict(
        image=np.stack([s["image"] for s in samples]) if samples else np.zeros((0, 0, 0, 3), np.uint8),
        label=np.stack([s["label"] if s["label"] is not None else np.zeros((size, size), np.uint8) for s in samples])
        if samples else np.zeros((0, 0, 0), np.uint8),
        five=np.stack([s["five"] for s in samples]) if samples else np.zeros((0, 5, 2)),
        mesh=np.stack([s["mesh"] if s["mesh"] is not None else np.full((478, 2), np.nan) for s in samples])
        if samples else np.zeros((0, 478, 2)))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps({"records": records, "drops": drops})), **arrays)
    return buffer.getvalue()


def read_shard(path: Path) -> tuple:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        samples = [dict({k: v for k, v in r.items() if k != "labelled"}, image=z["image"][i],
                        label=z["label"][i] if r["labelled"] else None, five=z["five"][i], mesh=z["mesh"][i])
                   for i, r in enumerate(meta["records"])]
    return samples, meta["drops"]


class BuildWorker(ray_collection.Worker):
    """One Ray actor with its own reader (and so its own face mesh and landmark tier)."""

    def __init__(self, make_reader, source: str, reader_options: dict, limit):
        self.source, self.limit = source, limit
        self.reader = make_reader(source, **reader_options)

    def process(self, name: str, data: bytes) -> bytes:
        from models.data.readers import align_sample, read_rgb
        before = Counter(self.reader.drops)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            if self.source == "images":
                try:
                    image = read_rgb(path)
                except FileNotFoundError:
                    raise InputError(f"{name} is not a readable image") from None
                source = self.reader.name
                raw = [self.reader.sample(image, f"{source}_{path.stem}", source)]
            else:
                raw = list(self.reader.read(path, limit=self.limit))
        samples = [align_sample(r) for r in raw if r is not None]
        drops = Counter(self.reader.drops)
        drops.subtract(before)
        return write_shard(samples, {k: v for k, v in drops.items() if v})

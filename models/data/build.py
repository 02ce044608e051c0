"""Build the compact training dataset (models.data.dataset format) from the readers.

    python -m models.data build --from facesynthetics ../shared/data/facesynthetics --out data/faceparse
    python -m models.data build --from lfw_hair ../shared/data/lfw_hair --out data/faceparse --append
    python -m models.data build --from images ../shared/data/portraits --out data/faceparse --append
    python -m models.data build --from video ../shared/data/videos/talking_d0.mp4 --out data/faceparse --append --every 10
    python -m models.data build --from images ../shared/data/portraits --out data/fused --append \
        --labels fused --exclude tests/fixtures/hair_dev

Sources: helen | lfw | lapa | celebamask | facesynthetics | lfw_hair | images | video.
Prints counts per split/source, what was dropped and why, and MB per 1,000 samples.
"""
import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from core.lazy import resolve
from models.data.dataset import DEFAULT_JPEG_QUALITY, DatasetWriter, load_sample, read_index
from models.data.readers import align_sample

# --from name -> reader class, imported when used (core.lazy, as the tier registry)
READERS = {
    "helen": "models.data.readers.helen:HelenReader",
    "lfw": "models.data.readers.lfw_parts:LfwPartsReader",
    "lapa": "models.data.readers.lapa:LapaReader",
    "celebamask": "models.data.readers.celebamask:CelebAMaskReader",
    "facesynthetics": "models.data.readers.facesynthetics:FaceSyntheticsReader",
    "lfw_hair": "models.data.readers.lfw_hair:LfwHairReader",
    "images": "models.data.readers.images:ImagesReader",
    "video": "models.data.readers.video:VideoReader",
}


def make_reader(reader_name: str, **options):
    reader_cls = resolve(READERS[reader_name])
    accepted = reader_cls.__init__.__code__.co_varnames
    return reader_cls(**{k: v for k, v in options.items() if v is not None and k in accepted})


def build(source: str, path: str, out: str, append: bool = False, limit: int | None = None,
          quiet: bool = False, **options) -> dict:
    """Read `path` with the `source` reader, align, and write into `out`; returns meta.json."""
    start = time.time()
    reader = make_reader(source, **options)
    writer = DatasetWriter(out, append=append)
    added = Counter()
    try:
        for raw in tqdm(reader.read(path, limit=limit), desc=source, unit="img", disable=quiet,
                        file=sys.stdout, mininterval=5):
            writer.add(**align_sample(raw))
            added[(raw.split, raw.source, raw.label_kind)] += 1
    finally:
        if hasattr(reader, "close"):
            reader.close()
    report = {"from": source, "path": str(path), "name": options.get("name"), "added": sum(added.values()),
              "added_by": {"/".join(k): v for k, v in sorted(added.items())},
              "drops": dict(getattr(reader, "drops", {})), "seconds": round(time.time() - start, 1)}
    for extra in ("alignment", "stats"):
        if getattr(reader, extra, None):
            report[extra] = dict(getattr(reader, extra))
    return record_build(writer, report, quiet)


def record_build(writer: DatasetWriter, report: dict, quiet: bool = False) -> dict:
    """Close `writer` with this build's report added to meta.json's list of builds."""
    # a rebuilt source replaces its older build record
    key = lambda b: (b["from"], b["path"], b.get("name"))
    builds = [b for b in writer.meta_extra.get("builds", []) if key(b) != key(report)]
    builds.append(report)
    drops = {}
    for b in builds:
        for reason, n in b["drops"].items():
            drops.setdefault(b["from"], {}).setdefault(reason, 0)
            drops[b["from"]][reason] += n
    meta = writer.close(builds=builds, drops=drops)
    if not quiet:
        print_summary(meta, report)
    return meta


def print_summary(meta: dict, report: dict):
    print(f"\nadded {report['added']} from {report['from']} in {report['seconds']} s: {report['added_by']}")
    if report["drops"]:
        print("dropped:", ", ".join(f"{k} {v}" for k, v in sorted(report["drops"].items())))
    for extra in ("alignment", "stats"):
        if extra in report:
            print(f"{extra}:", report[extra])
    print(f"dataset now {meta['num_samples']} samples:")
    for split, sources in meta["counts"].items():
        for src, kinds in sources.items():
            print(f"  {split:5s} {src:24s} {kinds}")
    b = meta["bytes"]
    print(f"size {b['total'] / 2**20:.1f} MiB (images {b['images'] / 2**20:.1f}, labels {b['labels'] / 2**20:.1f}, "
          f"landmarks {b['landmarks'] / 2**20:.1f}); {meta['mb_per_1000']} MiB per 1,000 samples "
          f"at JPEG quality {meta['jpeg_quality']}")


def copy(src, out, quality: int, skip=(), keep_mesh: bool = True) -> dict:
    """A copy of dataset `src` in `out`, its crops re-encoded at JPEG `quality`, without the
    SPLIT/SOURCE pairs of `skip` and, with keep_mesh=False, without the 478 mesh points (only RNN-G's
    training and the fused labels use them): a smaller set to carry to a GPU machine."""
    records, five, mesh = read_index(src)
    writer = DatasetWriter(out, jpeg_quality=quality)
    for r, f, m in zip(tqdm(records, desc="copy", unit="img"), five, mesh):
        if f"{r['split']}/{r['source']}" in skip:
            continue
        s = load_sample(src, r, f, m)
        writer.add(r["id"], r["split"], r["source"], r["label_kind"], s["image"],
                   None if r["label_kind"] == "none" else s["label"], s["five"], s["mesh"] if keep_mesh else None)
    return writer.close(copied_from=str(src))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="add one source to a dataset folder")
    b.add_argument("--from", dest="source", nargs=2, metavar=("SOURCE", "PATH"), required=True,
                   help=f"one of {', '.join(READERS)} and its folder (or video file)")
    b.add_argument("--out", required=True, help="dataset folder")
    b.add_argument("--append", action="store_true", help="keep what --out holds (same ids are replaced)")
    b.add_argument("--every", type=int, default=None, help="video: every K-th frame")
    b.add_argument("--limit", type=int, default=None, help="at most N samples (images/frames)")
    b.add_argument("--split", default=None, help="images/video: split to write (default train)")
    b.add_argument("--name", default=None, help="images/video: source name (default from the path)")
    b.add_argument("--no-autolabel", action="store_true",
                   help="images/video: aligned crops only (label_kind none); lfw_hair/lfw: no auto-labels")
    b.add_argument("--labels", choices=["landmarks", "fused"], default="landmarks",
                   help="images/video/lfw_hair: auto-labels from the landmark tier (default) or the fused "
                        "teacher signal (models/data/readers/fused.py: landmark eyes and lips, RNN-G skin, "
                        "brows and nose, whole-head hair)")
    b.add_argument("--exclude", metavar="DIR", default=None,
                   help="images: leave out the images whose file stem matches a file in DIR (a dev set)")
    b.add_argument("--ray", metavar="local|ADDRESS", help="images/video: auto-label on Ray workers, 'local' "
                                                       "(this machine) or a cluster's address (models/data/ray_build.py)")
    b.add_argument("--workers", type=int, default=2, metavar="N", help="Ray workers for --ray (default 2)")
    s = sub.add_parser("summary", help="print a dataset folder's meta.json counts")
    s.add_argument("dir")
    c = sub.add_parser("copy", help="copy a dataset folder, re-encoded (a smaller one to carry elsewhere)")
    c.add_argument("src")
    c.add_argument("--out", required=True)
    c.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality of the crops")
    c.add_argument("--skip", nargs="+", default=[], metavar="SPLIT/SOURCE", help="leave these out, e.g. val/lfw_hair")
    c.add_argument("--no-mesh", action="store_true", help="leave out the mesh points (the teacher and Student use five)")
    args = p.parse_args(argv)
    if args.command == "copy":
        if not (Path(args.src) / "index.jsonl").is_file():
            p.error(f"copy: no dataset at {args.src} (expected index.jsonl)")
        if Path(args.out).resolve() == Path(args.src).resolve():
            p.error("copy: --out must differ from the source folder")
        meta = copy(args.src, args.out, args.quality, set(args.skip), keep_mesh=not args.no_mesh)
        print(f"{meta['counts']} -> {args.out}: {meta['bytes']['total'] / 2**20:.1f} MiB at JPEG quality {args.quality}")
        return
    if args.command == "summary":
        if not (Path(args.dir) / "meta.json").is_file():
            p.error(f"summary: no dataset at {args.dir} (expected meta.json)")
        meta = json.load(open(f"{args.dir}/meta.json"))
        print_summary(meta, meta["builds"][-1] if meta.get("builds") else {"added": 0, "from": "?", "seconds": 0,
                                                                          "added_by": {}, "drops": {}})
        return
    source, path = args.source
    if source not in READERS:
        p.error(f"unknown source {source!r}; one of {', '.join(READERS)}")
    if not Path(path).exists():
        p.error(f"--from {source} {path}: no such file or folder")
    options = dict(append=args.append, limit=args.limit, every=args.every, split=args.split, name=args.name,
                   autolabel=False if args.no_autolabel else None, exclude=args.exclude)
    if args.exclude and not Path(args.exclude).is_dir():
        p.error(f"--exclude {args.exclude}: not a folder")
    if args.labels == "fused":
        if args.ray:
            p.error("--labels fused runs in this process only (not with --ray)")
        from models.data.readers.autolabel import AutoLabeler
        from models.data.readers.fused import FusedLabeler
        options["labeler"] = AutoLabeler(parser=FusedLabeler())
    if args.ray:
        from models.data import ray_build
        sys.exit(ray_build.main(source, path, args.out, ray=args.ray, workers=args.workers, make_reader=make_reader,
                                record_build=record_build, **options))
    build(source, path, args.out, **options)


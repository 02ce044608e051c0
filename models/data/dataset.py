"""The compact dataset format: aligned 256x256 crops, label maps and landmarks in one folder.

    DIR/index.jsonl     one JSON object per sample: {"id", "split", "source", "label_kind"}
    DIR/images/<id>.jpg 256x256 aligned RGB crop (JPEG, quality in meta.json)
    DIR/labels/<id>.png 256x256 uint8 class ids, 255 = ignore (absent for label_kind "none")
    DIR/landmarks.npz   five (N,5,2), mesh (N,478,2) crop px at 256, NaN when unknown; row order =
                        index.jsonl line order. Stored as float16 (0.125 px steps at 256, which
                        keeps the file ~4x smaller); FaceParsingDataset returns float32.
    DIR/meta.json       {"size", "classes", "counts", "bytes", "mb_per_1000", "jpeg_quality", ...}

label_kind: "full" (every pixel labelled by a person or a renderer), "partial" (some pixels
255, e.g. LFW hair masks), "auto" (landmark-guided auto-labels), "none" (image only).

Pure numpy/OpenCV/torch: importable on the GPU machine (no mediapipe, no av).
"""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core.classes import CLASS_NAMES, IGNORE

MESH_POINTS = 478
LABEL_KINDS = ("full", "partial", "auto", "none")
SPLITS = ("train", "val", "test")
# 85 keeps skin texture and thin brows; ~13 KB per 256x256 face crop (measured, see meta.json)
DEFAULT_JPEG_QUALITY = 85


def _rgb_to_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


class DatasetWriter:
    """Writes aligned samples into DIR; close() writes index.jsonl, landmarks.npz and meta.json.

    append=True keeps what DIR already holds; adding an id that is already there replaces it
    (so re-running one source's build refreshes that source and leaves the others alone).
    """

    def __init__(self, out_dir, size: int = 256, append: bool = False,
                 jpeg_quality: int = DEFAULT_JPEG_QUALITY):
        self.dir = Path(out_dir)
        self.size = size
        self.jpeg_quality = jpeg_quality
        (self.dir / "images").mkdir(parents=True, exist_ok=True)
        (self.dir / "labels").mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict] = {}      # id -> record, insertion order = row order
        self.points: dict[str, tuple] = {}      # id -> (five, mesh)
        self.meta_extra: dict = {}
        if append and (self.dir / "index.jsonl").exists():
            records, five, mesh = read_index(self.dir)
            prior = json.loads((self.dir / "meta.json").read_text()) if (self.dir / "meta.json").exists() else {}
            self.meta_extra = {k: v for k, v in prior.items() if k in ("builds",)}
            for r, f, m in zip(records, five, mesh):
                self.records[r["id"]] = r
                self.points[r["id"]] = (f, m)
        elif not append:
            # a fresh build: forget any older index (stale files get overwritten or stay unindexed)
            for name in ("index.jsonl", "landmarks.npz", "meta.json"):
                if (self.dir / name).exists():
                    (self.dir / name).unlink()

    def add(self, sample_id: str, split: str, source: str, label_kind: str, image: np.ndarray,
            label: np.ndarray | None, five: np.ndarray, mesh: np.ndarray | None = None):
        """One aligned sample: image (S,S,3) uint8 RGB crop, label (S,S) uint8 or None,
        five (5,2) and mesh (478,2) or None in crop pixels."""
        assert split in SPLITS and label_kind in LABEL_KINDS, (split, label_kind)
        assert image.shape == (self.size, self.size, 3) and image.dtype == np.uint8, image.shape
        assert "/" not in sample_id and sample_id, sample_id
        (self.dir / "images" / f"{sample_id}.jpg").write_bytes(_rgb_to_jpeg(image, self.jpeg_quality))
        label_path = self.dir / "labels" / f"{sample_id}.png"
        if label_kind == "none":
            if label_path.exists():
                label_path.unlink()
        else:
            assert label is not None and label.shape == (self.size, self.size), sample_id
            cv2.imwrite(str(label_path), label.astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        self.records.pop(sample_id, None)  # a replaced id moves to the end
        self.records[sample_id] = {"id": sample_id, "split": split, "source": source, "label_kind": label_kind}
        mesh = np.full((MESH_POINTS, 2), np.nan, np.float32) if mesh is None else np.asarray(mesh, np.float32)
        self.points[sample_id] = (np.asarray(five, np.float32).reshape(5, 2), mesh.reshape(MESH_POINTS, 2))

    def __len__(self):
        return len(self.records)

    def close(self, **meta) -> dict:
        """Write the index, landmarks and meta.json; extra keyword args go into meta.json
        (e.g. drops=...). Returns the meta dict."""
        ids = list(self.records)
        with open(self.dir / "index.jsonl", "w") as f:
            for i in ids:
                f.write(json.dumps(self.records[i]) + "\n")
        five = np.stack([self.points[i][0] for i in ids]) if ids else np.zeros((0, 5, 2), np.float32)
        mesh = np.stack([self.points[i][1] for i in ids]) if ids else np.zeros((0, MESH_POINTS, 2), np.float32)
        np.savez_compressed(self.dir / "landmarks.npz", five=five.astype(np.float16), mesh=mesh.astype(np.float16))
        out = {"size": self.size, "classes": list(CLASS_NAMES), "ignore": IGNORE,
               "jpeg_quality": self.jpeg_quality, "landmark_dtype": "float16"}
        out.update(summarize(self.dir, list(self.records.values())))
        out.update(self.meta_extra)
        out.update(meta)
        (self.dir / "meta.json").write_text(json.dumps(out, indent=1))
        return out


def summarize(root: Path, records: list[dict]) -> dict:
    """Counts per split/source/label_kind and the bytes the samples take on disk."""
    counts = {}
    for r in records:
        c = counts.setdefault(r["split"], {}).setdefault(r["source"], {})
        c[r["label_kind"]] = c.get(r["label_kind"], 0) + 1
    totals = {s: sum(sum(k.values()) for k in src.values()) for s, src in counts.items()}
    image_bytes = label_bytes = 0
    for r in records:
        image_bytes += os.path.getsize(root / "images" / f"{r['id']}.jpg")
        if r["label_kind"] != "none":
            label_bytes += os.path.getsize(root / "labels" / f"{r['id']}.png")
    landmark_bytes = os.path.getsize(root / "landmarks.npz") if (root / "landmarks.npz").exists() else 0
    total = image_bytes + label_bytes + landmark_bytes
    n = max(len(records), 1)
    return {"num_samples": len(records), "totals": totals, "counts": counts,
            "bytes": {"images": image_bytes, "labels": label_bytes, "landmarks": landmark_bytes, "total": total},
            "mb_per_1000": round(total / n * 1000 / 2 ** 20, 2)}


def read_index(root) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """index records and float32 five (N,5,2), mesh (N,478,2) in crop px at the stored size."""
    root = Path(root)
    with open(root / "index.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
    with np.load(root / "landmarks.npz") as z:
        five, mesh = z["five"].astype(np.float32), z["mesh"].astype(np.float32)
    assert len(records) == len(five) == len(mesh), "index.jsonl and landmarks.npz disagree"
    return records, five, mesh


def load_sample(root, record: dict, five: np.ndarray, mesh: np.ndarray, size: int | None = None) -> dict:
    """One sample as numpy: image (S,S,3) uint8 RGB, label (S,S) uint8 (all 255 for
    label_kind none), five (5,2), mesh (478,2) float32 scaled to S."""
    root = Path(root)
    image = cv2.imread(str(root / "images" / f"{record['id']}.jpg"), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(root / "images" / f"{record['id']}.jpg")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    stored = image.shape[0]
    if record["label_kind"] == "none":
        label = np.full((stored, stored), IGNORE, np.uint8)
    else:
        label = cv2.imread(str(root / "labels" / f"{record['id']}.png"), cv2.IMREAD_UNCHANGED)
    size = size or stored
    five, mesh = five.copy(), mesh.copy()
    if size != stored:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        label = cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)
        # pixel centres: x_S + 0.5 = (x_256 + 0.5) * S / 256
        f = size / stored
        five = (five + 0.5) * f - 0.5
        mesh = (mesh + 0.5) * f - 0.5
    return {"image": image, "label": label, "five": five, "mesh": mesh}


def to_tensors(sample: dict) -> dict:
    """numpy sample -> the batch-dict tensors of models.parsers.network (one sample, no batch dim)."""
    return {
        "image": torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))).float().div_(255.0),
        "label": torch.from_numpy(np.ascontiguousarray(sample["label"]).astype(np.int64)),
        "five": torch.from_numpy(np.ascontiguousarray(sample["five"], dtype=np.float32)),
        "mesh": torch.from_numpy(np.ascontiguousarray(sample["mesh"], dtype=np.float32)),
    }


class FaceParsingDataset(Dataset):
    """torch Dataset over one split of a built dataset folder.

    size: 256 (as stored) or e.g. 128 (resized on load; labels nearest, points scaled).
    augment: None or a callable on the numpy sample dict (image uint8 (S,S,3) RGB, label uint8
        (S,S), five (5,2), mesh (478,2) float32) returning the same kind of dict; it runs at
        `size`, before the conversion to tensors (see models.data.augment.train_augment).
    sources: None for all, or a list of source names; a name ending in ":" or "*" matches a
        prefix ("video:" = every clip).
    label_kinds: None for all, or e.g. ["full", "partial"].
    Items are dicts of tensors: image float (3,S,S) [0,1], label int64 (S,S), five (5,2),
    mesh (478,2) NaN where unknown. `self.records[i]` holds the id/source/label_kind.
    """

    def __init__(self, root, split: str = "train", size: int = 256, augment=None,
                 sources=None, label_kinds=None):
        self.root = Path(root)
        self.size = size
        self.augment = augment
        records, five, mesh = read_index(self.root)
        keep = [i for i, r in enumerate(records)
                if r["split"] == split and _source_matches(r["source"], sources)
                and (label_kinds is None or r["label_kind"] in label_kinds)]
        self.records = [records[i] for i in keep]
        self.five = five[keep]
        self.mesh = mesh[keep]

    def __len__(self):
        return len(self.records)

    def sample(self, i: int) -> dict:
        """The numpy sample (before augmentation), e.g. for previews."""
        return load_sample(self.root, self.records[i], self.five[i], self.mesh[i], self.size)

    def __getitem__(self, i: int) -> dict:
        s = self.sample(i)
        if self.augment is not None:
            s = self.augment(s)
        return to_tensors(s)


def _source_matches(source: str, wanted) -> bool:
    if wanted is None:
        return True
    for w in wanted:
        if w.endswith(("*", ":")) and source.startswith(w.rstrip("*")):
            return True
        if source == w:
            return True
    return False

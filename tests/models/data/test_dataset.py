"""models.data.dataset: the compact format written by DatasetWriter and read by FaceParsingDataset."""
import json

import numpy as np
import pytest
import torch
from skimage.data import astronaut

from models.data.dataset import DatasetWriter, FaceParsingDataset, read_index
from core.classes import IGNORE


def _sample(seed: int):
    """A real face crop (astronaut, 256x256) with a blocky label map and points."""
    rng = np.random.default_rng(seed)
    image = np.ascontiguousarray(astronaut()[:256, 128:384])
    label = np.zeros((256, 256), np.uint8)
    label[64:192, 64:192] = 1
    label[100:110, 90:110] = 4
    label[100:110, 150:170] = 5
    label[0:16] = IGNORE
    five = np.array([[100, 105], [160, 105], [128, 140], [108, 170], [150, 170]], np.float32) + rng.normal(0, 1, (5, 2))
    mesh = rng.uniform(0, 255, (478, 2)).astype(np.float32)
    return image, label, five.astype(np.float32), mesh


@pytest.fixture()
def built(tmp_path):
    w = DatasetWriter(tmp_path / "ds")
    for i, (split, source, kind) in enumerate([("train", "facesynthetics", "full"), ("train", "lfw_hair", "partial"),
                                               ("val", "facesynthetics", "full"), ("train", "video:clip", "auto"),
                                               ("train", "portraits", "none")]):
        image, label, five, mesh = _sample(i)
        w.add(f"s{i}", split, source, kind, image, None if kind == "none" else label, five,
              None if i == 1 else mesh)
    meta = w.close(note="test")
    return tmp_path / "ds", meta


def test_files_and_meta(built):
    root, meta = built
    assert (root / "index.jsonl").exists() and (root / "landmarks.npz").exists()
    assert sorted(p.name for p in (root / "labels").iterdir()) == ["s0.png", "s1.png", "s2.png", "s3.png"]
    on_disk = json.loads((root / "meta.json").read_text())
    assert on_disk["counts"]["train"]["facesynthetics"] == {"full": 1}
    assert on_disk["counts"]["val"]["facesynthetics"] == {"full": 1}
    assert on_disk["totals"] == {"train": 4, "val": 1}
    assert on_disk["note"] == "test" and on_disk["size"] == 256 and len(on_disk["classes"]) == 11
    assert on_disk["bytes"]["total"] > on_disk["bytes"]["images"] > 0
    # an astronaut crop at quality 85 is ~10-20 KB: MB per 1000 samples must be in that range
    assert 5 < on_disk["mb_per_1000"] < 40
    records, five, mesh = read_index(root)
    assert [r["id"] for r in records] == ["s0", "s1", "s2", "s3", "s4"]
    assert five.dtype == np.float32 and five.shape == (5, 5, 2) and mesh.shape == (5, 478, 2)
    assert np.isnan(mesh[1]).all() and not np.isnan(mesh[0]).any()


def test_reader_256_roundtrip(built):
    root, _ = built
    ds = FaceParsingDataset(root, "train")
    assert len(ds) == 4
    item = ds[0]
    image, label, five, mesh = _sample(0)
    assert item["image"].shape == (3, 256, 256) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    # JPEG at quality 85: mean absolute error of a few grey levels
    err = np.abs(item["image"].permute(1, 2, 0).numpy() * 255 - image).mean()
    assert err < 6, err
    assert item["label"].dtype == torch.int64 and np.array_equal(item["label"].numpy(), label)
    assert np.allclose(item["five"].numpy(), five, atol=0.07)  # float16 storage: <0.07 px at 256
    assert torch.isnan(ds[1]["mesh"]).all()                     # unknown mesh stays NaN
    assert (ds[3]["label"] == IGNORE).all()                     # label_kind none: all ignore


def test_reader_128_resizes_labels_nearest_and_scales_points(built):
    root, _ = built
    ds = FaceParsingDataset(root, "train", size=128)
    item = ds[0]
    _, label, five, _ = _sample(0)
    assert item["image"].shape == (3, 128, 128) and item["label"].shape == (128, 128)
    assert set(item["label"].unique().tolist()) <= set(np.unique(label).tolist())
    assert np.allclose(item["five"].numpy(), (five + 0.5) / 2 - 0.5, atol=0.05)
    # the left-eye block (rows 100-110, cols 90-110 at 256) is at half the coordinates
    assert (item["label"][51:54, 46:54] == 4).all()


def test_filters_and_batching(built):
    root, _ = built
    assert len(FaceParsingDataset(root, "val")) == 1
    assert len(FaceParsingDataset(root, "train", sources=["facesynthetics"])) == 1
    assert len(FaceParsingDataset(root, "train", sources=["video:"])) == 1
    assert len(FaceParsingDataset(root, "train", label_kinds=["full", "partial"])) == 2
    batch = next(iter(torch.utils.data.DataLoader(FaceParsingDataset(root, "train", size=128), batch_size=4)))
    assert batch["image"].shape == (4, 3, 128, 128) and batch["mesh"].shape == (4, 478, 2)


def test_augment_hook_gets_numpy_sample(built):
    root, _ = built
    seen = []

    def augment(s):
        seen.append({k: (type(v), getattr(v, "dtype", None)) for k, v in s.items()})
        return {**s, "label": np.zeros_like(s["label"])}

    item = FaceParsingDataset(root, "train", size=128, augment=augment)[0]
    assert seen[0]["image"] == (np.ndarray, np.uint8) and seen[0]["label"] == (np.ndarray, np.uint8)
    assert (item["label"] == 0).all()


def test_append_keeps_other_samples_and_replaces_same_id(built):
    root, _ = built
    w = DatasetWriter(root, append=True)
    image, label, five, mesh = _sample(9)
    w.add("s0", "val", "facesynthetics", "full", image, label, five, mesh)   # replace
    w.add("s9", "train", "portraits", "auto", image, label, five, mesh)      # new
    meta = w.close()
    records, five_all, _ = read_index(root)
    ids = [r["id"] for r in records]
    assert sorted(ids) == ["s0", "s1", "s2", "s3", "s4", "s9"]
    assert next(r for r in records if r["id"] == "s0")["split"] == "val"
    assert np.allclose(five_all[ids.index("s0")], five, atol=0.07)
    assert meta["totals"] == {"train": 4, "val": 2}
    # a fresh (non-append) writer starts over
    DatasetWriter(root).close()
    assert read_index(root)[0] == []


def test_copy_re_encodes_and_leaves_out_what_it_is_told(built, tmp_path):
    """`python -m models.data copy`: the set carried to a GPU machine, smaller, same labels."""
    from models.data.build import main
    src, _ = built
    out = tmp_path / "small"
    main(["copy", str(src), "--out", str(out), "--quality", "60", "--skip", "val/facesynthetics", "--no-mesh"])
    records, five, mesh = read_index(out)
    assert [r["id"] for r in records] == ["s0", "s1", "s3", "s4"]
    assert json.loads((out / "meta.json").read_text())["jpeg_quality"] == 60
    assert (out / "images" / "s0.jpg").stat().st_size < (src / "images" / "s0.jpg").stat().st_size
    old_records, old_five, _ = read_index(src)
    assert np.allclose(five, old_five[[0, 1, 3, 4]], atol=0.05) and np.isnan(mesh).all()
    a, b = FaceParsingDataset(src, "train", 256), FaceParsingDataset(out, "train", 256)
    assert torch.equal(a[0]["label"], b[0]["label"])                       # labels are copied as they are
    assert (a[0]["image"] - b[0]["image"]).abs().mean() < 0.03             # images re-encoded, close
    assert not (out / "labels" / "s4.png").exists()                        # label_kind none stays unlabelled
    with pytest.raises(SystemExit):
        main(["copy", str(src), "--out", str(src)])


@pytest.mark.parametrize("argv, words", [
    (["build", "--from", "images", "{tmp}/nowhere", "--out", "{tmp}/set"], "no such file or folder"),
    (["summary", "{tmp}/nowhere"], "no dataset at"),
    (["copy", "{tmp}/nowhere", "--out", "{tmp}/set"], "no dataset at"),
])
def test_data_commands_on_a_missing_folder_are_one_line(tmp_path, capsys, argv, words):
    from models.data.build import main
    with pytest.raises(SystemExit) as stop:
        main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and words in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "set").exists()

"""run_live.py --ray on real photos and a real clip: one local Ray session (2 CPUs) for the module.

Same label maps as one process, work done on both workers, resume without redoing, a worker
that dies (os._exit) reported and replaced, one-line errors for no Ray / an unreachable address.
"""
import os
import shutil
import socket
import sys
import time

import cv2
import numpy as np
import pytest
from skimage import data

import run_live
from stream import ray_live
from stream.video_io import read_label_video
from tests.conftest import REPO, write_test_video


def run(capsys, *args):
    code = run_live.main(["--verbose", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_labels(path):
    return read_label_video(path) if path.suffix == ".mkv" else cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-scale.txt")
    from cluster import ray_collection
    ray_collection.connect("local", 2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """The four portrait fixtures, the astronaut and a 6-frame clip of the astronaut."""
    folder = tmp_path_factory.mktemp("collection")
    for photo in sorted((REPO / "tests" / "fixtures").glob("portrait_*.jpg")):
        shutil.copy(photo, folder / photo.name)
    cv2.imwrite(str(folder / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    write_test_video(folder / "clip.mp4", data.astronaut(), n_frames=6, size=(192, 192))
    return folder


@pytest.fixture(scope="module")
def one_process(collection, tmp_path_factory):
    """Label maps of the same collection from run_live.py without Ray (photos as a folder, the clip alone)."""
    out = tmp_path_factory.mktemp("one_process")
    photos = out / "photos"
    photos.mkdir()
    for p in collection.iterdir():
        if p.suffix != ".mp4":
            shutil.copy(p, photos / p.name)
    assert run_live.main(["--input", str(photos), "--output", str(out / "out"), "--save-labels", str(out / "labels"),
                          "--model", "rnng"]) == 0
    assert run_live.main(["--input", str(collection / "clip.mp4"), "--output", str(out / "out" / "clip.mp4"),
                          "--save-labels", str(out / "labels" / "clip.mkv"), "--model", "rnng"]) == 0
    return out / "labels"


def test_without_ray_one_line_error(tmp_path, capsys, collection, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray now fails as if not installed
    code, out, err = run(capsys, "--input", collection, "--output", tmp_path / "o", "--ray", "local")
    assert code == 2
    assert err.strip().count("\n") == 0 and "pip install -r requirements-scale.txt" in err


def test_outputs_over_the_photos_refused_before_ray_starts(tmp_path, capsys, collection, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # the check comes first: no Ray needed to see it
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, out, err = run(capsys, "--input", folder, "--output", folder, "--ray", "local")
    assert code == 2 and "would overwrite the input" in err and "astronaut.png" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_output_names_keep_photos_of_one_stem_apart():
    from stream.output_names import output_stems
    files = [REPO / "x" / name for name in ("a.jpg", "a.png", "a.mp4", "b.png")]
    stems = output_stems(files)
    assert [stems[f] for f in files] == ["a_jpg", "a_png", "a_mp4", "b"]
    names = [p.name for f in files for p in ray_live.output_paths(f.name, REPO / "o", None, stems[f]).values()]
    assert names == ["a_jpg.png", "a_png.png", "a_mp4.mp4", "b.png"]


def test_auto_picks_the_tier_one_process_would(collection, capsys):
    """--model auto (the default) with --ray: for a folder of photos the most accurate tier, as
    run_live.py picks for a folder in one process; with a video in it, the most accurate tier
    that fits the frame budget, timed here (a huge budget: the first one timed fits)."""
    from models.parsers import select
    items = ray_live.collection_items(collection)
    photos = [p for p in items if not ray_live.is_video(p.name)]
    args = run_live.parse_args(["--input", str(collection), "--output", "o", "--ray", "local"])
    assert ray_live.resolve_model(args, photos) == select.ranked()[0]
    assert "photos have no frame budget" in capsys.readouterr().out
    args.budget_ms = 1e6
    assert ray_live.resolve_model(args, items) == select.ranked()[0]
    assert "faster of two rounds" in capsys.readouterr().out


def test_unreachable_address_one_line_error_in_seconds(tmp_path, capsys, collection):
    pytest.importorskip("ray")
    with socket.socket() as s:   # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    code, out, err = run(capsys, "--input", collection, "--output", tmp_path / "o", "--ray", f"127.0.0.1:{port}")
    assert code == 2 and time.monotonic() - start < 15
    assert err.startswith("error: cannot reach the Ray cluster at 127.0.0.1:") and err.strip().count("\n") == 0
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_two_workers_match_one_process_then_resume(ray_session, collection, one_process, tmp_path, capsys):
    out, labels = tmp_path / "out", tmp_path / "labels"
    code, printed, err = run(capsys, "--input", collection, "--output", out, "--save-labels", labels,
                             "--model", "rnng", "--ray", "local", "--workers", "2")
    assert code == 0, err
    assert "ray: 6 done, 0 skipped (outputs already there), 0 failed" in printed
    workers = [line for line in printed.splitlines() if line.startswith("  node ")]
    assert len(workers) == 2 and all(line.endswith("done") for line in workers), printed   # both did work
    names = sorted(p.name for p in one_process.iterdir())
    assert names == sorted(p.name for p in labels.iterdir()) and len(names) == 6
    for name in names:
        single, spread = read_labels(one_process / name), read_labels(labels / name)
        assert single.shape == spread.shape and np.array_equal(single, spread), name
        assert len(np.unique(spread)) >= 8, name   # real parses, not empty maps
    assert sorted(p.name for p in out.iterdir()) == sorted(n.replace(".mkv", ".mp4") for n in names)

    # resume: two items lost their outputs; only those are redone, the rest stay untouched
    (labels / "portrait_B001298.png").unlink()
    (out / "clip.mp4").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in labels.iterdir() if p.name != "clip.mkv"}  # the clip is redone
    code, printed, err = run(capsys, "--input", collection, "--output", out, "--save-labels", labels,
                             "--model", "rnng", "--ray", "local", "--workers", "2")
    assert code == 0, err
    assert "ray: 2 done, 4 skipped (outputs already there), 0 failed" in printed
    assert {p.name: p.stat().st_mtime_ns for p in labels.iterdir() if p.name in before} == before
    assert np.array_equal(read_labels(labels / "portrait_B001298.png"), read_labels(one_process / "portrait_B001298.png"))
    assert (out / "clip.mp4").stat().st_size > 0


class DyingWorker(ray_live.LiveWorker):
    """Kills its own process (os._exit) on items named die_*: die_once only on its first try."""

    def __init__(self, options):
        self.marker = options.pop("marker")
        super().__init__(options)

    def process(self, name, payload):
        if name.startswith("die_always"):
            os._exit(1)
        if name.startswith("die_once") and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().process(name, payload)


def test_dying_worker_and_broken_file_are_reported_retried_and_finished_outputs_stay(
        ray_session, tmp_path, capsys, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    fixtures = sorted((REPO / "tests" / "fixtures").glob("portrait_*.jpg"))
    shutil.copy(fixtures[0], photos / "a_ok.jpg")
    shutil.copy(fixtures[1], photos / "die_always.jpg")
    shutil.copy(fixtures[2], photos / "die_once.jpg")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    marker = tmp_path / "died_once"
    original_run = ray_live.run
    monkeypatch.setattr(ray_live, "run", lambda args: original_run(args, DyingWorker, {"marker": str(marker)}))
    code, printed, err = run(capsys, "--input", photos, "--output", tmp_path / "out", "--save-labels",
                             tmp_path / "labels", "--model", "landmarks", "--ray", "local", "--workers", "2")
    assert code == 0, err
    assert "ray: 2 done, 0 skipped (outputs already there), 2 failed" in printed, printed
    lines = printed.splitlines()
    assert any(line.startswith("retried: die_once.jpg (its worker, node ") and "died" in line for line in lines)
    assert any(line.startswith("failed: die_always.jpg: its worker, node ") and "died" in line for line in lines)
    assert any(line.startswith("failed: broken.jpg: ") and "not a readable image" in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["a_ok.png", "die_once.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_ok.png", "die_once.png"]


def test_build_on_ray_resumes_and_merges_into_the_single_process_dataset(ray_session, tmp_path, capsys):
    from models.data import ray_build
    from models.data.build import build, make_reader, record_build

    faces = tmp_path / "faces"
    faces.mkdir()
    for photo in sorted((REPO / "tests" / "fixtures").glob("portrait_*.jpg")):
        shutil.copy(photo, faces / photo.name)
    cv2.imwrite(str(faces / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(faces / "coffee.png"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))   # no face: a drop
    (faces / "flipped.jpg").write_bytes(b"not a jpeg yet")
    out = tmp_path / "spread"
    meta = ray_build.build("images", faces, out, make_reader, record_build, ray="local", workers=2)
    printed = capsys.readouterr().out
    assert "ray: 6 done, 0 skipped (outputs already there), 1 failed" in printed
    assert "failed: flipped.jpg: flipped.jpg is not a readable image" in printed
    assert meta["num_samples"] == 5 and meta["builds"][-1]["drops"] == {"no_face": 1}
    assert len(list((out / ray_build.SHARDS).glob("*.npz"))) == 6   # kept for the rerun

    cv2.imwrite(str(faces / "flipped.jpg"), cv2.cvtColor(cv2.flip(data.astronaut(), 1), cv2.COLOR_RGB2BGR))
    meta = ray_build.build("images", faces, out, make_reader, record_build, ray="local", workers=2)
    assert "ray: 1 done, 6 skipped (outputs already there), 0 failed" in capsys.readouterr().out
    assert meta["num_samples"] == 6 and not (out / ray_build.SHARDS).exists()

    single = tmp_path / "single"
    build("images", str(faces), str(single), quiet=True)
    assert (out / "index.jsonl").read_text() == (single / "index.jsonl").read_text()
    assert (out / "landmarks.npz").read_bytes() == (single / "landmarks.npz").read_bytes()
    for kind in ("images", "labels"):
        names = sorted(p.name for p in (single / kind).iterdir())
        assert names == sorted(p.name for p in (out / kind).iterdir()) and len(names) == 6
        assert all((single / kind / n).read_bytes() == (out / kind / n).read_bytes() for n in names)

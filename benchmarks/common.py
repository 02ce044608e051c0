"""Shared by the model benchmarks: real aligned face crops to time the tiers on."""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from core import align

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "faceparse"
ASTRONAUT_FIVE = np.array([(203.5, 101.1), (246.6, 103.5), (223.7, 130.6), (201.8, 139.2), (245.0, 141.0)],
                          np.float32)  # mediapipe face mesh on skimage's astronaut (512x512)


def real_crops(n: int, data: Path = DATA):
    """n aligned 256x256 uint8 crops and their five points (FaceSynthetics val of the dataset `data`)."""
    if (Path(data) / "index.jsonl").is_file():
        from models.data.dataset import FaceParsingDataset
        ds = FaceParsingDataset(data, "val", 256, sources=["facesynthetics"])
        if len(ds):
            samples = [ds.sample(i % len(ds)) for i in range(n)]
            return np.stack([s["image"] for s in samples]), np.stack([s["five"] for s in samples])
    from skimage.data import astronaut
    m = align.alignment_matrix(ASTRONAUT_FIVE)
    crop = align.warp_crop(astronaut(), m)
    return np.repeat(crop[None], n, 0), np.repeat(align.transform_points(ASTRONAUT_FIVE, m)[None], n, 0)


def timed(fn, repeats: int) -> dict:
    """Median and minimum milliseconds of fn() over `repeats` runs after two warm-up calls: the
    machine is shared, so the minimum estimates the cost and the median what a busy machine gives."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times)}


def add_user_path_arguments(ap):
    """--repo and --checkpoint, for the benchmarks that run run_live.py as a user does."""
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout whose run_live.py to run (e.g. main's, for before)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="weights for --model (run_live.py --checkpoint)")


def user_path_labels(images, model: str, repo: Path = ROOT, checkpoint: Path | None = None):
    """Label maps of images as a user gets them: one `run_live.py --input DIR --save-labels DIR
    --model MODEL` over a folder of links to them (`repo`: another checkout's run_live.py).
    Returns labels_of(image path) -> (H, W) uint8 class ids, or None where no label was written."""
    tmp = Path(tempfile.mkdtemp(prefix="user_path_"))
    (tmp / "in").mkdir()
    for image in images:
        os.symlink(Path(image).resolve(), tmp / "in" / Path(image).name)
    cmd = [sys.executable, str(repo / "run_live.py"), "--input", str(tmp / "in"), "--save-labels",
           str(tmp / "labels"), "--model", model, "--effects", "none"]
    if checkpoint:
        cmd += ["--checkpoint", str(Path(checkpoint).resolve())]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=repo)

    def labels_of(image):
        return cv2.imread(str(tmp / "labels" / f"{Path(image).stem}.png"), cv2.IMREAD_GRAYSCALE)
    return labels_of

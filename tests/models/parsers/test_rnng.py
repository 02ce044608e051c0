"""RNN-G's network (Liu et al., "Face Parsing via Recurrent Propagation"): shapes, the two scan
backends, mirror averaging, the committed checkpoint through the registry. Its training:
tests/models/training/recipes/test_rnng.py."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core import align
from core.classes import (HAIR, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NOSE, NUM_CLASSES, RIGHT_BROW,
                            RIGHT_EYE, SKIN, UPPER_LIP)
from models.parsers.registry import tier
from models.parsers.rnng import RNNGNet

DATA = Path(__file__).resolve().parents[3] / "data" / "faceparse"
# astronaut's five points (512x512 image), measured once with the mediapipe face mesh
ASTRONAUT_FIVE = np.array([(203.5, 101.1), (246.6, 103.5), (223.7, 130.6), (201.8, 139.2), (245.0, 141.0)],
                          np.float32)


def astronaut_crop(astronaut, size=256):
    m = align.alignment_matrix(ASTRONAUT_FIVE, size)
    return align.warp_crop(astronaut, m, size), align.transform_points(ASTRONAUT_FIVE, m)


def landmark_label(five: np.ndarray, size: int) -> np.ndarray:
    """A coarse 11-class label drawn from the five points: hair cap, face, brows, eyes, nose, lips."""
    lab = np.zeros((size, size), np.uint8)
    le, re, nose, lm, rm = five
    d = float(np.linalg.norm(re - le))
    centre = (le + re) / 2
    pt = lambda p: (int(round(p[0])), int(round(p[1])))
    ax = lambda a, b: (max(int(a * d), 1), max(int(b * d), 1))
    cv2.ellipse(lab, pt(centre + (0, -0.6 * d)), ax(1.2, 1.1), 0, 180, 360, HAIR, -1)
    cv2.ellipse(lab, pt(centre + (0, 0.4 * d)), ax(0.95, 1.35), 0, 0, 360, SKIN, -1)
    for eye, brow, eye_cls in ((le, LEFT_BROW, LEFT_EYE), (re, RIGHT_BROW, RIGHT_EYE)):
        cv2.ellipse(lab, pt(eye + (0, -0.3 * d)), ax(0.3, 0.07), 0, 0, 360, brow, -1)
        cv2.ellipse(lab, pt(eye), ax(0.22, 0.09), 0, 0, 360, eye_cls, -1)
    cv2.ellipse(lab, pt((centre + nose) / 2), ax(0.16, 0.45), 0, 0, 360, NOSE, -1)
    mouth = (lm + rm) / 2
    w = float(np.linalg.norm(rm - lm)) / d / 2
    cv2.ellipse(lab, pt(mouth), ax(w, 0.12), 0, 180, 360, UPPER_LIP, -1)
    cv2.ellipse(lab, pt(mouth), ax(w, 0.14), 0, 0, 180, LOWER_LIP, -1)
    cv2.ellipse(lab, pt(mouth), ax(w * 0.7, 0.03), 0, 0, 360, INNER_MOUTH, -1)
    return lab


def real_batch(astronaut, n=4, size=RNNGNet.defaults["input_size"]) -> dict:
    """FaceSynthetics training crops from the built dataset when present, else the aligned
    astronaut (and its mirror) with a label drawn from its five points."""
    if (DATA / "index.jsonl").is_file():
        from models.data.dataset import FaceParsingDataset
        ds = FaceParsingDataset(DATA, "train", size, sources=["facesynthetics"])
        if len(ds) >= n:
            items = [ds[i] for i in range(n)]
            return {k: torch.stack([it[k] for it in items]) for k in ("image", "label", "five")}
    crop, five = astronaut_crop(astronaut, size)
    label = landmark_label(five, size)
    image = torch.from_numpy(crop).permute(2, 0, 1).float() / 255
    images = [image, image.flip(-1)] * (n // 2)
    from core.classes import flip_labels
    labels = [torch.from_numpy(label.astype(np.int64)), torch.from_numpy(flip_labels(label).astype(np.int64))] * (n // 2)
    mirrored = five[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = size - 1 - mirrored[:, 0]
    fives = [torch.from_numpy(five), torch.from_numpy(mirrored)] * (n // 2)
    return {"image": torch.stack(images), "label": torch.stack(labels), "five": torch.stack(fives)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine two threads stall each other (~20x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_shapes_and_probabilities(astronaut):
    torch.manual_seed(0)
    model = RNNGNet.from_config({}).eval()
    batch = real_batch(astronaut, 2)
    with torch.no_grad():
        probs = model.predict(batch)
        model.use_stage2 = False
        stage1 = model.predict(batch)
    size = model.input_size
    assert probs.shape == stage1.shape == (2, NUM_CLASSES, size, size)
    assert model.stage1(batch["image"])["logits"].shape[-1] == 128  # stage 1 runs at 128
    for p in (probs, stage1):
        torch.testing.assert_close(p.sum(1), torch.ones(2, size, size), atol=1e-4, rtol=0)
        assert (p >= 0).all()
    assert not torch.allclose(probs, stage1)  # stage 2 changed the component regions


def test_numba_and_torch_backends_agree(astronaut):
    torch.manual_seed(1)
    model = RNNGNet.from_config({}).eval()
    batch = real_batch(astronaut, 2)
    with torch.no_grad():
        a = model(batch["image"], batch["five"], backend="numba")
        b = model(batch["image"], batch["five"], backend="torch")
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_committed_checkpoint_parses_astronaut(astronaut):
    path = tier("rnng").checkpoint
    if not path.is_file():
        pytest.skip(f"no committed checkpoint at {path} (train and export rnng first)")
    from models.parsers.registry import create_parser
    parser = create_parser("rnng", device="cpu")
    crop, five = astronaut_crop(astronaut)
    probs = parser(crop[None], five[None])
    assert probs.shape == (1, NUM_CLASSES, 256, 256)
    label = probs[0].argmax(0)
    le, re, nose, lm, rm = five
    d = float(np.linalg.norm(re - le))
    for cheek in (le + (0, 0.55 * d), re + (0, 0.55 * d)):
        x, y = np.round(cheek).astype(int)
        assert label[y, x] == SKIN, (cheek, label[y, x])
    face = label[int(le[1]):int(lm[1]), int(le[0]):int(re[0])]
    assert np.isin(face, [SKIN, NOSE, LEFT_EYE, RIGHT_EYE]).mean() > 0.8
    for eye, cls in ((le, LEFT_EYE), (re, RIGHT_EYE)):
        x, y = np.round(eye).astype(int)
        assert (label[y - 6:y + 7, x - 6:x + 7] == cls).any(), cls
    assert label[5, 5] != SKIN and label[250, 250] != SKIN


def test_missing_or_degenerate_points_fall_back_to_the_template(astronaut):
    model = RNNGNet.from_config({}).eval()
    batch = real_batch(astronaut, 2)
    five = batch["five"].clone()
    five[0] = float("nan")   # detector gave no points
    five[1] = 0.0            # all points on one pixel
    with torch.no_grad():
        probs = model.predict({**batch, "five": five})
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs.sum(1), torch.ones_like(probs[:, 0]), atol=1e-4, rtol=0)


def test_symmetric_parts_are_mirror_averaged_at_inference(astronaut):
    torch.manual_seed(6)
    model = RNNGNet.from_config({})
    batch = real_batch(astronaut, 2)
    image, five = batch["image"][0], batch["five"][0]
    mirrored = five[[1, 0, 2, 4, 3]].clone()
    mirrored[:, 0] = image.shape[-1] - 1 - mirrored[:, 0]
    images, fives = torch.stack([image, image.flip(-1)]), torch.stack([five, mirrored])  # a face and its mirror
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            comps = model.crops(model.normalise(images), fives)
        mouth, nose = comps["mouth"][1], comps["nose"][1]
        symmetric = all(torch.allclose(lg[0], lg[1].flip(-1), atol=1e-3) for lg in (mouth, nose))
        assert symmetric != training  # an untrained net is not symmetric by itself

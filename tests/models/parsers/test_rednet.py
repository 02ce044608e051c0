"""RED-Net's network (models.parsers.rednet): entropy-weighted adaptive prior, exemplar prior,
decoder. Its training: tests/models/training/recipes/test_rednet.py."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.classes import NUM_CLASSES
from models.parsers.rednet import ExemplarPrior, REDNet, apply_adaptive_prior, normalized_entropy


def facesynthetics_faces(shared_dir, n: int, size: int, first: int = 0):
    """n real FaceSynthetics faces aligned as the dataset builder does (their own 70 landmarks,
    no tracker): images (n,S,S,3) uint8, labels (n,S,S) uint8 in our classes, five (n,5,2) at S."""
    import cv2

    from models.data.readers import align_sample
    from models.data.readers.facesynthetics import FaceSyntheticsReader

    reader = FaceSyntheticsReader(use_tracker=False)
    images, labels, fives = [], [], []
    for raw in reader.read(shared_dir / "data" / "facesynthetics", limit=first + n):
        if len(images) + first >= first + n:
            break
        s = align_sample(raw)
        images.append(cv2.resize(s["image"], (size, size), interpolation=cv2.INTER_AREA))
        labels.append(cv2.resize(s["label"], (size, size), interpolation=cv2.INTER_NEAREST))
        fives.append((s["five"] + 0.5) * size / 256 - 0.5)
    images, labels, fives = images[first:], labels[first:], fives[first:]
    return np.stack(images), np.stack(labels), np.stack(fives).astype(np.float32)


def to_batch(images, labels, fives) -> dict:
    return {"image": torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255,
            "label": torch.from_numpy(labels.astype(np.int64)),
            "five": torch.from_numpy(fives)}


@pytest.fixture(scope="module")
def faces(shared_dir):
    torch.set_num_threads(1)
    return facesynthetics_faces(shared_dir, 10, 128)


def test_normalized_entropy_on_hand_made_probabilities():
    probs = torch.zeros(1, NUM_CLASSES, 1, 3)
    probs[0, :, 0, 0] = 1 / NUM_CLASSES            # uniform: the most uncertain pixel
    probs[0, 4, 0, 1] = 1.0                        # certain
    probs[0, 2, 0, 2] = probs[0, 3, 0, 2] = 0.5    # a brow pixel torn between left and right
    h = normalized_entropy(probs)[0, 0, 0]
    assert h.shape == (3,)
    assert h[0].item() == pytest.approx(1.0, abs=1e-6)
    assert h[1].item() == pytest.approx(0.0, abs=1e-6)
    assert h[2].item() == pytest.approx(math.log(2) / math.log(NUM_CLASSES), abs=1e-6)


def test_adaptive_prior_helps_uncertain_pixels_only():
    """Eq. 7-8 by hand: P_final = (P_net + As * Pr) / sum."""
    p = torch.zeros(1, NUM_CLASSES, 1, 2)
    p[0, :, 0, 0] = 1 / NUM_CLASSES   # uncertain pixel (As = 1)
    p[0, 1, 0, 1] = 1.0               # confident skin pixel (As = 0)
    prior = torch.zeros_like(p)
    prior[0, 4, :, :] = 1.0           # the exemplars say "left eye" at both pixels
    final = apply_adaptive_prior(p, prior)
    assert torch.allclose(final.sum(1), torch.ones(1, 1, 2))
    # uncertain: (1/11 + 1) / 2 for the eye, (1/11) / 2 for every other class
    assert final[0, 4, 0, 0].item() == pytest.approx((1 / NUM_CLASSES + 1) / 2, abs=1e-6)
    assert final[0, 0, 0, 0].item() == pytest.approx((1 / NUM_CLASSES) / 2, abs=1e-6)
    # confident: untouched
    assert final[0, 1, 0, 1].item() == pytest.approx(1.0, abs=1e-6)
    assert final[0, 4, 0, 1].item() == pytest.approx(0.0, abs=1e-6)


def test_exemplar_prior_picks_nearest_training_faces(faces):
    _, labels, fives = faces
    prior = ExemplarPrior(neighbours=1)
    prior.fit(fives, labels)
    query = torch.from_numpy(fives[3:4])
    own = prior(query)[0]
    expected = F.one_hot(torch.from_numpy(labels[3].astype(np.int64)).clamp_max(NUM_CLASSES), NUM_CLASSES + 1)
    expected = expected[..., :NUM_CLASSES].permute(2, 0, 1).float()
    assert torch.equal(own, expected)                       # nearest = itself
    other = prior(query, exclude_self=True)[0]              # training: never its own label
    assert not torch.equal(other, own)
    assert other.sum(0).max() <= 1 + 1e-6  # ignore pixels of an exemplar add nothing
    # mean of N exemplars (eq. 5): values are multiples of 1/N
    prior5 = ExemplarPrior(neighbours=5)
    prior5.fit(fives, labels)
    vals = prior5(query)[0].unique()
    assert torch.allclose(vals * 5, (vals * 5).round(), atol=1e-5)
    # unknown five points: no prior at all
    nan = torch.full((1, 5, 2), float("nan"))
    assert prior5(nan).abs().sum() == 0


def test_decoder_unpools_with_encoder_indices_and_outputs_probabilities(faces):
    images, labels, fives = faces
    model = REDNet(width=8).eval()
    x, indices = model.encoder(to_batch(images[:2], labels[:2], fives[:2])["image"])
    assert x.shape[-1] == 128 // 16 and [i.shape[-1] for i in indices] == [64, 32, 16, 8]
    with torch.no_grad():
        logits = model(to_batch(images[:2], labels[:2], fives[:2])["image"])
    assert logits.shape == (2, NUM_CLASSES, 128, 128)
    model.prior.fit(fives, labels)
    with torch.no_grad():
        probs = model.predict(to_batch(images[:2], labels[:2], fives[:2]))
    assert torch.allclose(probs.sum(1), torch.ones(2, 128, 128), atol=1e-5)


def test_training_treats_the_adaptive_scale_as_a_constant():
    """With As detached, the loss cannot be lowered by raising the decoder's entropy."""
    torch.manual_seed(0)
    logits = torch.randn(1, NUM_CLASSES, 2, 2, requires_grad=True)
    prior = torch.zeros(1, NUM_CLASSES, 2, 2)
    prior[:, 3] = 1.0
    grads = {}
    for detach in (False, True):
        p = logits.softmax(1)
        loss = -torch.log(apply_adaptive_prior(p, prior, detach_scale=detach)[:, 3]).sum()
        grads[detach], = torch.autograd.grad(loss, logits)
    manual_scale = normalized_entropy(logits.softmax(1)).detach()
    p = logits.softmax(1)
    manual = torch.autograd.grad(-torch.log(((p + manual_scale * prior) / (p + manual_scale * prior).sum(1, keepdim=True))[:, 3]).sum(), logits)[0]
    assert torch.allclose(grads[True], manual, atol=1e-6)
    assert not torch.allclose(grads[False], grads[True], atol=1e-4)

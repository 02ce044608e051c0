"""The gated recurrence of RNN-G (Liu et al., "Face Parsing via Recurrent Propagation", eq. 3): numba and torch forms against the plain
reference, in every direction, and autograd against the paper's BPTT (eq. 4)."""
import numpy as np
import pytest
import torch

from models.parsers.gated_scan import DIRECTIONS, gated_scan, scan_numba, scan_reference, scan_torch


def random_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.normal(size=shape).astype(np.float32)
    g = rng.uniform(-1, 1, size=shape).astype(np.float32)        # |g| <= 1
    w = rng.normal(size=(c, c))
    w = (w / np.linalg.norm(w, 2)).astype(np.float32)            # ||W||_2 = 1
    b = rng.normal(size=c).astype(np.float32)
    return x, g, w, b


@pytest.mark.parametrize("directions", [(d,) for d in DIRECTIONS] + [DIRECTIONS, ("lr", "tb")])
def test_numba_and_torch_match_reference(directions):
    x, g, w, b = random_inputs((2, 5, 9, 9), seed=len(directions))
    ref = scan_reference(x, g, w, b, directions)
    fast = scan_numba(x, g, w, b, directions)
    vec = scan_torch(*map(torch.from_numpy, (x, g, w, b)), directions=directions).numpy()
    np.testing.assert_allclose(fast, ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(vec, ref, atol=1e-5, rtol=1e-5)


def test_torch_form_on_non_square_maps():
    # rows and columns have different lengths: catches a swapped axis
    x, g, w, b = random_inputs((1, 3, 5, 8), seed=3)
    for directions in [(d,) for d in DIRECTIONS] + [DIRECTIONS]:
        vec = scan_torch(*map(torch.from_numpy, (x, g, w, b)), directions=directions).numpy()
        np.testing.assert_allclose(vec, scan_reference(x, g, w, b, directions), atol=1e-5, rtol=1e-5)


def test_single_line_by_hand():
    # one row, one channel: h0 = x0 + g0 b, h1 = x1 + g1 (w h0 + b)
    x = np.array([[[[1.0, 2.0]]]], np.float32)
    g = np.array([[[[0.5, 0.25]]]], np.float32)
    w, b = np.array([[0.8]], np.float32), np.array([0.1], np.float32)
    h0 = 1.0 + 0.5 * 0.1
    h1 = 2.0 + 0.25 * (0.8 * h0 + 0.1)
    assert scan_reference(x, g, w, b, ("lr",))[0, 0, 0].tolist() == pytest.approx([h0, h1])


def test_autograd_matches_bptt_of_eq4():
    """dL/dx_i = delta_i with delta_i = xi_i + W^T (g_{i+1} * delta_{i+1}) and
    dL/dg_i = delta_i * (W h_{i-1} + b): the paper's eq. 4, written out for one direction."""
    x, g, w, b = random_inputs((1, 4, 1, 12), seed=5)
    xi = np.random.default_rng(6).normal(size=x.shape)           # dL/dh from above
    xt, gt = torch.tensor(x, dtype=torch.float64, requires_grad=True), torch.tensor(g, dtype=torch.float64, requires_grad=True)
    h = scan_torch(xt, gt, torch.tensor(w, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), ("lr",))
    (h * torch.from_numpy(xi)).sum().backward()

    hs = scan_reference(x, g, w, b, ("lr",))[0, :, 0].T           # (L, C) states
    xs, gs, xis = x[0, :, 0].T.astype(np.float64), g[0, :, 0].T.astype(np.float64), xi[0, :, 0].T
    steps = len(xs)
    delta, eps = np.zeros_like(xs), np.zeros_like(xs)
    for i in reversed(range(steps)):
        delta[i] = xis[i] + (w.T @ (gs[i + 1] * delta[i + 1]) if i + 1 < steps else 0)
        prev = hs[i - 1] if i > 0 else np.zeros_like(hs[0])
        eps[i] = delta[i] * (w @ prev + b)
    np.testing.assert_allclose(xt.grad[0, :, 0].T.numpy(), delta, atol=1e-9)
    np.testing.assert_allclose(gt.grad[0, :, 0].T.numpy(), eps, atol=1e-9)


def test_gradcheck_four_directions():
    x, g, w, b = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in random_inputs((1, 2, 4, 4), 7))
    assert torch.autograd.gradcheck(lambda *t: scan_torch(*t), (x, g, w, b), eps=1e-6, atol=1e-6)


def test_auto_backend_numba_for_inference_torch_for_training():
    x, g, w, b = map(torch.from_numpy, random_inputs((1, 4, 16, 16), seed=8))
    with torch.no_grad():
        fast = gated_scan(x, g, w, b)                            # numba
    wt = w.clone().requires_grad_()
    trained = gated_scan(x, g, wt, b)                            # torch, differentiable
    assert trained.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, trained.detach(), atol=1e-5, rtol=1e-5)


def test_bounded_with_unit_norm_and_gates():
    # ||W|| <= 1 and |g| <= 1: each state is at most (step + 1) * (max|x| + |b|): no blow-up
    x, g, w, b = random_inputs((1, 8, 64, 64), seed=9)
    g = np.abs(g)
    bound = 64 * (np.abs(x).max() + np.linalg.norm(b))
    assert np.abs(scan_numba(x, g, w, b)).max() <= bound
    assert np.isfinite(scan_numba(x * 1e3, np.ones_like(g), w, b)).all()

"""The spatially variant gated linear recurrence of RNN-G (Liu et al. BMVC 2017, eq. 3).

Along one scan line, with a zero state before the first node:

    h_i = x_i + g_i * (W h_{i-1} + b)

x, g: (N, C, H, W) label representation and gate (gate per node and channel, |g| <= 1);
W: (C, C) the state transition (spectral norm <= 1, kept by the caller); b: (C,).
The scan runs in four directions, left->right ("lr"), right->left ("rl"), top->bottom
("tb"), bottom->top ("bt"), on the same input (the paper's "parallel" grouping, sec. 3.1),
and the outputs are combined by a node-wise max.

Three implementations of the same maths:
    scan_reference  plain numpy loops: the definition, for tests
    scan_torch      vectorised torch (all rows/columns of all directions advance together):
                    autograd (BPTT of eq. 4 comes from autograd) and GPU
    scan_numba      numba CPU kernel for inference (square maps); each step updates a
                    block of neighbouring scan lines at once so the inner loop is
                    contiguous and vectorises

torch is imported by the torch functions only: RNN-G's CPU path (models.parsers.rnng_ort) runs
the numba kernel without it.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    import torch

# numba's default OpenMP layer leaves its workers spinning after a kernel; on a small shared
# CPU they then starve torch's own threads (measured here: torch ops 40x slower right after a
# scan). numba's own workqueue layer does not spin. It must not be entered by two threads at
# once, hence the lock. (Takes effect unless another module launched a parallel kernel first.)
numba.config.THREADING_LAYER = "workqueue"
_KERNEL_LOCK = threading.Lock()

DIRECTIONS = ("lr", "rl", "tb", "bt")


# ---------------------------------------------------------------- reference (definition)

def scan_reference(x, g, w, b, directions=DIRECTIONS) -> np.ndarray:
    """Node-wise max over `directions` of the gated scan; plain loops, float64."""
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    n_img, _, height, width = x.shape
    out = np.full(x.shape, -np.inf)
    for d in directions:
        horizontal = d in ("lr", "rl")
        lines, steps = (height, width) if horizontal else (width, height)
        for n in range(n_img):
            for line in range(lines):
                h = np.zeros(x.shape[1])
                for s in range(steps):
                    i = s if d in ("lr", "tb") else steps - 1 - s
                    yx = (line, i) if horizontal else (i, line)
                    h = x[n, :, yx[0], yx[1]] + g[n, :, yx[0], yx[1]] * (w @ h + b)
                    out[n, :, yx[0], yx[1]] = np.maximum(out[n, :, yx[0], yx[1]], h)
    return out


# ---------------------------------------------------------------- torch (autograd, GPU)

def _to_sequences(t: torch.Tensor, d: str) -> torch.Tensor:
    """(N, C, H, W) -> (L, B, C): scan step first, scan lines batched, channels last."""
    seq = t.permute(3, 0, 2, 1) if d in ("lr", "rl") else t.permute(2, 0, 3, 1)
    seq = seq.reshape(seq.shape[0], -1, seq.shape[-1])
    return seq.flip(0) if d in ("rl", "bt") else seq


def _from_sequences(seq: torch.Tensor, d: str, shape) -> torch.Tensor:
    n, c, height, width = shape
    if d in ("rl", "bt"):
        seq = seq.flip(0)
    if d in ("lr", "rl"):
        return seq.reshape(width, n, height, c).permute(1, 3, 2, 0)
    return seq.reshape(height, n, width, c).permute(1, 3, 0, 2)


def _run(xs: torch.Tensor, gs: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. 3 on (L, B, C) sequences; every line advances together."""
    import torch
    h = xs.new_zeros(xs.shape[1:])
    wt = w.t()
    hs = []
    # unbind, not xs[i]: indexing would make every step's backward write a full-size zero tensor
    for x_i, g_i in zip(xs.unbind(0), gs.unbind(0)):
        h = torch.addcmul(x_i, g_i, torch.addmm(b, h, wt))
        hs.append(h)
    return torch.stack(hs)


def scan_torch(x: torch.Tensor, g: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
               directions=DIRECTIONS) -> torch.Tensor:
    """Node-wise max over `directions`; differentiable. Directions whose sequences have the
    same length run in one loop (all four when H == W)."""
    import torch
    groups: dict[int, list[str]] = {}
    for d in directions:
        groups.setdefault(x.shape[3] if d in ("lr", "rl") else x.shape[2], []).append(d)
    outs = []
    for ds in groups.values():
        xs = torch.cat([_to_sequences(x, d) for d in ds], 1)
        gs = torch.cat([_to_sequences(g, d) for d in ds], 1)
        hs = _run(xs, gs, w, b).chunk(len(ds), 1)
        outs += [_from_sequences(h, d, x.shape) for h, d in zip(hs, ds)]
    return torch.stack(outs).amax(0)


# ---------------------------------------------------------------- numba (CPU inference)

_BLOCK = 64  # scan lines per task: the contiguous (vectorised) inner loop of the kernel


@numba.njit(parallel=True, cache=True, fastmath=True)
def _scan_four(x_cols, g_cols, x_rows, g_rows, w, b, out):
    """All four directions as column scans: x_cols (N, C, H, W) scanned top->bottom and
    bottom->top, x_rows = its transpose (N, C, W, H) likewise (= left->right, right->left).
    Writes out[d] (4, N, C, L, M) for d = tb, bt, lr, rl (lr/rl in the transposed layout).
    A task is one direction of one block of scan lines of one image."""
    n_img, c_num, steps, m = x_cols.shape
    blocks = (m + _BLOCK - 1) // _BLOCK
    for task in numba.prange(4 * n_img * blocks):
        d = task // (n_img * blocks)
        n = (task // blocks) % n_img
        j0 = (task % blocks) * _BLOCK
        nb = min(j0 + _BLOCK, m) - j0
        x = x_cols if d < 2 else x_rows
        g = g_cols if d < 2 else g_rows
        h = np.zeros((c_num, nb), np.float32)
        wh = np.empty((c_num, nb), np.float32)
        for s in range(steps):
            i = s if d % 2 == 0 else steps - 1 - s
            for c in range(c_num):  # wh = W h + b for the whole block of lines
                for j in range(nb):
                    wh[c, j] = b[c]
                for k in range(c_num):
                    wck = w[c, k]
                    for j in range(nb):
                        wh[c, j] += wck * h[k, j]
            for c in range(c_num):
                for j in range(nb):
                    h[c, j] = x[n, c, i, j0 + j] + g[n, c, i, j0 + j] * wh[c, j]
                    out[d, n, c, i, j0 + j] = h[c, j]


_NUMBA_ORDER = ("tb", "bt", "lr", "rl")


def scan_numba(x: np.ndarray, g: np.ndarray, w: np.ndarray, b: np.ndarray,
               directions=DIRECTIONS) -> np.ndarray:
    """Node-wise max over `directions` (float32 numpy in and out). The kernel runs all four
    directions; the horizontal ones as column scans of the transposed maps."""
    x = np.ascontiguousarray(x, np.float32)
    g = np.ascontiguousarray(g, np.float32)
    w = np.ascontiguousarray(w, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    if x.shape[2] != x.shape[3]:  # the kernel's one output buffer needs square maps
        raise ValueError(f"scan_numba needs square maps, got {x.shape[2]}x{x.shape[3]}")
    x_rows = np.ascontiguousarray(x.transpose(0, 1, 3, 2))
    g_rows = np.ascontiguousarray(g.transpose(0, 1, 3, 2))
    out = np.empty((4,) + x.shape, np.float32)
    with _KERNEL_LOCK:
        _scan_four(x, g, x_rows, g_rows, w, b, out)
    outs = [out[k] if d in ("tb", "bt") else out[k].transpose(0, 1, 3, 2)
            for k, d in enumerate(_NUMBA_ORDER) if d in directions]
    result = outs[0].copy()
    for o in outs[1:]:
        np.maximum(result, o, out=result)
    return result


def gated_scan(x: torch.Tensor, g: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
               backend: str = "auto") -> torch.Tensor:
    """Four-direction gated scan with node-wise max. backend "auto": numba for CPU tensors
    that need no gradient (inference), torch otherwise (training, GPU)."""
    import torch
    if backend == "auto":
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, g, w, b))
        backend = "numba" if x.device.type == "cpu" and not needs_grad else "torch"
    if backend == "torch":
        return scan_torch(x, g, w, b)
    out = scan_numba(*(t.detach().float().numpy() for t in (x, g, w, b)))
    return torch.from_numpy(out).to(x.dtype)

"""Statistical Contextual (sc) loss of Wei et al., "Accurate Facial Image Parsing at Real-Time Speed"
(IEEE TIP), Sec. IV.

Features are the raw outputs of the last layer (the 11 logits per pixel: "low-dimension
features with semantics preservation"), compared with one centre per class:

  L_intra  Eq. 3   0.5 * mean_i ||x_i - c_{y_i}||^2            (gradient to the network)
  Delta c  Eq. 5   centre step over *easy* pixels only: pixel i of class j counts when its
                   softmax loss l_i < the mean loss of class j ("hard-aware centres")
  L_inter  Eq. 6   sum_i max(d - D(i, j_i), 0), D(i, j) = (c_ii - c_ji)^2 + (c_ij - c_jj)^2,
                   the "class-aware" distance on the i-th and j-th dimensions only; j_i is
                   the class whose centre is nearest to class i's under D
  L_cd     Eq. 7   sum_i sum_{j != i} [c_ij > 0] c_ij^2  ("centre decay": off-diagonal
                   elements pushed to the negative side, the diagonal left alone)

The centres are not trained by the optimiser: as in Caffe's centre loss they move by their
own rule, c <- c - centre_lr * (Delta c + dL_inter/dc + centre_decay * dL_cd/dc), once per
training step (paper: centre lr 0.1, d = 3, centre decay 5e-4, loss weight 0.01).

Eq. 6 is printed ambiguously: a sum over the n classes i with an unbound j, inside one hinge.
We read j as class i's nearest centre (Eq. 4's "closest pair" Q, R, seen from every class)
and put the hinge on each class: with the sum inside one hinge, a single far-apart class
would switch the term off for all of them (11 squared logit gaps always exceed d = 3).
"""
import torch

from core.classes import IGNORE


def flatten_pixels(logits: torch.Tensor, label: torch.Tensor):
    """(N, C, H, W) features and (N, H, W) labels -> (M, C) features, (M,) labels of the
    labelled pixels, and the boolean mask that picked them."""
    c = logits.shape[1]
    valid = (label != IGNORE).reshape(-1)
    x = logits.permute(0, 2, 3, 1).reshape(-1, c)[valid]
    return x, label.reshape(-1)[valid], valid


def intra_loss(x: torch.Tensor, y: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Eq. 3, averaged over pixels; centres are constants here."""
    if len(y) == 0:
        return x.sum() * 0
    return 0.5 * ((x - centres.detach()[y]) ** 2).sum(1).mean()


def class_mean(values: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    total = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, y, values)
    count = torch.bincount(y, minlength=n).to(values.dtype)
    return total / count.clamp(min=1)


def hard_aware_centre_delta(x, y, pixel_loss, centres) -> torch.Tensor:
    """Eq. 5: Delta c_j = sum_i [y_i = j][l_i < mean_l_j](c_j - x_i) / (1 + sum_i [...])."""
    x, pixel_loss = x.detach().float(), pixel_loss.detach().float()
    n = centres.shape[0]
    # strict "<" as printed, up to float rounding: a class whose pixels all have the same loss
    # (mean == each) would otherwise never move its centre
    mean = class_mean(pixel_loss, y, n)[y]
    easy = pixel_loss <= mean * (1 + 1e-6)
    ye = y[easy]
    diff = centres[ye] - x[easy]
    num = torch.zeros_like(centres).index_add_(0, ye, diff)
    count = torch.bincount(ye, minlength=n).to(centres.dtype)
    return num / (1 + count)[:, None]


def class_aware_distance(centres: torch.Tensor) -> torch.Tensor:
    """D (n, n): D[q, r] = (c_qq - c_rq)^2 + (c_qr - c_rr)^2 (Eq. 6), symmetric, 0 diagonal."""
    a = centres - centres.diagonal()[None, :]  # a[r, q] = c_rq - c_qq
    return a ** 2 + a.T ** 2


def inter_loss(centres: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 6: sum_i max(d - D(i, nearest(i)), 0) (see the module doc for the reading)."""
    d = class_aware_distance(centres)
    eye = torch.eye(len(centres), dtype=torch.bool, device=centres.device)
    nearest = d.masked_fill(eye, float("inf")).min(1).values
    return torch.clamp(margin - nearest, min=0).sum()


def centre_decay_loss(centres: torch.Tensor) -> torch.Tensor:
    """Eq. 7: sum over off-diagonal positive elements of c_ij^2."""
    off = ~torch.eye(len(centres), dtype=torch.bool, device=centres.device)
    return ((centres * (off & (centres > 0))) ** 2).sum()


@torch.no_grad()
def update_centres(centres, x, y, pixel_loss, margin=3.0, centre_lr=0.1, centre_decay=5e-4):
    """One step of the centre rule (in place); returns (L_inter, L_cd) before the step."""
    delta = hard_aware_centre_delta(x, y, pixel_loss, centres)
    with torch.enable_grad():
        c = centres.detach().float().clone().requires_grad_(True)
        l_inter, l_cd = inter_loss(c, margin), centre_decay_loss(c)
        g_inter, g_cd = torch.autograd.grad(l_inter + 0 * c.sum(), c)[0], torch.autograd.grad(l_cd, c)[0]
    centres -= (centre_lr * (delta + g_inter + centre_decay * g_cd)).to(centres.dtype)
    return float(l_inter), float(l_cd)


def sc_loss(logits, label, pixel_loss, centres, margin=3.0, centre_lr=0.1, centre_decay=5e-4,
            update=True):
    """L_intra on the batch (differentiable w.r.t. logits) and a dict to log; with `update`
    the centres (a buffer of the model, (C, C)) take one step of their rule.

    pixel_loss: (N, H, W) per-pixel softmax loss, used to find the hard pixels (Eq. 5)."""
    x, y, valid = flatten_pixels(logits, label)
    intra = intra_loss(x, y, centres)
    logs = {"sc_intra": float(intra.detach())}
    if update and len(y):
        l_inter, l_cd = update_centres(centres, x, y, pixel_loss.reshape(-1)[valid], margin,
                                       centre_lr, centre_decay)
        logs.update(sc_inter=l_inter, sc_decay=l_cd)
    return intra, logs

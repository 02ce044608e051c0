"""The pieces of the Statistical Contextual loss (Wei et al., "Accurate Facial Image Parsing at Real-Time
Speed", Sec. IV) on hand-made features."""
import torch
import torch.nn.functional as F

from models.training import sc_loss as sc
from core.classes import IGNORE


def test_intra_loss_is_half_squared_distance_to_own_centre():  # Eq. 3
    centres = torch.tensor([[2.0, -1.0], [-1.0, 3.0]])
    x = torch.tensor([[2.0, -1.0], [0.0, 3.0], [-1.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 1, 1])
    loss = sc.intra_loss(x, y, centres)
    # squared distances 0, 1, 4 -> 0.5 * mean = 0.5 * 5 / 3
    assert torch.isclose(loss, torch.tensor(5 / 6))
    loss.backward()
    assert torch.allclose(x.grad, (x.detach() - centres[y]) / 3)  # pulls features to centres


def test_hard_aware_centres_leave_out_pixels_above_their_class_mean_loss():  # Eq. 5
    centres = torch.zeros(2, 2)
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [50.0, 50.0], [0.0, 2.0], [0.0, -40.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    loss = torch.tensor([0.1, 0.2, 5.0, 0.3, 9.0])  # the outliers are the hard pixels
    delta = sc.hard_aware_centre_delta(x, y, loss, centres)
    # class 0: mean loss 1.77, easy pixels x0, x1 -> sum(c - x) / (1 + 2)
    assert torch.allclose(delta[0], torch.tensor([-4.0 / 3, 0.0]))
    # class 1: mean loss 4.65, easy pixel x3 -> (c - x3) / 2
    assert torch.allclose(delta[1], torch.tensor([0.0, -1.0]))
    # without the filter (plain centre loss, Eq. 2) the outlier would drag class 0 far away
    plain = (centres[0] - x[:3]).sum(0) / 4
    assert plain[1] < -10 and delta[0, 1] == 0


def test_class_aware_distance_uses_only_the_two_classes_dimensions():  # Eq. 6
    c = torch.tensor([[4.0, -1.0, -2.0], [-3.0, 5.0, 0.5], [-1.0, -2.0, 6.0]])
    d = sc.class_aware_distance(c)
    # D(0, 1) = (c00 - c10)^2 + (c01 - c11)^2
    assert torch.isclose(d[0, 1], torch.tensor((4 + 3) ** 2 + (-1 - 5) ** 2.0))
    assert torch.allclose(d, d.T) and torch.all(d.diagonal() == 0)
    moved = c.clone()
    moved[0, 2] += 10.0
    moved[1, 2] -= 7.0  # a third class's dimension: no effect on D(0, 1)
    assert torch.isclose(sc.class_aware_distance(moved)[0, 1], d[0, 1])


def test_inter_loss_hinge_pushes_near_centres_apart_on_their_own_dimensions():  # Eq. 6
    far = torch.tensor([[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    assert sc.inter_loss(far, margin=3.0) == 0  # beyond the margin: no loss
    near = torch.tensor([[0.2, 0.0, 0.3], [0.0, 0.2, -0.4], [-5.0, -5.0, 5.0]], requires_grad=True)
    loss = sc.inter_loss(near, margin=3.0)
    assert loss > 0
    loss.backward()
    g = near.grad
    # moving against the gradient raises c_00 over c_10, and c_11 over c_01
    assert g[0, 0] < 0 and g[1, 0] > 0 and g[1, 1] < 0 and g[0, 1] > 0
    # elements outside the diagonal-pair dimensions get no push (c_02, c_12)
    assert g[0, 2] == 0 and g[1, 2] == 0 and torch.all(g[2] == 0)  # class 2 is far: no push


def test_centre_decay_moves_positive_off_diagonal_elements_only():  # Eq. 7
    c = torch.tensor([[3.0, 2.0, -1.0], [0.5, 4.0, 1.0], [-2.0, -3.0, 5.0]])
    assert torch.isclose(sc.centre_decay_loss(c), torch.tensor(4.0 + 0.25 + 1.0))
    centres = c.clone()
    x = centres.clone()  # every feature sits on its centre: Eq. 5 gives no step
    y = torch.arange(3)
    for _ in range(50):
        sc.update_centres(centres, x, y, torch.zeros(3), margin=0.0, centre_lr=0.1, centre_decay=1.0)
        x = centres.clone()
    assert torch.allclose(centres.diagonal(), c.diagonal())       # c_ii unchanged
    assert torch.all(centres[c < 0] == c[c < 0])                   # negatives unchanged
    off_pos = (c > 0) & ~torch.eye(3, dtype=torch.bool)
    assert torch.all(centres[off_pos] < 0.01 * c[off_pos])          # positives decayed to ~0
    assert torch.all(centres[off_pos] >= 0)                         # decay stops at zero


def test_sc_loss_updates_centres_towards_easy_features_on_a_label_map():
    torch.manual_seed(0)
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[:, 2:6, 2:6] = 1
    label[:, 0, 0] = IGNORE
    logits = torch.zeros(1, 2, 8, 8)
    logits[:, 0] = torch.where(label == 0, 3.0, -3.0)
    logits[:, 1] = -logits[:, 0]
    pixel_loss = F.cross_entropy(logits, label, ignore_index=IGNORE, reduction="none")
    centres = torch.zeros(2, 2)
    for _ in range(100):
        intra, logs = sc.sc_loss(logits, label, pixel_loss, centres, margin=3.0, centre_lr=0.1, centre_decay=5e-4)
    assert torch.allclose(centres, torch.tensor([[3.0, -3.0], [-3.0, 3.0]]), atol=0.1)
    assert intra < 0.01 and logs["sc_inter"] == 0  # centres 72 apart on their dimensions
    frozen = centres.clone()
    sc.sc_loss(logits + 1, label, pixel_loss, centres, update=False)
    assert torch.equal(centres, frozen)

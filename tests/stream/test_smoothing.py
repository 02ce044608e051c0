"""Temporal smoothing on real parses: less flicker on a steady face, little lag after a change."""
import cv2
import numpy as np
import pytest

from core import align
from core.classes import LOWER_LIP, UPPER_LIP
from models.parsers.landmark_parser import LandmarkParser
from stream.flicker import FlickerMeter, flow_floor, step_lag
from stream.smoothing import LandmarkSmoother, OneEuroFilter, ProbabilitySmoother
from core.types import Face
from tests.faces import tracked


def test_one_euro_steadies_jitter_and_follows_a_jump():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=0.5, beta=0.05)
    steady = [f(np.array([100.0]) + rng.normal(0, 1.0, 1), t / 30) for t in range(60)]
    assert np.std(steady[10:]) < 0.5  # input jitter has std 1
    moved = [f(np.array([160.0]), (60 + t) / 30) for t in range(8)]
    assert abs(moved[-1][0] - 160) < 3  # a fast move is followed within a few frames


def _jittered_parses(n=12, px=1.0):
    """Landmark-tier parses of the real astronaut face with its mesh jittered by `px` pixels,
    as a steady face looks to a landmark detector from frame to frame."""
    image, face = tracked("astronaut")
    crop = align.warp_crop(image, face.matrix)
    mesh = align.transform_points(face.mesh, face.matrix)
    rng = np.random.default_rng(1)
    parser = LandmarkParser()
    meshes = [mesh + rng.normal(0, px, mesh.shape).astype(np.float32) for _ in range(n)]
    probs = [parser(crop[None], None, m[None])[0] for m in meshes]
    return probs, crop


def test_probability_smoothing_reduces_flicker_on_a_steady_face():
    probs, crop = _jittered_parses()
    raw, smoothed = FlickerMeter(), FlickerMeter()
    smoother = ProbabilitySmoother()
    for p in probs:
        raw.update(0, p.argmax(0))
        smoothed.update(0, smoother([0], p[None], crop[None])[0].argmax(0))
    assert raw.result()["all"] > 0.003  # jitter does flip labels
    assert smoothed.result()["all"] < 0.6 * raw.result()["all"]


def test_a_cut_resets_the_memory():
    """Two different faces under one id (a scene cut): the flow cannot explain the change (grey
    levels apart on average far beyond a talking head's), so the new parse shows at once."""
    a_img, a = tracked("astronaut")
    b_img, b = tracked("portrait_A000371")
    parser = LandmarkParser()
    pa = parser(align.warp_crop(a_img, a.matrix)[None], None, align.transform_points(a.mesh, a.matrix)[None])[0]
    pb = parser(align.warp_crop(b_img, b.matrix)[None], None, align.transform_points(b.mesh, b.matrix)[None])[0]
    ca, cb = align.warp_crop(a_img, a.matrix), align.warp_crop(b_img, b.matrix)
    assert step_lag(ProbabilitySmoother(), pa, pb, ca, cb) == 0
    # without it (cut off), the abrupt change of a fast head turn: blending lets it through in 2 frames
    assert step_lag(ProbabilitySmoother(cut=255.0), pa, pb, ca, cb) <= 2


def _moving_face(steps=6, px=3):
    """The real astronaut crop and its landmark-tier parse, the face sliding `px` pixels right
    and down per frame inside the crop (what a head turn leaves after five-point alignment)."""
    image, face = tracked("astronaut")
    parser = LandmarkParser()
    out = []
    for k in range(steps):
        m = face.matrix.copy()
        m[:, 2] += k * px
        crop = align.warp_crop(image, m)
        mesh = align.transform_points(face.mesh, m)
        out.append((crop, parser(crop[None], None, mesh[None])[0]))
    return out


@pytest.mark.parametrize("flow", ["dis", "farneback"])
def test_compensated_flicker_does_not_count_motion(flow):
    """With the smoother's own flow (DIS) and with an independent one (Farnebäck)."""
    plain, compensated = FlickerMeter(), FlickerMeter(motion_compensated=True, flow=flow)
    for crop, p in _moving_face():
        plain.update(0, p.argmax(0), crop)
        compensated.update(0, p.argmax(0), crop)
    assert plain.result()["all"] > 0.03   # 3-pixel steps move every boundary
    assert compensated.result()["all"] < 0.3 * plain.result()["all"]


def test_flow_floor_reads_nothing_along_the_meters_own_flow_and_little_along_the_smoothers():
    frames = _moving_face()
    crops, first = [c for c, _ in frames], frames[0][1].argmax(0)
    assert flow_floor(crops, first, flow="farneback", meter_flow="farneback") == 0.0
    plain = FlickerMeter()
    for crop, p in frames:
        plain.update(0, p.argmax(0))
    floor = flow_floor(crops, first)   # moved along DIS, measured along Farnebäck
    assert floor < 0.3 * plain.result()["all"]   # the flows disagree at a few edge pixels at most


def test_smoothing_follows_a_moving_face_without_trailing():
    smoother = ProbabilitySmoother()
    for k, (crop, p) in enumerate(_moving_face()):
        out = smoother([0], p[None], crop[None])[0].argmax(0)
        face = p.argmax(0) != 0
        # the memory moves with the face: labels agree with this frame's parse, not the last one's
        assert (out[face] == p.argmax(0)[face]).mean() > 0.97, k


def test_a_part_read_alone_is_smoothed_in_a_box_around_it_and_follows_the_face():
    """Lipstick alone reads two planes: flow, cut test and blend run in a box around the lips
    (README, Speed); outside it the planes are the new parse's, inside they blend with the
    memory moved along the flow, and the lips follow the moving face as the full crop's do."""
    lips = frozenset({UPPER_LIP, LOWER_LIP})
    smoother, whole = ProbabilitySmoother(), ProbabilitySmoother()

    def agreement(out, p):
        label, parsed = out[[0, UPPER_LIP, LOWER_LIP]].argmax(0), p[[0, UPPER_LIP, LOWER_LIP]].argmax(0)
        on = (label > 0) | (parsed > 0)
        return (label[on] == parsed[on]).mean()

    for k, (crop, p) in enumerate(_moving_face()):
        out = smoother([0], p[None], crop[None], classes=lips)[0]
        out_whole = whole([0], p[None], crop[None])[0]   # every plane: the whole crop's path
        support = (p[UPPER_LIP] + p[LOWER_LIP]) > ProbabilitySmoother.SUPPORT
        ys, xs = np.nonzero(support)
        far = np.ones_like(support)
        far[max(ys.min() - 2 * ProbabilitySmoother.PAD, 0):ys.max() + 2 * ProbabilitySmoother.PAD,
            max(xs.min() - 2 * ProbabilitySmoother.PAD, 0):xs.max() + 2 * ProbabilitySmoother.PAD] = False
        for c in lips:
            assert np.array_equal(out[c][far], p[c][far]), k            # beyond the box: the parse
        assert far.mean() > 0.5                                          # the box is a small part of the crop
        if k:
            assert not np.array_equal(out[UPPER_LIP], p[UPPER_LIP])      # inside: blended
        # the lips lag this frame's parse no more than the whole crop's smoothing lets them (on
        # this 3-pixel slide both trail a thin part; on five held-out clips the box trails less)
        assert agreement(out, p) > agreement(out_whole, p) - 0.06, k


def test_smoothing_in_place_gives_the_copy_and_leaves_the_input_alone_otherwise():
    frames = _moving_face()
    copying, in_place = ProbabilitySmoother(), ProbabilitySmoother()
    for crop, p in frames:
        given = p.copy()
        out = copying([0], p[None], crop[None])
        assert np.array_equal(p, given)   # not in place: the caller's parse is untouched
        mine = [p.copy()]
        back = in_place([0], mine, [crop], inplace=True)
        assert back is mine and np.array_equal(mine[0], out[0])
    assert len(copying([], np.zeros((0, 11, 256, 256), np.float32), np.zeros((0, 256, 256, 3), np.uint8))) == 0


def test_smoothing_no_class_passes_the_parse_through_and_a_later_class_set_still_blends():
    """Nothing read (run_live.py --effects none, no label maps): the parse passes as it is; when
    the classes read change (an effect switched on), the memory still serves them."""
    frames = _moving_face()
    smoother = ProbabilitySmoother()
    for crop, p in frames[:3]:
        out = smoother([0], p[None], crop[None], classes=frozenset())
        assert np.array_equal(out[0], p)
    crop, p = frames[3]
    out = smoother([0], p[None], crop[None], classes=frozenset({1, 7}))
    assert np.array_equal(out[0][0], p[0])           # a plane not read passes as parsed
    assert not np.array_equal(out[0][1], p[1])       # skin blends with the moved memory


def test_landmark_smoother_keeps_ids_apart_and_recomputes_alignment():
    _, face = tracked("astronaut")
    sm = LandmarkSmoother()
    f1 = Face(1, face.five.copy(), face.matrix.copy(), face.mesh.copy())
    f2 = Face(2, face.five + 200, face.matrix.copy(), face.mesh + 200)
    out = sm([f1, f2], 0.0)
    assert np.allclose(out[1].five, face.five + 200, atol=1e-3)
    moved = Face(1, face.five + 3, face.matrix.copy(), face.mesh + 3)
    out = sm([moved], 1 / 30)
    assert 0 < abs(out[0].five[0, 0] - face.five[0, 0]) < 3  # part of the way, not frozen
    assert np.allclose(out[0].matrix, align.alignment_matrix(out[0].five))


def test_pull_and_blend_matches_exact_bilinear_sampling():
    from stream.smoothing import _pull_and_blend, stack_planes
    (crop_a, pa), (crop_b, pb) = _moving_face(steps=2)
    h, w = pa.shape[1:]
    grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    sample_map = grid + np.float32([-2.6, 1.3])  # sub-pixel motion, some samples off the border
    # exact bilinear sampling with a replicated border, in numpy
    sx = np.clip(sample_map[..., 0], 0, w - 1)
    sy = np.clip(sample_map[..., 1], 0, h - 1)
    x0, y0 = np.minimum(sx.astype(int), w - 2), np.minimum(sy.astype(int), h - 2)
    u, v = sx - x0, sy - y0
    q = np.stack([(c[y0, x0] * (1 - u) + c[y0, x0 + 1] * u) * (1 - v) + (c[y0 + 1, x0] * (1 - u) + c[y0 + 1, x0 + 1] * u) * v
                  for c in pa])
    a = np.clip(0.1 + 0.3 * np.abs(pb - q).max(0, keepdims=True), 0.1, 1.0)
    expected = a * pb + (1 - a) * q
    out = np.empty_like(pb)
    planes = tuple(range(pb.shape[0]))
    _pull_and_blend(pb, stack_planes(pa, planes), cv2.convertMaps(sample_map, None, cv2.CV_16SC2), 0.1, 0.3, out, planes)
    assert np.abs(out - expected).max() < 0.02  # OpenCV interpolates with 1/32-pixel weights
    assert np.abs(out - expected).mean() < 1e-3

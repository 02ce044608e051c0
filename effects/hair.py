"""Hair recolour, including long hair beyond the aligned crop.

With whole-head hair (models/perception/hair.py, the live pipeline's default) the parse's box
already holds all of the head's hair and its probability is painted as it is. Without it, the parser only sees the 256x256 crop; long hair falling on the
shoulders lies below it. So the hair mask is grown, at a reduced scale, from the parser's hair hanging beside the face:
a pixel is hair when its Lab colour is within a Mahalanobis radius of a Gaussian model of the
labelled hair and closer to it than to models of the skin, of the crop's background and of
the chest below the chin (clothes); when hair-coloured pixels around it show strands (local
contrast) and form a dense mass (not the specks of a tweed); and when it is connected to
that hair. It grows only below the eyes, within 2.6 half face widths of the face's axis.
Everywhere, pixels closer to the skin's colour than to the crown's hair are dropped (ears or
forehead that a parser calls hair), and on the mask's soft edge those far from the hair colour.
Measured on 78 FaceSynthetics and 299 LFW faces (their hair labels; the landmark tier as the
parser): hair IoU 0.531 -> 0.541 and 0.515 -> 0.539; clothing marked hair: 0.4% (FaceSynthetics).
(Not mediapipe's selfie segmentation minus the face: a second model per frame, and its
"person" includes the clothes, which are exactly what must not be recoloured.)
Dark hair is lifted toward the target's lightness (colour.recolour with l_pull = 1), so
black hair takes the new colour instead of staying black with a hue shift.
"""
import cv2
import numpy as np

from effects.colour import clip, colour_lab, recolour, rgb_to_lab
from effects.masks import FaceRegion, feather, smoothstep
from effects.spec import EffectParams
from core.align import CROP_SIZE, TEMPLATE
from core.classes import BACKGROUND, HAIR, SKIN
from core.regions import bounds

GROW_SIDE, GROW_DOWN = 0.08, 0.9  # extension of the box: fraction of its width per side, of its height below
SIDE_REACH = 2.6                  # hair grows at most this many half face widths from the face's axis
HAIR_MAX_DIST = 2.5               # Mahalanobis radius of the hair colour model
OTHER_CLUSTERS = 3                # k-means clusters of the crop's background/clothes colours
MIN_SAMPLES = 60
DENSITY_LO, DENSITY_HI = 0.45, 0.75  # share of hair-coloured pixels around a pixel that counts as a hair mass
WORK_EYE_DIST = 16.0              # the growth works at about this many pixels between the eyes
FAINT_LO, FAINT_HI = 0.15, 0.6     # whole-head hair: probabilities under 0.15 unpainted, from 0.6 up painted as they are
EDGE_DIST = 3.5                   # on the mask's soft edge, pixels this far from the hair colour start to drop out
TEXTURE_LO, TEXTURE_HI = 0.3, 0.55  # local L contrast (of the labelled hair's median) that counts as strands
EYE_V, MOUTH_V, CHIN_V = TEMPLATE[0, 1], TEMPLATE[2, 1], 0.8  # crop heights (fractions) of eyes, mouth, chin
SEED_V = (EYE_V + MOUTH_V) / 2
HALF_FACE = (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * CROP_SIZE * 1.1  # crop pixels, eye distance x 1.1


def extended_box(box: tuple, frame_hw: tuple) -> tuple:
    x0, y0, x1, y1 = box
    side = int(GROW_SIDE * (x1 - x0))
    return max(x0 - side, 0), y0, min(x1 + side, frame_hw[1]), min(y1 + int(GROW_DOWN * (y1 - y0)), frame_hw[0])


def apply(region: FaceRegion, p: EffectParams) -> None:
    s = region.eye_dist
    mask = hair_mask(region)
    sub = bounds(mask, 0.02, pad=1)
    if sub is None:
        return
    region.ensure_lab(sub[0].stop)
    weight = mask[sub] * p.strength
    recolour(region.lab[sub], weight, colour_lab(p.colour), l_pull=1.0, sigma=0.05 * s)
    region.touched[sub] |= weight > (0.5 / 255.0)


def hair_mask(region: FaceRegion) -> np.ndarray:
    """Soft hair mask (h, w) over the whole region: the parser's hair probability inside the
    crop, the grown mask outside it; on the soft edge only what has the hair's colour."""
    h, w = region.lab.shape[:2]
    ys, xs = region.box_slice
    mask = np.zeros((h, w), np.float32)
    mask[ys, xs] = region.probs[HAIR]
    if region.whole_hair:
        # the hair network's mask needs no colour gate (it cost 5 of the effect's 8 ms on 640x480)
        # and no Lab here (apply converts the rows it paints), but its faint probabilities (0.1-0.25
        # on a plain backdrop above or beside the head) would tint the wall: they fade out; from
        # FAINT_HI up the probability is the weight
        return feather(mask * smoothstep(mask, FAINT_LO, FAINT_HI), 0.01 * region.eye_dist)
    grown = _grow(region, mask)
    if grown is not None:
        mask = np.maximum(mask, grown)
    rows = np.flatnonzero((mask > 0.01).any(1))
    region.ensure_lab(int(rows[-1]) + 1 if rows.size else 0)  # full-size Lab only as far as the hair goes
    return feather(_colour_gate(region, mask), 0.01 * region.eye_dist)


def _colour_gate(region: FaceRegion, mask: np.ndarray) -> np.ndarray:
    """Keep the mask only where the colour agrees. Everywhere: a pixel closer to the skin's
    colour model than to the hair on the crown (above the eyes, the part a parser is surest
    of) is dropped, so an ear or a strip of forehead called hair is not painted. On the soft
    edge: pixels far from the hair colour drop out (no halo on the wall next to the hair).
    Decided at half size (a smooth factor), applied at full size."""
    sub = bounds(mask, 0.01)
    if sub is None:
        return mask
    h, w = sub[0].stop - sub[0].start, sub[1].stop - sub[1].start
    small = ((w + 1) // 2, (h + 1) // 2)
    lab = cv2.resize(region.lab[sub], small, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask[sub], small, interpolation=cv2.INTER_AREA)
    hair = lab[m > 0.95]
    if len(hair) < MIN_SAMPLES:
        return mask
    keep = 1.0 - smoothstep(_mahalanobis(lab, hair), EDGE_DIST, EDGE_DIST + 2.0)
    keep[m >= 0.95] = 1.0
    _, _, v = _crop_coords(region, (h, w), step=2, offset=(sub[1].start, sub[0].start))
    crown = lab[(m > 0.95) & (v[:small[1], :small[0]] < EYE_V * CROP_SIZE)]
    skin = region.box_lab()[::3, ::3][region.probs[SKIN][::3, ::3] > 0.9]
    if len(skin) >= MIN_SAMPLES:
        d_hair = _mahalanobis(lab, crown if len(crown) >= MIN_SAMPLES else hair)
        keep *= smoothstep(_mahalanobis(lab, skin) - d_hair, -0.5, 1.0)
    out = mask.copy()
    out[sub] *= cv2.resize(keep.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def _crop_coords(region: FaceRegion, shape: tuple, step: int = 1, offset=(0, 0)):
    """Aligned-crop coordinates (u, v) of the region's pixels (every `step`-th, from `offset`
    (x, y) in the region) and whether they fall inside the crop."""
    m = np.asarray(region.matrix, np.float32)
    xs = np.arange(0, shape[1], step, dtype=np.float32) + region.origin[0] + offset[0] + (step - 1) / 2
    ys = np.arange(0, shape[0], step, dtype=np.float32) + region.origin[1] + offset[1] + (step - 1) / 2
    u = m[0, 0] * xs[None, :] + m[0, 1] * ys[:, None] + m[0, 2]
    v = m[1, 0] * xs[None, :] + m[1, 1] * ys[:, None] + m[1, 2]
    inside = (u >= 1) & (u < CROP_SIZE - 1) & (v >= 1) & (v < CROP_SIZE - 1)
    return inside, u, v


def _grow(region: FaceRegion, prob: np.ndarray):
    """The hair mask beyond the parser's reach, at a scale of about WORK_EYE_DIST pixels
    between the eyes (2x or more smaller than the frame); None when nothing grows."""
    h, w = prob.shape
    f = max(2, int(round(region.eye_dist / WORK_EYE_DIST)))
    hh, ww = h // f, w // f
    inside2, u2, v2 = _crop_coords(region, (hh * f, ww * f), step=f)
    if inside2.all() or min(hh, ww) < 4:
        return None
    # from the RGB when there is one: the rows below the box have no Lab yet, and small is cheap
    source = region.rgb if region.rgb is not None else region.lab
    lab2 = cv2.resize(source[:hh * f, :ww * f], (ww, hh), interpolation=cv2.INTER_AREA)
    lab2 = rgb_to_lab(lab2) if region.rgb is not None else lab2
    pick = (slice(f // 2, hh * f, f), slice(f // 2, ww * f, f))   # the full-size pixel under each small one
    hair2 = prob[pick]
    skin2, back2 = _pick_from_box(region, (SKIN, BACKGROUND), f, (hh, ww))

    likely, coloured, skin_like = _hair_likelihood(lab2, hair2 > 0.7, skin2 > 0.7, back2 > 0.9, inside2, u2, v2)
    if likely is None:
        return None
    # long hair falls: outside the crop it may grow below the eyes and within SIDE_REACH of the
    # face's axis, but not in the middle below the chin (the chest: clothes are common there,
    # hair rare); inside the crop the parser has the last word, except for its background below
    # the mouth, where a crop-sized parser often stops long hair
    beside = np.abs(u2 - 0.5 * CROP_SIZE)
    below_mouth = v2 > MOUTH_V * CROP_SIZE
    likely[_chest(u2, v2) | (v2 < EYE_V * CROP_SIZE) | (beside > SIDE_REACH * HALF_FACE)
           | (inside2 & (~below_mouth | (back2 < 0.9)))] = 0.0

    # seeds: the parser's hair hanging beside the face below the nose line. Long hair beyond the
    # crop continues such hair; a cap, a fringe or a moustache gives no seed.
    seed = (hair2 > 0.5) & inside2 & (beside > 0.8 * HALF_FACE) & (v2 > SEED_V * CROP_SIZE) & ~skin_like
    if not seed.any():
        return None
    _, comp = cv2.connectedComponents(((likely > 0.3) | seed).astype(np.uint8), connectivity=8)
    linked = np.unique(comp[seed])
    keep = np.isin(comp, linked[linked > 0])
    # hair is a dense mass of hair-coloured pixels; a tweed or a print matches only in specks
    # (after the connectivity, so that sparse strands still link the hair below to the seeds)
    likely *= smoothstep(cv2.blur(coloured, (7, 7)), DENSITY_LO, DENSITY_HI)
    # a closing fills the small gaps the texture test leaves in flat patches of hair
    grown = cv2.morphologyEx((likely * keep).astype(np.float32), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    out = np.zeros((h, w), np.float32)
    out[:hh * f, :ww * f] = cv2.resize(grown, (ww * f, hh * f), interpolation=cv2.INTER_LINEAR)
    return out


def _hair_likelihood(lab2, hair, skin, back, inside, u2, v2):
    """0..1 per small pixel: how much it looks like the labelled hair (colour and strands); the
    map of hair-coloured pixels; the map of pixels closer to the skin's colour than the hair's.
    (None, None, None) when the crop holds too little hair."""
    hair_px = lab2[hair & inside]
    if len(hair_px) < MIN_SAMPLES:
        return None, None, None
    d_hair = _mahalanobis(lab2, hair_px)
    # the other colours near the hair: the skin, the crop's background (minus its hair-coloured
    # pixels below the mouth: mostly hair the parser missed) and the chest below the chin (clothes)
    d_other = np.full(lab2.shape[:2], np.inf, np.float32)
    skin_px = lab2[skin & inside]
    if len(skin_px) >= MIN_SAMPLES:
        d_other = np.minimum(d_other, _mahalanobis(lab2, skin_px))
    skin_like = d_other < d_hair
    low = v2 > MOUTH_V * CROP_SIZE
    other_px = np.concatenate([lab2[back & inside & ~(low & (d_hair < 0.7 * HAIR_MAX_DIST))],
                               lab2[_chest(u2, v2) & ~inside]])
    for members in _clusters(other_px, OTHER_CLUSTERS):
        d_other = np.minimum(d_other, _mahalanobis(lab2, members))
    likely = clip(HAIR_MAX_DIST - d_hair, 0.0, 1.0) * (d_hair < d_other)
    # hair has strands: a flat dark garment of the hair's colour has almost no local contrast
    coloured = (likely > 0.5).astype(np.float32)
    texture = _local_std(lab2[..., 0], coloured, 11)
    ref = float(np.median(texture[hair & inside]))
    likely *= smoothstep(texture, TEXTURE_LO * ref, TEXTURE_HI * ref)
    return likely, coloured, skin_like


def _chest(u2, v2) -> np.ndarray:
    """The middle below the chin, in crop coordinates: neck and clothes, rarely hair."""
    return (v2 > CHIN_V * CROP_SIZE) & (np.abs(u2 - 0.5 * CROP_SIZE) < 0.5 * HALF_FACE)


def _pick_from_box(region: FaceRegion, classes, f: int, shape: tuple) -> list:
    """The class probabilities under each small pixel (0 outside the parse box)."""
    ys, xs = region.box_slice
    rows = np.arange(shape[0]) * f + f // 2 - ys.start
    cols = np.arange(shape[1]) * f + f // 2 - xs.start
    r_ok = (rows >= 0) & (rows < ys.stop - ys.start)
    c_ok = (cols >= 0) & (cols < xs.stop - xs.start)
    out = []
    for c in classes:
        plane = np.zeros(shape, np.float32)
        plane[np.ix_(r_ok, c_ok)] = region.probs[c][np.ix_(rows[r_ok], cols[c_ok])]
        out.append(plane)
    return out


def _clusters(samples: np.ndarray, k: int) -> list:
    """k-means groups (each an (n, 3) array with n >= 10) of up to 2000 of the samples."""
    if len(samples) < MIN_SAMPLES * k:
        return [samples] if len(samples) >= MIN_SAMPLES else []
    samples = np.ascontiguousarray(samples[:: max(len(samples) // 2000, 1)])
    # deterministic start (no random seeding): k bins of lightness
    start = np.argsort(np.argsort(samples[:, 0])).astype(np.int32) * k // len(samples)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 8, 1.0)
    _, labels, _ = cv2.kmeans(samples, k, start[:, None].copy(), criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    groups = [samples[labels.ravel() == i] for i in range(k)]
    return [g for g in groups if len(g) >= 10]


def _local_std(image: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Standard deviation of `image` over the k x k window's pixels where weight is 1: the
    contrast among hair-coloured pixels only, so the edge between a dark garment and the
    wall does not pass for strands."""
    n = cv2.blur(weight, (k, k)) + 1e-3
    mean = cv2.blur(image * weight, (k, k)) / n
    return np.sqrt(np.maximum(cv2.blur(image * image * weight, (k, k)) / n - mean * mean, 0.0))


def _mahalanobis(lab: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Distance of every pixel of lab (h, w, 3) to the Gaussian colour model of samples (N, 3).
    Plane-wise arithmetic on the 6 terms of the quadratic form: no (N, 3) copies, no BLAS."""
    samples = samples[:: max(len(samples) // 3000, 1)].astype(np.float64)
    mean = samples.mean(0)
    centred = samples - mean
    # einsum, not np.cov: np.cov's BLAS call costs ~1 ms when the cores are busy
    cov = np.einsum("ni,nj->ij", centred, centred) / max(len(samples) - 1, 1) + np.eye(3) * 4.0
    prec = _inverse3(cov)
    x = [lab[..., i] - np.float32(mean[i]) for i in range(3)]
    d2 = np.float32(prec[0, 0]) * x[0] * x[0]
    d2 += np.float32(prec[1, 1]) * x[1] * x[1]
    d2 += np.float32(prec[2, 2]) * x[2] * x[2]
    d2 += np.float32(2 * prec[0, 1]) * x[0] * x[1]
    d2 += np.float32(2 * prec[0, 2]) * x[0] * x[2]
    d2 += np.float32(2 * prec[1, 2]) * x[1] * x[2]
    return np.sqrt(np.maximum(d2, 0.0))


def _inverse3(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix by its adjugate (np.linalg pays a LAPACK call's overhead)."""
    adj = np.array([[m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1], m[0, 2] * m[2, 1] - m[0, 1] * m[2, 2],
                     m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]],
                    [m[1, 2] * m[2, 0] - m[1, 0] * m[2, 2], m[0, 0] * m[2, 2] - m[0, 2] * m[2, 0],
                     m[0, 2] * m[1, 0] - m[0, 0] * m[1, 2]],
                    [m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0], m[0, 1] * m[2, 0] - m[0, 0] * m[2, 1],
                     m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]]])
    return adj / (m[0, 0] * adj[0, 0] + m[0, 1] * adj[1, 0] + m[0, 2] * adj[2, 0])

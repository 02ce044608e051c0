"""Whole-head hair: MediaPipe's hair network (models.parsers.hair_net, passed in) on a head-and-shoulders
crop of each face, fused with the parser's labels and warped into the frame.

The parsers see only the aligned 256x256 crop; hair below the chin and beside the head lies
outside it. Per face, a square crop with the face's alignment (same rotation), centred
`DOWN` eye distances below the eyes and `SIDE` eye distances wide, goes through the hair
network at `INPUT` pixels; in video its 4th channel gets the previous frame's hair moved to
the current crop by the change of the face's alignment (0 for stills and new faces).
The choice of crop and input size and the fusion rule were measured on LFW validation images
and the hair dev set (tests/fixtures/hair_dev): see benchmarks/hair_whole.py and README. The
learned rule (fuse_learned) is fitted on LFW's training people by tools/fit_hair_fusion.py.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from core import align
from core.classes import BACKGROUND, HAIR, NUM_CLASSES, SKIN
from core.regions import points_bounds
# the learned per-pixel hair share, one per tier that has been fitted (python -m tools.fit_hair_fusion);
# tiers without one keep the "mix" rule
from models.perception.hair_fusion import EYE, Fusion, load_fusion

EVERY = 2            # video: the network on every 2nd frame (its 15 ms would otherwise slow the stream)
INPUT = 384          # hair network input side (a multiple of 64: exact to the tflite graph)
# stills (no frame budget): the input grows with the face's head crop up to this side, so a large
# face's hair is not shrunk as much. Measured with the learned fusion (README, Hair; `combined`,
# caps 448 / 512 / 576 / 640 / 768): FaceSynthetics val hair 0.813 / 0.818 / 0.819 / 0.830 / 0.830,
# the hair dev set enlarged 1.7x (faces as large as the issues' 512-pixel portraits) 0.950 / 0.954 /
# 0.956 / 0.956 / 0.940, its bald heads' false hair 0.003 / 0.031 / 0.007 / 0.227 / 0.72% of the
# image; LFW unchanged (small faces: INPUT). 576: the largest that leaves bald heads bare
STILL_MAX_INPUT = 576
SIDE = 7.0           # crop side, in eye distances
# crop centre below the eye centre, in eye distances. 1.5 (chosen on LFW's tight 250-pixel crops)
# reached only 2 eye distances above the eyes (the aligned crop 2.4): 8% of FaceSynthetics' hair
# and 5% of LFW's lay above it, never seen. Measured with the learned fusion (README, Hair;
# `combined`, 1.5 -> 1.0): LFW val hair 0.851 -> 0.856, FaceSynthetics val 0.819 -> 0.831, the
# hair dev set 0.952 / 0.956 (enlarged) unchanged, LFW's empty masks 2.57 -> 2.68% false hair
DOWN = 1.0
PARSER_WEIGHT = 0.5  # "mix": weight of the parser's own hair share against the hair network's
TIER_WEIGHTS = {"landmarks": 0.25}   # measured per tier (README, Hair): the landmark tier's hair is weaker
RULE = "mix"
SCALP = True         # skin-coloured "hair" that the hair network does not call hair becomes skin
FRINGE = 0.9         # hair network's probability above which its hair takes the parser's skin above the brows
BOX_HAIR = 0.1       # the frame box reaches as far as the network's hair is above this
# tiers whose hair, skin and background are another tier's: `combined` blends only brows, eyes
# and lips with the landmark tier's; the rest (what the fusion reads) is RNN-G's, rescaled
FUSION_OF = {"combined": "rnng"}


@dataclass
class HeadHair:
    """One face's hair probability over its head-and-shoulders crop."""
    matrix: np.ndarray    # (2, 3) frame -> head crop
    prob: np.ndarray      # (INPUT, INPUT) float32 hair probability


def head_matrix(face_matrix: np.ndarray, size: int = INPUT, side: float = SIDE, down: float = DOWN) -> np.ndarray:
    """2x3 frame -> head crop of side `size`, from the face's alignment to the aligned crop."""
    cx, cy = 0.5 * align.CROP_SIZE, align.TEMPLATE[0, 1] * align.CROP_SIZE + down * EYE
    s = size / (side * EYE)
    crop_to_head = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy], [0, 0, 1]])
    return (crop_to_head @ np.vstack([face_matrix, [0, 0, 1]]))[:2]


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 matrix of "apply b, then a"."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


class HairStage:
    """Runs the hair network on every face's head crop, one batch per frame. With
    `video=True` it remembers each face id's last hair (for the network's 4th channel). The head
    crop follows the face's (smoothed) alignment, so the last hair plane, taken as it is into
    the new crop, is the last frame's hair moved by the change of the face's alignment."""

    def __init__(self, net=None, size: int = INPUT, side: float = SIDE, down: float = DOWN, video: bool = False,
                 tier: str | None = None, every: int = 1, load=None):
        # models.parsers.hair_net.load_hair_net()'s network (ONNX Runtime, or torch), or `load()`
        # gives it at the first frame that needs it (stream.assemble: the shipped one)
        self.net, self.load = net, load
        self.size, self.side, self.down, self.video = size, side, down, video
        # the largest input a face's head crop may get (stills: STILL_MAX_INPUT; video: `size`)
        self.max_size = size if video else max(size, STILL_MAX_INPUT)
        # in video, run the network on every `every`-th frame; in between, the last hair is
        # moved with the face (its alignment change), as the network's own 4th channel would be
        self.every = every if video else 1
        self._skipped = 0
        self.parser_weight = TIER_WEIGHTS.get(tier, PARSER_WEIGHT)   # for fuse()
        self.fusion = load_fusion(FUSION_OF.get(tier, tier))   # for fuse(): the tier's learned rule, or None ("mix")
        self._prev: dict[int, HeadHair] = {}

    def reset(self):
        """Forget the last hair (frames went by without the stage: it no longer fits)."""
        self._prev = {}

    def __call__(self, image: np.ndarray, faces: list, person: np.ndarray | None = None) -> dict[int, HeadHair]:
        """{face id: HeadHair} for the faces of an RGB frame. person: the frame's person mask
        (learned tiers), which the hair must lie inside. Stills (video=False) average the
        network's hair on the crop and on its mirror image (measured: README, Hair); video
        runs it once, to keep the stage's time."""
        if self.net is None:
            self.net = self.load()
        if not faces:
            self._prev.clear()
            return {}
        sizes = [self.input_size(f.matrix) for f in faces]
        mats = [head_matrix(f.matrix, s, self.side, self.down) for f, s in zip(faces, sizes)]
        if self._skipped < self.every - 1 and all(f.id in self._prev for f in faces):
            self._skipped += 1
            self._prev = {f.id: HeadHair(m, self._prev[f.id].prob) for f, m in zip(faces, mats)}
            return self._prev
        probs = [None] * len(faces)
        for size in set(sizes):   # one batch per input size (video: always one)
            idx = [i for i, s in enumerate(sizes) if s == size]
            for i, p in zip(idx, self._run(image, [faces[i] for i in idx], [mats[i] for i in idx], size)):
                probs[i] = p
        if person is not None:
            probs = [p * inside_person(person, m, p.shape[0]) for p, m in zip(probs, mats)]
        out = {f.id: HeadHair(m, p) for f, m, p in zip(faces, mats, probs)}
        self._skipped = 0
        if self.video:
            self._prev = out
        return out

    def input_size(self, face_matrix: np.ndarray) -> int:
        """The network's input side for a face: its head crop's side in frame pixels, rounded up
        to a multiple of 64, between `size` and `max_size` (a small face's crop is enlarged to
        `size`; a large one is shrunk only beyond `max_size`)."""
        if self.max_size <= self.size:
            return self.size
        side = self.side * EYE / align.crop_per_frame(face_matrix)
        return int(min(max(-(-side // 64) * 64, self.size), self.max_size))

    def _run(self, image, faces, mats, size) -> np.ndarray:
        """(N, size, size) hair probability of the faces' head crops (stills: the mean of the crop
        and its mirror image)."""
        x = np.zeros((len(faces), 4, size, size), np.float32)
        for i, (f, m) in enumerate(zip(faces, mats)):
            crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            x[i, :3] = crop.transpose(2, 0, 1) * np.float32(1 / 255)
            prev = self._prev.get(f.id) if self.video else None
            if prev is not None:   # see the class docstring: moved with the face by construction
                x[i, 3] = prev.prob
        if self.video:
            return self.net.hair_probability(x)
        both = self.net.hair_probability(np.concatenate([x, x[..., ::-1]]))
        return (both[:len(faces)] + both[len(faces):, :, ::-1]) * np.float32(0.5)


def inside_person(person: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """How far each head-crop pixel is inside the person (the frame's person mask): 1 from a
    person probability of 0.5 up, falling to 0 at 0. Hair the network finds on a dark backdrop
    beside the head lies outside the person."""
    # nearest neighbour: the selfie mask is smooth at this scale, and it halves the warp (0.1 ms)
    inside = cv2.warpAffine(person, np.asarray(matrix, np.float64), (size, size), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_REPLICATE)
    return np.minimum(inside * np.float32(2), np.float32(1))


def hair_in_crop(hair: HeadHair, face_matrix: np.ndarray, size: int = align.CROP_SIZE) -> np.ndarray:
    """The hair probability resampled onto the face's aligned crop (size x size)."""
    crop_to_head = compose(hair.matrix, align.invert(align.scaled(face_matrix, size / align.CROP_SIZE)))
    return cv2.warpAffine(hair.prob, crop_to_head, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def fuse(probs: np.ndarray, hair: np.ndarray, parser_weight: float = PARSER_WEIGHT, rule: str = RULE,
         fringe: float = FRINGE, crop: np.ndarray | None = None, fusion: "Fusion | None" = None,
         person: np.ndarray | None = None) -> None:
    """Per pixel of the aligned crop, in place: the face parts (skin, brows, eyes, nose, lips,
    mouth) stay the parser's; what the parser leaves to hair or background is split between
    them by the hair network's probability h and the parser's own hair share q:
    with `fusion` (the tier's fitted rule) and the crop: fuse_learned; else
    "mix": w q + (1 - w) h;  "product": h q / (h q + (1 - h)(1 - q)) (both must agree).
    Above the brows, where the hair network is surer than `fringe`, its hair also takes the
    parser's skin (a fringe over the forehead that a parser took for skin); 0 turns that off.
    With the crop (S, S, 3 RGB): hair that has the face's skin colour where the hair network
    says "not hair" becomes skin (a bald or shaved scalp that a parser took for hair).
    probs (11, S, S) from the parser; hair (S, S) from hair_in_crop."""
    if fusion is not None and crop is not None:
        return fuse_learned(probs, hair, crop, fusion, person)
    if fringe:
        take_fringe(probs, hair, fringe)
    rest = probs[BACKGROUND] + probs[HAIR]
    q = probs[HAIR] / np.maximum(rest, 1e-6)
    if rule == "product":
        both = hair * q
        share = both / np.maximum(both + (1 - hair) * (1 - q), 1e-6)
    else:
        share = parser_weight * q + (1 - parser_weight) * hair
    probs[HAIR] = rest * share
    probs[BACKGROUND] = rest - probs[HAIR]
    if crop is not None and SCALP:
        bare = skin_coloured(crop, probs[SKIN]) * np.clip((0.5 - hair) * 4, 0, 1)
        taken = probs[HAIR] * bare
        probs[HAIR] -= taken
        probs[SKIN] += taken


def take_fringe(probs: np.ndarray, hair: np.ndarray, fringe: float = FRINGE) -> None:
    """Above the brows, the parser's skin becomes hair where the hair network is surer than
    `fringe` (in place)."""
    size = probs.shape[-1]
    band = slice(0, int(size * (align.TEMPLATE[0, 1] - 0.35 * (align.TEMPLATE[1, 0] - align.TEMPLATE[0, 0]))))
    taken = probs[SKIN, band] * (hair[band] > fringe)
    probs[SKIN, band] -= taken
    probs[HAIR, band] += taken


def fuse_learned(probs: np.ndarray, hair: np.ndarray, crop: np.ndarray, fusion: "Fusion",
                 person: np.ndarray | None = None) -> None:
    """The learned rule, in place: what the parser gives to hair, skin or background (mass m)
    becomes hair in the share fusion.share(features) says; the rest goes back to background and
    skin in the parser's proportions, the parser's own hair counting as skin where it has the
    face's skin colour (a scalp) and as background elsewhere. Brows, eyes, nose and mouth stay
    the parser's. person (S, S): the person mask in the crop (learned tiers), else None."""
    mass = probs[BACKGROUND] + probs[HAIR] + probs[SKIN]
    inv = 1 / np.maximum(mass, 1e-6)
    skin_like = skin_coloured(crop, probs[SKIN])
    share = fusion.share(hair, probs[HAIR] * inv, probs[SKIN] * inv, skin_like, person)
    if SCALP:   # the scalp rule on top: LFW has too few bald dark-skinned heads to teach it (README, Hair)
        share *= 1 - skin_like * np.clip((0.5 - hair) * 4, 0, 1)
    to_skin = probs[SKIN] + probs[HAIR] * skin_like
    to_skin_share = to_skin * inv
    probs[HAIR] = mass * share
    probs[SKIN] = (mass - probs[HAIR]) * to_skin_share
    probs[BACKGROUND] = mass - probs[HAIR] - probs[SKIN]


def skin_coloured(crop: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """0..1 per pixel of the crop: how close its colour is to the face's skin (a Gaussian model
    in Lab of the pixels the parser is sure are skin; Mahalanobis distance 2 -> 1, 3 -> 0).
    Decided at half size; zeros when the parser is sure of too little skin."""
    size = crop.shape[0]
    half = cv2.resize(crop, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(half, cv2.COLOR_RGB2LAB).astype(np.float32)
    sure = cv2.resize(skin, (size // 2, size // 2), interpolation=cv2.INTER_AREA) > 0.9
    samples = lab[sure][::4].astype(np.float64)
    if len(samples) < 100:
        return np.zeros(crop.shape[:2], np.float32)
    centred = samples - samples.mean(0)
    prec = np.linalg.inv(centred.T @ centred / len(samples) + np.eye(3))
    x = lab - samples.mean(0).astype(np.float32)
    d = np.sqrt(np.maximum(np.einsum("hwi,ij,hwj->hw", x, prec.astype(np.float32), x), 0))
    near = np.clip(3.0 - d, 0, 1).astype(np.float32)
    return cv2.resize(near, (size, size), interpolation=cv2.INTER_LINEAR)


def to_frame(probs: np.ndarray, face_matrix: np.ndarray, hair: HeadHair, frame_hw: tuple, classes=None):
    """Frame box and (11, h, w) probabilities covering the aligned crop and the hair around it:
    the (fused) parse where the aligned crop reaches, hair or background from the hair network
    beyond it. The box is the aligned crop's joined with the bounds of the hair network's hair
    (probability over BOX_HAIR) in the head crop: not the whole head crop, whose 11 planes would
    cost warp, labels and effects time for background only. classes: the only planes someone
    reads (None: all); the others stay 0 (the hair effect alone: 3 planes warped, not 11)."""
    if classes is not None:
        classes = frozenset(classes) | {BACKGROUND, HAIR}
    inner = align.crop_box_in_frame(face_matrix, frame_hw, probs.shape[-1])
    hair_box = _hair_box(hair, frame_hw)
    if hair_box is None:
        return align.probs_to_frame(probs, face_matrix, frame_hw, classes)
    box = x0, y0, x1, y1 = (min(inner[0], hair_box[0]), min(inner[1], hair_box[1]),
                            max(inner[2], hair_box[2]), max(inner[3], hair_box[3]))
    outer = _warp_into(hair.prob, hair.matrix, box)   # the aligned crop may reach beyond the head crop
    # zero pages until written: the planes nobody reads (`classes`) cost no time
    out = np.zeros((NUM_CLASSES, y1 - y0, x1 - x0), np.float32)
    out[BACKGROUND] = 1.0 - outer
    out[HAIR] = outer
    ix0, iy0, ix1, iy1 = inner
    if ix1 > ix0 and iy1 > iy0:
        # probs_to_frame gives cover * parse + (1 - cover) * background, cover = how much of a
        # pixel the aligned crop reaches: the uncovered share goes to the hair network instead
        window = out[:, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        align.probs_to_frame(probs, face_matrix, frame_hw, classes, out=window)   # warped in place
        uncovered = 1.0 - _warp_into(np.ones((align.CROP_SIZE,) * 2, np.float32), face_matrix, inner)
        moved = uncovered * outer[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        window[BACKGROUND] -= moved
        window[HAIR] += moved
    return box, out


def _hair_box(hair: HeadHair, frame_hw: tuple) -> tuple | None:
    """Frame box (x0, y0, x1, y1) holding every frame pixel where the network's hair, warped
    into the frame, exceeds BOX_HAIR (None: nowhere). Found from the outer outline of that hair
    in the head crop, mapped to the frame (0.1 ms), instead of warping the whole head crop
    (1.3-1.5 ms of a close-up). A frame pixel's interpolated value can exceed BOX_HAIR only
    within one head crop pixel of a head pixel that does: the margin is one head pixel in frame
    pixels, plus one."""
    outlines, _ = cv2.findContours((hair.prob > BOX_HAIR).view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not outlines:
        return None
    outline = np.concatenate(outlines).reshape(-1, 2).astype(np.float64)
    in_frame = align.transform_points(outline, align.invert(hair.matrix))
    found = points_bounds(in_frame, 1.0 / align.crop_per_frame(hair.matrix) + 1.0, frame_hw)
    if found is None:
        return None
    ys, xs = found
    return xs.start, ys.start, xs.stop, ys.stop


def _warp_into(plane: np.ndarray, matrix: np.ndarray, box: tuple) -> np.ndarray:
    """A plane given in the coordinates `matrix` maps frame pixels to, sampled over a frame box
    (0 outside the plane)."""
    x0, y0, x1, y1 = box
    m = compose(np.asarray(matrix, np.float64), np.array([[1, 0, x0], [0, 1, y0]], np.float64))
    return cv2.warpAffine(plane, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def keep_own_hair(parses: list) -> None:
    """With several faces, each face keeps hair only where its head is the nearest (distance to
    the eye centre in units of each face's eye distance), so the hair of a person beside it,
    which its head crop also sees, stays that person's. In place on FaceParse.probs."""
    if len(parses) < 2:
        return
    centres = [(p.face.five[0] + p.face.five[1]) / 2 for p in parses]
    scales = [max(float(np.linalg.norm(p.face.five[1] - p.face.five[0])), 1.0) for p in parses]
    for i, p in enumerate(parses):
        x0, y0, x1, y1 = p.box
        if x1 <= x0 or y1 <= y0 or not getattr(p, "whole_hair", False):   # crop-only hair stays its own
            continue
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]

        def dist(j):
            return np.hypot(xs - centres[j][0], ys - centres[j][1]) / scales[j]
        own = dist(i)
        other = np.min([dist(j) for j in range(len(parses)) if j != i], axis=0)
        foreign = (other < own).astype(np.float32)
        moved = p.probs[HAIR] * foreign
        p.probs[HAIR] -= moved
        p.probs[BACKGROUND] += moved

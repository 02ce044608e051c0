"""Training augmentation on one numpy sample (the dict of models.data.dataset.load_sample):
    image uint8 (S,S,3) RGB, label uint8 (S,S) 255 = ignore, five (5,2), mesh (478,2) float32
    crop pixels (NaN where unknown).  Returns a new dict of the same kind; the input is not
    changed. FaceParsingDataset(augment=train_augment(S)) calls it per sample before batching.

Geometry follows STN-iCNN (Yin et al., "End-to-End Face Parsing via Interlinked Convolutional
Neural Networks", "Data Augmentation"): random rotation within +-15
degrees, shift up to 0.2 of the size, scale, Gaussian noise (image only), each operation
applied or not at random so a sample gets 0 to 4 of them. The paper's scale range [0.2, 1.2]
is for unaligned Helen images; our crops are already aligned by five points, so the default
range only covers alignment error (0.8-1.2). Points move with the same affine as the pixels.

Beyond the paper: a horizontal flip that swaps left/right classes (core.classes.flip_labels)
and mirrors the five points (eyes and mouth corners swap) and the face mesh (MESH_MIRROR);
colour jitter; synthetic occluders that overwrite the label with the occluder's class:
    hand       skin-coloured palm and fingers -> background (0): not part of the face, and the
               effects must not paint makeup on a hand that covers the mouth
    hair       strands of the sample's own hair colour across the forehead/eyes -> hair (10)
    glasses    dark frames round the eyes and a bridge -> ignore (255), as FaceSynthetics
               glasses (what lies under a frame is unknown); tinted lenses keep the label below
Pixels the warp brings in from outside the crop are black with label 255 (unknown).
"""
import os

import cv2
import numpy as np

from core.classes import BACKGROUND, HAIR, IGNORE, SKIN, flip_labels
from core.mesh import FIVE_MIRROR, MESH_MIRROR, mirror_points


def flip_sample(s: dict) -> dict:
    """Horizontal flip of a sample: pixels, left/right classes, five points and mesh."""
    size = s["image"].shape[1]
    five = mirror_points(s["five"], FIVE_MIRROR, size)
    mesh = mirror_points(s["mesh"], MESH_MIRROR, size)
    return {**s, "image": np.ascontiguousarray(s["image"][:, ::-1]), "label": flip_labels(s["label"]),
            "five": five, "mesh": mesh}


def warp_sample(s: dict, matrix: np.ndarray) -> dict:
    """Apply a 2x3 affine (crop px -> crop px) to pixels (linear), labels (nearest) and points."""
    size = s["image"].shape[0]
    image = cv2.warpAffine(s["image"], matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    label = cv2.warpAffine(s["label"], matrix, (size, size), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
    move = lambda p: (p @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)  # NaN stays NaN
    return {**s, "image": image, "label": label, "five": move(s["five"]), "mesh": move(s["mesh"])}


def geometric_matrix(size: int, angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """Rotation and scale about the crop centre, then a shift in pixels."""
    c = (size - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle_deg, scale)
    m[:, 2] += shift
    return m


def colour_jitter(image: np.ndarray, rng, strength: float = 0.2) -> np.ndarray:
    """Brightness, contrast, saturation, a small hue shift; rarely grey or a slight blur."""
    img = image.astype(np.float32)
    img *= 1 + rng.uniform(-strength, strength)                                   # brightness
    mean = img.mean()
    img = (img - mean) * (1 + rng.uniform(-strength, strength)) + mean           # contrast
    grey = img.mean(2, keepdims=True)
    img = (img - grey) * (1 + rng.uniform(-strength, strength)) + grey           # saturation
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:                                                        # hue +-6 degrees
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(-3, 4))) % 180
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.05:                                                       # LFW has grey photos
        img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, 2)
    if rng.random() < 0.1:                                                        # webcam defocus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    return img


def _class_colour(s: dict, cls: int, default, rng) -> np.ndarray:
    pix = s["image"][s["label"] == cls]
    colour = pix.mean(0) if len(pix) > 50 else np.array(default, np.float64)
    return np.clip(colour * rng.uniform(0.85, 1.15), 0, 255)


def _paste(s: dict, mask: np.ndarray, colour, cls: int, rng, shade: bool = True) -> dict:
    """Paint `colour` where mask (soft edge, optional vertical shading); label -> `cls` there."""
    size = mask.shape[0]
    img = s["image"].astype(np.float32)
    tone = np.broadcast_to(np.asarray(colour, np.float32)[None, None], (size, 1, 3))
    if shade:
        tone = tone * np.linspace(1.1, 0.8, size, dtype=np.float32)[:, None, None] ** rng.choice([-1, 1])
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)[..., None]
    img = img * (1 - soft) + np.clip(tone, 0, 255) * soft
    label = s["label"].copy()
    label[mask] = cls
    return {**s, "image": img.astype(np.uint8), "label": label}


def _pt(p) -> tuple:
    return int(round(float(p[0]))), int(round(float(p[1])))


def occlude_hand(s: dict, rng) -> dict:
    """A palm with four fingers over the mouth, cheek or chin -> background."""
    size = s["image"].shape[0]
    five = np.nan_to_num(s["five"], nan=size / 2)
    centre = five[rng.choice([2, 3, 4])] + rng.normal(0, size * 0.05, 2)
    angle = rng.uniform(0, 360)
    r = size * rng.uniform(0.09, 0.14)
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, _pt(centre), (int(r), int(r * 1.2)), angle, 0, 360, 1, -1)
    for k in range(4):  # fingers fan out from the palm's top edge
        a = np.deg2rad(angle - 90 + (k - 1.5) * 18)
        direction = np.array([np.cos(a), np.sin(a)])
        cv2.line(mask, _pt(centre + direction * r * 0.8), _pt(centre + direction * r * 2.1), 1,
                 max(int(r * 0.35), 2))
    colour = _class_colour(s, SKIN, (200, 150, 120), rng)
    return _paste(s, mask.astype(bool), colour, BACKGROUND, rng)


def occlude_hair(s: dict, rng) -> dict:
    """A lock of thin curved strands falling over the forehead and an eye -> hair."""
    size = s["image"].shape[0]
    five = np.nan_to_num(s["five"], nan=size / 2)
    eye = five[rng.choice([0, 1])]
    top = np.array([eye[0] + rng.normal(0, size * 0.05), eye[1] - size * rng.uniform(0.15, 0.3)])
    mask = np.zeros((size, size), np.uint8)
    length = size * rng.uniform(0.2, 0.35)
    bend = rng.normal(0, size * 0.05)
    for _ in range(int(rng.integers(8, 25))):
        start = top + rng.normal(0, size * 0.02, 2)
        t = np.linspace(0, 1, 12)[:, None]
        pts = start + t * np.array([bend, length]) + (t ** 2) * np.array([rng.normal(0, size * 0.04), 0])
        cv2.polylines(mask, [np.round(pts).astype(np.int32)], False, 1, int(rng.integers(1, 4)))
    colour = _class_colour(s, HAIR, (60, 40, 30), rng)
    return _paste(s, mask.astype(bool), colour, HAIR, rng, shade=False)


def occlude_glasses(s: dict, rng) -> dict:
    """Dark frames round both eyes and a bridge -> ignore; sometimes tinted lenses (label kept)."""
    size = s["image"].shape[0]
    if np.isnan(s["five"][:2]).any():
        return s
    left, right = s["five"][0].astype(np.float64), s["five"][1].astype(np.float64)
    d = float(np.linalg.norm(right - left)) + 1e-6
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    axes = (max(int(d * rng.uniform(0.3, 0.42)), 2), max(int(d * rng.uniform(0.2, 0.3)), 2))
    thick = max(int(d * rng.uniform(0.04, 0.09)), 1)
    frame, lens = np.zeros((size, size), np.uint8), np.zeros((size, size), np.uint8)
    for eye in (left, right):
        cv2.ellipse(frame, _pt(eye), axes, angle, 0, 360, 1, thick)
        cv2.ellipse(lens, _pt(eye), axes, angle, 0, 360, 1, -1)
    step = (right - left) * (axes[0] / d)
    cv2.line(frame, _pt(left + step), _pt(right - step), 1, thick)
    out = s
    if rng.random() < 0.3:  # tinted lens: darker but see-through, the label below stays
        img = out["image"].astype(np.float32)
        img[lens.astype(bool)] *= rng.uniform(0.4, 0.8)
        out = {**out, "image": img.astype(np.uint8)}
    colour = rng.uniform(10, 90, 3) if rng.random() < 0.7 else rng.uniform(120, 230, 3)
    return _paste(out, frame.astype(bool), colour, IGNORE, rng, shade=False)


OCCLUDERS = {"hand": occlude_hand, "hair": occlude_hair, "glasses": occlude_glasses}


class TrainAugment:
    def __init__(self, size: int, p_flip: float = 0.5, p_op: float = 0.5, max_rotate: float = 15.0,
                 max_shift: float = 0.2, scale=(0.8, 1.2), max_noise: float = 8.0,
                 p_jitter: float = 0.8, p_occluder: float = 0.3, seed: int | None = None):
        self.size = size
        self.p_flip, self.p_op = p_flip, p_op
        self.max_rotate, self.max_shift, self.scale, self.max_noise = max_rotate, max_shift, scale, max_noise
        self.p_jitter, self.p_occluder = p_jitter, p_occluder
        self.seed = seed
        self._rng, self._pid = None, None

    def rng(self) -> np.random.Generator:
        # DataLoader workers are forked copies: reseed per process (torch seeds each worker)
        if self._rng is None or self._pid != os.getpid():
            if self.seed is not None:
                seed = self.seed
            else:
                import torch
                seed = torch.initial_seed() % 2 ** 32
            self._rng, self._pid = np.random.default_rng(seed), os.getpid()
        return self._rng

    def __call__(self, sample: dict) -> dict:
        rng = self.rng()
        s = dict(sample)
        size = s["image"].shape[0]
        if rng.random() < self.p_flip:
            s = flip_sample(s)
        angle = rng.uniform(-self.max_rotate, self.max_rotate) if rng.random() < self.p_op else 0.0
        scale = rng.uniform(*self.scale) if rng.random() < self.p_op else 1.0
        shift = rng.uniform(-self.max_shift, self.max_shift, 2) * size if rng.random() < self.p_op else np.zeros(2)
        if angle or scale != 1.0 or np.any(shift):
            s = warp_sample(s, geometric_matrix(size, angle, scale, shift))
        if rng.random() < self.p_jitter:
            s = {**s, "image": colour_jitter(s["image"], rng)}
        if rng.random() < self.p_occluder:
            s = OCCLUDERS[rng.choice(list(OCCLUDERS))](s, rng)
        if rng.random() < self.p_op:  # Gaussian noise: pixels only, never labels
            noise = rng.normal(0, rng.uniform(1, self.max_noise), s["image"].shape)
            s = {**s, "image": np.clip(s["image"] + noise, 0, 255).astype(np.uint8)}
        return s


def train_augment(size: int, **options) -> TrainAugment:
    """The training augmentation at input size `size` (options: see TrainAugment)."""
    return TrainAugment(size, **options)


def make_augment(config: dict, size: int) -> TrainAugment | None:
    """What the training loop and the recipes' extra datasets use: the training augmentation at
    `size`, or None when config["augment"] is off."""
    return train_augment(size) if config.get("augment", True) else None

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

# five points after a horizontal flip: left/right eye and mouth corners swap
FIVE_MIRROR = np.array([1, 0, 2, 4, 3])

# mediapipe face mesh (478 with iris): index of each point's mirror image. Found by matching
# the mean mesh of 80 frontal portraits with the mean mesh of their flipped copies (optimal
# assignment): an involution with 28 midline points fixed; 1316 of the 1322 tessellation
# edges map onto edges (the other 6 are asymmetries of the triangulation itself).
MESH_MIRROR = np.array([
    0, 1, 2, 248, 4, 5, 6, 249, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272,
    273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291,
    292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310,
    311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322, 323, 94, 324, 325, 326, 327, 328,
    329, 330, 331, 332, 333, 334, 335, 336, 337, 338, 339, 340, 341, 342, 343, 344, 345, 346, 347,
    348, 349, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 360, 361, 362, 363, 364, 365, 366,
    367, 368, 369, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 151, 152, 380, 381, 382, 383,
    384, 385, 386, 387, 388, 389, 390, 164, 391, 392, 393, 168, 394, 395, 396, 397, 398, 399, 175,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418,
    195, 419, 197, 420, 199, 200, 421, 422, 423, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433,
    434, 435, 436, 437, 438, 439, 440, 441, 442, 443, 444, 445, 446, 447, 448, 449, 450, 451, 452,
    453, 454, 455, 456, 457, 458, 459, 460, 461, 462, 463, 464, 465, 466, 467, 3, 7, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68,
    69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91,
    92, 93, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112,
    113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131,
    132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150,
    153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 165, 166, 167, 169, 170, 171, 172, 173,
    174, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193,
    194, 196, 198, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216,
    217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235,
    236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 473, 476, 475, 474, 477, 468, 471,
    470, 469, 472
])


def flip_sample(s: dict) -> dict:
    """Horizontal flip of a sample: pixels, left/right classes, five points and mesh."""
    size = s["image"].shape[1]
    five = s["five"][FIVE_MIRROR].copy()
    five[:, 0] = size - 1 - five[:, 0]
    mesh = s["mesh"][MESH_MIRROR].copy()
    mesh[:, 0] = size - 1 - mesh[:, 0]
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

"""The one label schema: the 11 LaPa/Helen classes, in the order of the parser interface.

"Left" and "right" mean the *image's* left and right (as in FaceSynthetics), so a
horizontal flip of the image swaps the left/right classes (see FLIP_PERMUTATION).
"""
import numpy as np

CLASS_NAMES = (
    "background", "skin", "left_brow", "right_brow", "left_eye", "right_eye",
    "nose", "upper_lip", "inner_mouth", "lower_lip", "hair",
)
NUM_CLASSES = len(CLASS_NAMES)
IGNORE = 255  # label value that counts nowhere (loss, metrics)

BACKGROUND, SKIN, LEFT_BROW, RIGHT_BROW, LEFT_EYE, RIGHT_EYE, NOSE, UPPER_LIP, INNER_MOUTH, LOWER_LIP, HAIR = range(11)

# class index after a horizontal flip of the image
FLIP_PERMUTATION = np.array([0, 1, 3, 2, 5, 4, 6, 7, 8, 9, 10])

# Helen "overall" F1: brows, eyes, nose and the three mouth classes as one foreground
OVERALL_CLASSES = (LEFT_BROW, RIGHT_BROW, LEFT_EYE, RIGHT_EYE, NOSE, UPPER_LIP, INNER_MOUTH, LOWER_LIP)
FOREGROUND_CLASSES = tuple(range(1, NUM_CLASSES))  # LaPa's mean F1 is over these 10

# groups for flicker and reporting
CLASS_GROUPS = {
    "skin": (SKIN,),
    "brows": (LEFT_BROW, RIGHT_BROW),
    "eyes": (LEFT_EYE, RIGHT_EYE),
    "nose": (NOSE,),
    "mouth": (UPPER_LIP, INNER_MOUTH, LOWER_LIP),
    "hair": (HAIR,),
}

# RGB colours for label overlays and legends
PALETTE = np.array([
    (0, 0, 0), (255, 200, 160), (120, 60, 20), (170, 100, 40), (0, 120, 255), (0, 200, 255),
    (255, 140, 0), (220, 20, 60), (120, 0, 60), (255, 80, 120), (130, 60, 200),
], dtype=np.uint8)


def flip_labels(label: np.ndarray) -> np.ndarray:
    """Flip a label map horizontally and swap left/right classes (255 stays 255)."""
    lut = np.arange(256, dtype=np.uint8)
    lut[:NUM_CLASSES] = FLIP_PERMUTATION
    return lut[label[:, ::-1]]


def colorize(label: np.ndarray) -> np.ndarray:
    """Label map (H, W) of class ids -> RGB image; ignore pixels grey."""
    lut = np.full((256, 3), 128, dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    return lut[label]


def argmax_labels(probs: np.ndarray) -> np.ndarray:
    """(C, H, W) probabilities -> (H, W) uint8 class ids, the first class on ties as np.argmax.
    Plane by plane: numpy's argmax over the first axis copies the planes interleaved first
    (a large photo's 11 planes: hundreds of MB)."""
    best = probs[0].copy()
    labels = np.zeros(probs.shape[1:], np.uint8)
    for c in range(1, probs.shape[0]):
        labels[probs[c] > best] = c
        np.maximum(best, probs[c], out=best)
    return labels

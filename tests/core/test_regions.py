"""Bounding boxes of masks (core/regions.py), shared by the effects, the hair fusion and the
photos' part colours."""
import numpy as np

from core.regions import bounds, bounds_of_any


def test_the_box_of_the_pixels_over_the_threshold_padded_inside_the_mask():
    mask = np.zeros((20, 30), np.float32)
    mask[5:8, 10:14] = 0.6
    mask[9, 20] = 0.2                       # under the threshold: not in the box
    assert bounds(mask, 0.5) == (slice(5, 8), slice(10, 14))
    assert bounds(mask, 0.1) == (slice(5, 10), slice(10, 21))
    assert bounds(mask, 0.5, pad=7) == (slice(0, 15), slice(3, 21))   # clipped at the top


def test_a_bool_mask_and_an_empty_one():
    mask = np.zeros((4, 4), bool)
    assert bounds(mask) is None
    mask[3, 3] = True
    assert bounds(mask, pad=2) == (slice(1, 4), slice(1, 4))


def test_the_box_where_any_of_several_planes_is_over_the_threshold():
    eye, brow = np.zeros((20, 30), np.float32), np.zeros((20, 30), np.float32)
    eye[10:12, 4:9], brow[6:8, 3:10] = 0.7, 0.4
    assert bounds_of_any([eye, brow], 0.0) == (slice(6, 12), slice(3, 10))
    assert bounds_of_any([eye, brow], 0.5) == bounds(eye, 0.5)          # the brow stays under it
    assert bounds_of_any([eye * 0, brow * 0], 0.0) is None

"""core.channels: split gives what cv2.split gives, as new contiguous planes; summed adds planes."""
import cv2
import numpy as np
import pytest

from core import channels


@pytest.mark.parametrize("n", [1, 2, 3, 11])
def test_split_gives_cv2_splits_planes_as_new_arrays(n):
    image = np.random.default_rng(n).random((40, 50, n), dtype=np.float32)
    view = image[3:30, 5:45]   # a box of a larger image: strided rows, as the effects pass them
    planes = channels.split(view)
    assert len(planes) == n
    for mine, theirs in zip(planes, cv2.split(view)):
        assert mine.flags.c_contiguous and mine.flags.writeable and np.array_equal(mine, theirs)
    planes[0][...] = -1   # its own memory: the image is untouched
    assert (view[..., 0] >= 0).all()


def test_split_of_a_plane_is_a_copy_of_it():
    plane = np.arange(12, dtype=np.float32).reshape(3, 4)
    [copy] = channels.split(plane)
    assert np.array_equal(copy, plane) and copy is not plane and not np.shares_memory(copy, plane)


def test_summed_adds_the_indexed_planes_into_a_new_array():
    planes = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    total = channels.summed(planes, (0, 2, 3))
    np.testing.assert_array_equal(total, planes[0] + planes[2] + planes[3])
    one = channels.summed(planes, (1,))
    one += 1   # a new array: the planes are not touched
    np.testing.assert_array_equal(planes[1], np.arange(6, 12, dtype=np.float32).reshape(2, 3))

"""The label schema's helpers."""
import numpy as np

from core.classes import NUM_CLASSES, argmax_labels


def test_argmax_labels_is_numpys_argmax_ties_included():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=(40, 50)).transpose(2, 0, 1).astype(np.float32)
    probs[:, :, :5] = 1.0 / NUM_CLASSES   # every class tied: the first wins, as with np.argmax
    probs[3:6, 10:20, 10:20] = 0.9        # classes 3, 4 and 5 tied on top
    labels = argmax_labels(probs)
    assert labels.dtype == np.uint8 and np.array_equal(labels, probs.argmax(0))
    assert (labels[:, :5] == 0).all() and (labels[10:20, 10:20] == 3).all()

"""Undo, at inference, the class weighting a tier was trained with (a prior correction).

Every learned tier was trained with a class-weighted loss that multiplies the small parts'
pixels (brows, eyes, nose, lips, mouth) by w_c > 1 against skin: without it they stayed at F1 0
on few images. A network fitted that way answers q_c proportional to w_c p_c, so its small
parts come out too large: on the real parts dev set (tests/fixtures/parts_dev) the Student's and
the seed models' brows and eyes had a precision of 0.4-0.5 at a recall of 0.95-0.99. Dividing
the small parts' probabilities by w_c ** tau and renormalising gives them back their size
(README, Accuracy; tools/fit_class_prior.py measures w, picks tau and writes the factors into
the checkpoint's config as "class_prior"). Background, skin and hair keep their balance (the
hair fusion was fitted on it): their factors are 1.

The landmark tier was not trained, but its eye polygons run along the lash line: its eyes get a
factor too, fitted on FaceSynthetics' training faces.
"""
import numpy as np

from core.regions import bounds_of_any


def reweigh(probs: np.ndarray, factors) -> np.ndarray:
    """(N, 11, S, S) probabilities summing to 1 over the classes -> p_c f_c / sum_j p_j f_j, in
    place. Only the planes whose factor is not 1 are read, so a parse that left classes it was
    not asked for at 0 is corrected as far as its planes allow; and only over the box where one
    of them is not 0 (elsewhere the sum is 1 and nothing changes): the landmark tier's eyes are
    a few hundred pixels of the crop, and with the lips alone asked for, none."""
    factors = np.asarray(factors, np.float32)
    changed = np.flatnonzero(factors != 1.0)
    if len(changed) == 0:
        return probs
    for face in probs:
        sub = bounds_of_any([face[c] for c in changed], 0.0)
        if sub is None:
            continue
        p = face[:, sub[0], sub[1]]
        norm = np.ones(p.shape[1:], np.float32)   # sum_j p_j f_j = 1 + sum_c (f_c - 1) p_c
        for c in changed:
            norm += (factors[c] - 1.0) * p[c]
        for c in changed:
            p[c] *= factors[c]
        p /= norm
    return probs

"""Face-parsing metrics from one confusion matrix accumulated over a whole dataset.

Scores are computed from the summed pixel counts of all images (as the Helen, LaPa and LFW
papers report them), never averaged per image. Ignore pixels (255) count nowhere.

- per-class F1 and IoU: F1 = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN)
- Helen "overall" F1: brows, eyes, nose and mouth merged into one foreground class, skin and
  hair left out (Liu et al., "A New Dataset and Boundary-Attention Semantic Segmentation for Face
  Parsing" (LaPa), sec. 5.3.2; Wei et al., "Accurate Facial Image Parsing at Real-Time Speed",
  Table VI), from the merged binary counts
- mean F1 over the 10 foreground classes (LaPa paper, sec. 5.2)
- pixel accuracy: correct / labelled pixels over all classes (LFW; Guo et al., "Residual Encoder
  Decoder Network and Adaptive Prior for Face Parsing", sec. 4.3)

A class with no TP, FP and FN (absent from truth and prediction) has no score (None) and is
left out of the means.
"""
import math

import numpy as np

from core.classes import CLASS_GROUPS, CLASS_NAMES, FOREGROUND_CLASSES, HAIR, IGNORE, NUM_CLASSES, OVERALL_CLASSES


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def f1_from_counts(tp: float, fp: float, fn: float) -> float | None:
    denom = 2 * tp + fp + fn
    return None if denom == 0 else 2 * tp / denom


def iou_from_counts(tp: float, fp: float, fn: float) -> float | None:
    denom = tp + fp + fn
    return None if denom == 0 else tp / denom


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def binary_scores(pred_mask, true_mask, valid=None) -> dict:
    """One class against the rest (e.g. hair vs not-hair on LFW hair masks).

    pred_mask, true_mask: bool arrays of the same shape; valid: bool mask of the pixels
    that count (default all). Returns counts and f1 / iou / accuracy (None when undefined).
    """
    pred, true = _numpy(pred_mask).astype(bool), _numpy(true_mask).astype(bool)
    valid = np.ones_like(true) if valid is None else _numpy(valid).astype(bool)
    tp = int(np.count_nonzero(pred & true & valid))
    fp = int(np.count_nonzero(pred & ~true & valid))
    fn = int(np.count_nonzero(~pred & true & valid))
    tn = int(np.count_nonzero(~pred & ~true & valid))
    total = tp + fp + fn + tn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "f1": f1_from_counts(tp, fp, fn), "iou": iou_from_counts(tp, fp, fn),
            "accuracy": (tp + tn) / total if total else None}


class ConfusionMatrix:
    """counts[t, p] = number of labelled pixels of true class t predicted as class p."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, num_classes), np.int64)

    @classmethod
    def from_counts(cls, counts) -> "ConfusionMatrix":
        counts = np.asarray(counts, np.int64)
        cm = cls(counts.shape[0])
        cm.counts = counts.copy()
        return cm

    def update(self, pred, label) -> "ConfusionMatrix":
        """Add one prediction (class ids, any shape) and its label (same shape, 255 = ignore)."""
        pred, label = _numpy(pred).reshape(-1), _numpy(label).reshape(-1)
        if pred.shape != label.shape:
            raise ValueError(f"prediction has {pred.size} pixels, label has {label.size}")
        keep = (label != IGNORE) & (label < self.num_classes)
        if keep.any() and pred[keep].max() >= self.num_classes:
            raise ValueError(f"prediction holds class {pred[keep].max()}, only {self.num_classes} classes")
        idx = label[keep].astype(np.int64) * self.num_classes + pred[keep].astype(np.int64)
        self.counts += np.bincount(idx, minlength=self.num_classes ** 2).reshape(self.counts.shape)
        return self

    def __iadd__(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        self.counts += other.counts
        return self

    # counts
    def tp_fp_fn(self, classes) -> tuple[int, int, int]:
        """Binary counts for the union of `classes` against everything else."""
        mask = np.zeros(self.num_classes, bool)
        mask[list(classes)] = True
        inside = self.counts[mask]  # rows: truth in the group
        tp = int(inside[:, mask].sum())
        fn = int(inside.sum()) - tp
        fp = int(self.counts[:, mask].sum()) - tp
        return tp, fp, fn

    @property
    def n_pixels(self) -> int:
        return int(self.counts.sum())

    # scores
    def f1(self, c: int) -> float | None:
        return f1_from_counts(*self.tp_fp_fn([c]))

    def iou(self, c: int) -> float | None:
        return iou_from_counts(*self.tp_fp_fn([c]))

    def merged_f1(self, classes) -> float | None:
        return f1_from_counts(*self.tp_fp_fn(classes))

    def overall_f1(self) -> float | None:
        return self.merged_f1(OVERALL_CLASSES)

    def mean_f1(self, classes=FOREGROUND_CLASSES) -> float | None:
        return _mean(self.f1(c) for c in classes)

    def pixel_accuracy(self) -> float | None:
        total = self.n_pixels
        return float(np.trace(self.counts)) / total if total else None

    def report(self, classes=None) -> dict:
        """JSON-ready scores. `classes` restricts the report to those classes (e.g. (HAIR,) for
        hair-only labels, where only one-class-vs-rest scores mean anything)."""
        if classes is None:
            names = CLASS_NAMES[:self.num_classes]
            return {
                "per_class_f1": {names[c]: self.f1(c) for c in range(self.num_classes)},
                "per_class_iou": {names[c]: self.iou(c) for c in range(self.num_classes)},
                "group_f1": {g: self.merged_f1(cs) for g, cs in CLASS_GROUPS.items()},
                "overall_f1": self.overall_f1(),
                "mean_f1": self.mean_f1(),
                "pixel_accuracy": self.pixel_accuracy(),
                "hair_f1": self.f1(HAIR),
                "hair_iou": self.iou(HAIR),
                "n_pixels": self.n_pixels,
                "confusion_matrix": self.counts.tolist(),
            }
        classes = list(classes)
        rep = {
            "classes": [CLASS_NAMES[c] for c in classes],
            "per_class_f1": {CLASS_NAMES[c]: self.f1(c) for c in classes},
            "per_class_iou": {CLASS_NAMES[c]: self.iou(c) for c in classes},
            "overall_f1": None, "mean_f1": None, "pixel_accuracy": None,
            "n_pixels": self.n_pixels,
            "confusion_matrix": self.counts.tolist(),
        }
        if HAIR in classes:
            tp, fp, fn = self.tp_fp_fn([HAIR])
            rep.update(hair_f1=f1_from_counts(tp, fp, fn), hair_iou=iou_from_counts(tp, fp, fn),
                       hair_accuracy=(self.n_pixels - fp - fn) / self.n_pixels if self.n_pixels else None)
        return rep

"""Metrics of the PTB-XL benchmark (numpy; sklearn only imported lazily where used).

Every metric refuses non-finite input (``ValueError``): a NaN prediction is a diverged model,
never a score. Conventions follow the reference implementation (helme/ecg_ptbxl_benchmarking,
``code/utils/utils.py``) where it defines a metric, and docs/PROTOCOL.md otherwise:

* ``macro_auc``: sklearn ``roc_auc_score(average="macro")`` (term-centric).
* ``fmax``: sample-centric CAFA Fmax over thresholds 0.00, 0.01, ..., 1.00; a label is
  predicted when ``score >= t`` (CAFA convention).
* ``challenge_metrics``: ICBEB/CinC F_beta and G_beta (beta 2), per class, each sample
  weighted by 1 / (its number of true labels), macro average.
* ``find_optimal_thresholds`` / ``apply_thresholds``: per-class thresholds maximising the
  (unweighted, single-class) G_beta on a 100-point grid ``linspace(0, 1, 100)``; a label is
  positive when ``score > threshold`` (strict, as in the reference), with the argmax fallback.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ecg_keras import tasks
from ecg_keras.tasks import MULTILABEL

#: Fmax thresholds 0.00 ... 1.00, computed as exact j/100 so comparisons are reproducible.
FMAX_THRESHOLDS = np.arange(101) / 100.0


def _finite(y, name: str) -> np.ndarray:
    """``y`` as an array; ValueError when it holds NaN/Inf (a diverged model must not get a score)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {y.dtype}")
    bad = ~np.isfinite(y)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        raise ValueError(f"{name} contains {int(bad.sum())} non-finite value(s) (first {y[tuple(first)]} at index "
                         f"{first}); metrics are not computed on NaN/Inf")
    return y


def _as_2d(y: np.ndarray, name: str) -> np.ndarray:
    y = _finite(y, name)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"{name} must be (n_samples, n_classes), got shape {y.shape}")
    return y


def _check_pair(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = _as_2d(y_true, "y_true")
    y_score = _as_2d(y_score, "y_score")
    if y_true.shape != y_score.shape:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} differ in shape")
    return (y_true > 0.5), y_score.astype(np.float64)


# --------------------------------------------------------------------------- multi-label

def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks within each column, ties sharing their average rank (scipy ``rankdata``)."""
    n, c = x.shape
    order = np.argsort(x, axis=0, kind="mergesort")
    xs = np.take_along_axis(x, order, axis=0)
    new_group = np.ones((n, c), dtype=bool)
    new_group[1:] = xs[1:] != xs[:-1]
    gid = np.cumsum(new_group, axis=0) - 1 + np.arange(c)[None, :] * n   # unique group ids
    pos = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64)[:, None], (n, c))
    sums = np.bincount(gid.ravel(), weights=pos.ravel(), minlength=n * c)
    counts = np.bincount(gid.ravel(), minlength=n * c)
    ranks_sorted = sums[gid] / counts[gid]
    ranks = np.empty((n, c))
    np.put_along_axis(ranks, order, ranks_sorted, axis=0)
    return ranks


def _rank_auc(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Per-column ROC AUC via the Mann-Whitney statistic with mid-ranks for ties.

    Numerically identical (to float rounding) to sklearn's trapezoidal ROC AUC, but one
    vectorised pass over all classes, which keeps 1,000 bootstrap resamples cheap.
    """
    ranks = _midranks(y_score)
    n_pos = y_true.sum(axis=0).astype(np.float64)
    n_neg = y_true.shape[0] - n_pos
    sum_pos = np.where(y_true, ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sum_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def macro_auc(y_true, y_score, method: str = "rank") -> float:
    """Mean over classes of ROC AUC = sklearn ``roc_auc_score(average='macro')``.

    ``method="rank"`` (default) computes the same value in one vectorised pass (see
    ``_rank_auc``; equal to sklearn up to ~1e-15); ``method="sklearn"`` calls sklearn. Like
    sklearn, raises ``ValueError`` when a class has only positives or only negatives.
    """
    y_true, y_score = _check_pair(y_true, y_score)
    if method == "sklearn":
        from sklearn import metrics as skm
        return float(skm.roc_auc_score(y_true.astype(int), y_score, average="macro"))
    if method != "rank":
        raise ValueError(f"method must be 'rank' or 'sklearn', got {method!r}")
    n_pos = y_true.sum(axis=0)
    bad = np.flatnonzero((n_pos == 0) | (n_pos == len(y_true)))
    if bad.size:
        raise ValueError(f"ROC AUC is undefined for class column(s) {bad.tolist()}: only one label "
                         "value present in y_true")
    return float(np.mean(_rank_auc(y_true, y_score)))


def per_class_auc(y_true, y_score) -> np.ndarray:
    """ROC AUC per class; NaN for a class whose labels are all equal."""
    y_true, y_score = _check_pair(y_true, y_score)
    n_pos = y_true.sum(axis=0)
    ok = (n_pos > 0) & (n_pos < len(y_true))
    return np.where(ok, _rank_auc(y_true, y_score), np.nan)


def fmax_curve(y_true, y_score, thresholds: np.ndarray = FMAX_THRESHOLDS):
    """Sample-centric precision, recall and F per threshold (label predicted iff score >= t).

    precision(t) = mean over samples with >= 1 predicted label of |pred & true| / |pred|
    (NaN when no sample has a prediction at t); recall(t) = mean over samples of
    |pred & true| / |true| (samples without any true label cannot enter a recall and are
    left out; in the benchmark every record has >= 1 label); F = 2PR/(P+R), 0 when P+R = 0.
    Returns ``(thresholds, precision, recall, f)``.
    """
    y_true, y_score = _check_pair(y_true, y_score)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if np.any(np.diff(thresholds) <= 0):
        raise ValueError("thresholds must be strictly increasing")
    n, _ = y_true.shape
    k = len(thresholds)
    # bin b = number of thresholds <= score, so the label is predicted at t_j iff b > j.
    bins = np.searchsorted(thresholds, y_score, side="right")            # (n, C) in 0..k
    flat = np.arange(n)[:, None] * (k + 1) + bins                         # (n, C) cell ids
    hist_pred = np.bincount(flat.ravel(), minlength=n * (k + 1)).reshape(n, k + 1)
    hist_tp = np.bincount(flat[y_true], minlength=n * (k + 1)).reshape(n, k + 1)
    # count of labels with bin >= j+1, for j = 0..k-1: reverse cumulative sum.
    n_pred = np.cumsum(hist_pred[:, ::-1], axis=1)[:, ::-1][:, 1:]       # (n, k)
    n_tp = np.cumsum(hist_tp[:, ::-1], axis=1)[:, ::-1][:, 1:]
    n_true = y_true.sum(axis=1).astype(np.float64)

    has_pred = n_pred > 0
    n_with_pred = has_pred.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec_i = np.where(has_pred, n_tp / np.where(has_pred, n_pred, 1.0), 0.0)
        precision = np.where(n_with_pred > 0, prec_i.sum(axis=0) / n_with_pred, np.nan)
        labelled = n_true > 0
        recall = (n_tp[labelled] / n_true[labelled, None]).mean(axis=0) if labelled.any() \
            else np.full(k, np.nan)
        denom = precision + recall
        f = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    f = np.where(np.isnan(precision), np.nan, f)
    return thresholds, precision, recall, f


def fmax(y_true, y_score, return_threshold: bool = False):
    """Sample-centric CAFA Fmax over thresholds 0.00..1.00 (step 0.01), see ``fmax_curve``.

    Thresholds at which no sample has a predicted label are skipped. Returns NaN if every
    threshold is skipped; with ``return_threshold`` returns ``(fmax, threshold)``.
    """
    thr, _, _, f = fmax_curve(y_true, y_score)
    if np.all(np.isnan(f)):
        return (float("nan"), float("nan")) if return_threshold else float("nan")
    j = int(np.nanargmax(f))
    return (float(f[j]), float(thr[j])) if return_threshold else float(f[j])


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray):
    tp = ((y_true & y_pred) * w[:, None]).sum(axis=0)
    fp = ((~y_true & y_pred) * w[:, None]).sum(axis=0)
    fn = ((y_true & ~y_pred) * w[:, None]).sum(axis=0)
    return tp, fp, fn


def challenge_metrics(y_true, y_pred_binary, beta: float = 2.0) -> dict[str, float]:
    """ICBEB2018 challenge scores of binary predictions, as the reference ``challenge_metrics``.

    Per class: F_beta = (1+b^2)TP / ((1+b^2)TP + FP + b^2 FN) and G_beta = TP / (TP + FP + b FN),
    where TP/FP/FN sum the sample weights 1/(number of true labels of the sample); the scores
    are averaged over classes (a class with TP = FP = FN = 0 gives NaN). Returns
    ``{"F_beta_macro": ..., "G_beta_macro": ...}``.
    """
    y_true, y_pred = _check_pair(y_true, y_pred_binary)
    y_pred = y_pred > 0.5
    n_true = y_true.sum(axis=1)
    if np.any(n_true == 0):
        raise ValueError(f"{int((n_true == 0).sum())} sample(s) have no true label; the challenge "
                         "metrics weight samples by 1/(number of true labels)")
    tp, fp, fn = _confusion(y_true, y_pred, 1.0 / n_true)
    b2 = beta ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        f_beta = (1 + b2) * tp / ((1 + b2) * tp + fp + b2 * fn)
        g_beta = tp / (tp + fp + beta * fn)
    return {"F_beta_macro": float(f_beta.mean()), "G_beta_macro": float(g_beta.mean())}


def find_optimal_thresholds(y_train, p_train, n_thresholds: int = 100, beta: float = 2.0) -> np.ndarray:
    """Per-class threshold on ``linspace(0, 1, n_thresholds)`` maximising that class's G_beta.

    As in the reference, each class is scored on its own with unit sample weights, a label
    is positive when ``p > t``, and the first (smallest) best threshold wins. Undefined
    scores (no positive and no prediction) count as worst.
    """
    y_true, p = _check_pair(y_train, p_train)
    grid = np.linspace(0.0, 1.0, n_thresholds)
    out = np.empty(y_true.shape[1])
    for c in range(y_true.shape[1]):
        pred = p[:, c][:, None] > grid[None, :]                          # (n, T)
        yt = y_true[:, c][:, None]
        tp = (yt & pred).sum(axis=0).astype(float)
        fp = (~yt & pred).sum(axis=0)
        fn = (yt & ~pred).sum(axis=0)
        denom = tp + fp + beta * fn
        g = np.where(denom > 0, tp / np.where(denom > 0, denom, 1.0), -np.inf)
        out[c] = grid[int(np.argmax(g))]
    return out


def apply_thresholds(p, thr) -> np.ndarray:
    """Binary (n, C) int array ``p > thr``; a sample with no positive gets its argmax class set."""
    p = _as_2d(p, "p").astype(np.float64)
    thr = np.broadcast_to(np.asarray(thr, dtype=np.float64), (p.shape[1],))
    out = (p > thr[None, :]).astype(int)
    empty = out.sum(axis=1) == 0
    out[np.flatnonzero(empty), np.argmax(p[empty], axis=1)] = 1
    return out


# --------------------------------------------------------------------------- age and sex

def mae(y_true, y_pred) -> float:
    """Mean absolute error (age regression, years)."""
    y_true, y_pred = _finite(y_true, "y_true"), _finite(y_pred, "y_pred")
    return float(np.mean(np.abs(np.ravel(y_true).astype(float) - np.ravel(y_pred))))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination R^2 (sklearn ``r2_score``)."""
    from sklearn import metrics as skm
    y_true, y_pred = _finite(y_true, "y_true"), _finite(y_pred, "y_pred")
    return float(skm.r2_score(np.ravel(y_true), np.ravel(y_pred)))


def accuracy(y_true, y_score, threshold: float = 0.5) -> float:
    """Binary accuracy of probabilities thresholded at ``threshold`` (positive iff >= threshold)."""
    y_true, y_score = _finite(y_true, "y_true"), _finite(y_score, "y_score")
    return float(np.mean((np.ravel(y_score) >= threshold) == (np.ravel(y_true) > 0.5)))


def auc(y_true, y_score) -> float:
    """Binary ROC AUC (sex, signal quality); same value as sklearn ``roc_auc_score``."""
    y_true, y_score = _finite(y_true, "y_true"), _finite(y_score, "y_score")
    return macro_auc(np.ravel(y_true), np.ravel(y_score))


# --------------------------------------------------------------------------- subsets

def healthy_mask(y_diagnostic, classes, norm: str = "NORM") -> np.ndarray:
    """Records whose ONLY diagnostic label is ``norm`` (multi-hot diagnostic labels in, bool out)."""
    y = _as_2d(y_diagnostic, "y_diagnostic") > 0.5
    classes = list(classes)
    if norm not in classes:
        raise ValueError(f"{norm!r} is not among the classes")
    return y[:, classes.index(norm)] & (y.sum(axis=1) == 1)


#: The subgroup of every record in :func:`subset_masks` (a subgroup name, not the task of that name).
EVERY_RECORD = "all"


def subset_masks(healthy) -> dict[str, np.ndarray]:
    """Boolean masks ``{"all", "healthy", "non_healthy"}`` from a boolean ``healthy`` array.

    ``healthy`` = NORM is the record's only diagnostic label (see ``healthy_mask``); docs/PROTOCOL.md
    evaluates age and sex on all three subsets.
    """
    healthy = np.asarray(healthy)
    if healthy.dtype != bool:
        raise TypeError(f"healthy must be a boolean array, got dtype {healthy.dtype}")
    healthy = healthy.ravel()
    return {EVERY_RECORD: np.ones_like(healthy), "healthy": healthy.copy(), "non_healthy": ~healthy}


def scores_by_subset(y_true, y_score, healthy, metric_fns: Mapping[str, callable]) -> dict:
    """``{subset: {metric: value}}`` for every mask of ``subset_masks(healthy)``."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    return {name: {m: float(fn(y_true[mask], y_score[mask])) for m, fn in metric_fns.items()}
            for name, mask in subset_masks(healthy).items()}


def default_metrics(kind: str = MULTILABEL) -> dict[str, callable]:
    """The default metric set of a task kind (``TaskData.kind``): its ``Kind.metrics`` by name."""
    by_name = {"macro_auc": macro_auc, "fmax": fmax, "auc": auc, "accuracy": accuracy, "mae": mae, "r2": r2}
    return {name: by_name[name] for name in tasks.kind(kind).metrics}

"""Bootstrap confidence intervals on the test set (docs/PROTOCOL.md, "Confidence intervals").

Draw the resamples once (``draw_bootstrap_indices``), store them (``save_indices``) and score
every model on exactly those resamples (``bootstrap_scores``).
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], float]

LOWER_Q, UPPER_Q = 0.05, 0.95


def draw_bootstrap_indices(y_true, n: int = 1000, seed: int = 0, batch: int = 64,
                           max_draws: int | None = None) -> np.ndarray:
    """``n`` resamples (with replacement) of the rows of ``y_true`` that contain >= 1 positive
    of every class; a resample missing a class is redrawn. Returns an (n, n_samples) int64 array.

    Deterministic given ``seed`` (numpy ``default_rng``). Raises ``ValueError`` if a class has
    no positive at all, ``RuntimeError`` if more than ``max_draws`` candidates (default
    ``max(10_000, 1000 * n)``) were needed.
    """
    y = np.asarray(y_true)
    if y.ndim == 1:
        y = y[:, None]
    y = (y > 0.5).astype(np.float64)
    n_samples = y.shape[0]
    if n_samples == 0:
        raise ValueError("y_true has no samples")
    missing = np.flatnonzero(y.sum(axis=0) == 0)
    if missing.size:
        raise ValueError(f"class column(s) {missing.tolist()} have no positive sample; no "
                         "bootstrap resample can contain every class")
    if max_draws is None:
        max_draws = max(10_000, 1000 * n)
    rng = np.random.default_rng(seed)
    accepted: list[np.ndarray] = []
    n_accepted, drawn = 0, 0
    while n_accepted < n:
        if drawn >= max_draws:
            raise RuntimeError(f"only {n_accepted}/{n} valid resamples after {drawn} draws: some "
                               "classes are too rare in y_true to appear in most resamples")
        cand = rng.integers(0, n_samples, size=(batch, n_samples))
        drawn += batch
        flat = (np.arange(batch)[:, None] * n_samples + cand).ravel()
        counts = np.bincount(flat, minlength=batch * n_samples).reshape(batch, n_samples)
        ok = (counts @ y).min(axis=1) > 0                                  # positives per class
        good = cand[ok][: n - n_accepted]
        accepted.append(good)
        n_accepted += len(good)
    return np.concatenate(accepted, axis=0).astype(np.int64)


def save_indices(path: str | PathLike, indices: np.ndarray) -> Path:
    """Save resample indices as a plain (non-pickled) .npy file; returns the path."""
    path = Path(path)
    from ecg_keras.files import atomic_path

    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(indices, dtype=np.int64), allow_pickle=False)
    return path


def load_indices(path: str | PathLike, n_samples: int | None = None) -> np.ndarray:
    """Load resample indices; checks 2-D integer shape and (optionally) the index range."""
    idx = np.load(Path(path), allow_pickle=False)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{path}: expected a 2-D integer array (n_resamples, n_samples), "
                         f"got {idx.dtype} {idx.shape}")
    if n_samples is not None and (idx.shape[1] != n_samples or idx.min() < 0 or idx.max() >= n_samples):
        raise ValueError(f"{path}: resamples of {idx.shape[1]} indices in [{idx.min()}, {idx.max()}] "
                         f"do not fit a test set of {n_samples} samples")
    return idx.astype(np.int64)


def summarize(point: float, samples) -> dict[str, float]:
    """``{"point", "mean", "lower", "upper"}`` with 5%/95% quantiles (numpy linear, = pandas)."""
    s = np.asarray(samples, dtype=np.float64)
    return {"point": float(point), "mean": float(np.mean(s)),
            "lower": float(np.quantile(s, LOWER_Q)), "upper": float(np.quantile(s, UPPER_Q))}


def bootstrap_scores(y_true, y_score, metric_fns: Mapping[str, MetricFn], indices,
                     return_samples: bool = False) -> dict:
    """Score each metric on the full set ("point") and on every resample in ``indices``.

    Returns ``{metric: {"point", "mean", "lower", "upper"}}`` (lower/upper = 5%/95% quantiles
    over the resamples); with ``return_samples`` also ``{metric: array of resample scores}``.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true has {len(y_true)} samples, y_score {len(y_score)}")
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != len(y_true):
        raise ValueError(f"indices of shape {indices.shape} do not resample {len(y_true)} samples")
    out, samples = {}, {}
    for name, fn in metric_fns.items():
        vals = np.array([fn(y_true[i], y_score[i]) for i in indices], dtype=np.float64)
        out[name] = summarize(fn(y_true, y_score), vals)
        samples[name] = vals
    return (out, samples) if return_samples else out

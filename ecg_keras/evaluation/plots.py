"""Headless matplotlib figures: Figure-2 style CI bar charts, ROC curves, training history.

Every function saves a PNG and returns its path. matplotlib is imported lazily with the Agg
backend so importing ``ecg_keras.evaluation`` stays cheap.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .tables import PINNED_LAST, rank_models


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_ci_bars(results: Mapping, path: str | PathLike, metric: str = "macro_auc",
                 tasks: Sequence[str] | None = None, title: str | None = None,
                 pinned_last: Sequence[str] = PINNED_LAST, higher_is_better: bool = True) -> Path:
    """Figure-2 style: one panel per task, one horizontal bar per model (ranked by point
    estimate, best on top) with the bootstrap 5%-95% interval as error bar.

    ``results`` = ``{model: {task: {metric: {"point", "lower", "upper", ...}}}}``.
    """
    plt = _plt()
    if tasks is None:
        tasks = []
        for per_task in results.values():
            tasks += [t for t in per_task if t not in tasks]
    tasks = list(tasks) or [""]
    n_models = max(1, len(results))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1.5, 0.35 * n_models + 1.5),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        models = [m for m in rank_models(results, task, metric, pinned_last, higher_is_better)
                  if metric in results[m].get(task, {})]
        pts = np.array([results[m][task][metric]["point"] for m in models], dtype=float)
        lo = np.array([results[m][task][metric].get("lower", np.nan) for m in models], dtype=float)
        hi = np.array([results[m][task][metric].get("upper", np.nan) for m in models], dtype=float)
        err = np.vstack([np.clip(pts - lo, 0, None), np.clip(hi - pts, 0, None)])
        err = np.nan_to_num(err)
        y = np.arange(len(models))[::-1]
        colors = ["tab:gray" if m in pinned_last else "tab:blue" for m in models]
        ax.barh(y, pts, xerr=err, color=colors, capsize=3, height=0.7)
        ax.set_yticks(y, models)
        if len(pts):
            finite = np.concatenate([pts, lo, hi])
            finite = finite[np.isfinite(finite)]
            left = max(0.0, float(finite.min()) - 0.05) if finite.size else 0.0
            right = float(finite.max()) + 0.02 if finite.size else 1.0
            ax.set_xlim(left, max(right, left + 0.05))
        ax.set_title(task)
        ax.set_xlabel(metric)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def roc_points(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of a binary ROC curve at every distinct score (like sklearn ``roc_curve``
    with ``drop_intermediate=False``), starting at (0, 0)."""
    y = np.asarray(y_true) > 0.5
    s = np.asarray(y_score, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]       # end of each score group
    tps, fps = np.cumsum(y)[last], np.cumsum(~y)[last]
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def plot_roc_curves(y_true, y_score, classes: Sequence[str], path: str | PathLike,
                    title: str | None = None, max_classes: int | None = None) -> Path:
    """ROC curve of every class (legend with per-class AUC); classes with only one label value
    are skipped. ``max_classes`` keeps the most frequent classes for readability."""
    from .metrics import per_class_auc

    plt = _plt()
    y_true = np.asarray(y_true) > 0.5
    y_score = np.asarray(y_score, dtype=float)
    if y_true.ndim == 1:
        y_true, y_score = y_true[:, None], y_score[:, None]
    order = np.argsort(-y_true.sum(axis=0), kind="stable")
    if max_classes is not None:
        order = order[:max_classes]
    aucs = per_class_auc(y_true, y_score)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    for c in sorted(order):
        if np.isnan(aucs[c]):
            continue
        fpr, tpr = roc_points(y_true[:, c], y_score[:, c])
        ax.plot(fpr, tpr, lw=1, label=f"{classes[c]} ({aucs[c]:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if title:
        ax.set_title(title)
    ncol = 1 if len(order) <= 12 else 2
    ax.legend(fontsize=6 if len(order) > 12 else 8, ncol=ncol, loc="lower right")
    return _save(fig, path)


def plot_history(history, path: str | PathLike, title: str | None = None) -> Path:
    """Training curves from a history CSV path or DataFrame (columns ``epoch``, ``loss``,
    ``val_loss``, ``lr`` and any metric columns): losses, learning rate (log), other numeric
    columns (e.g. val metrics, beta_1) except wall-clock ``time*`` columns."""
    plt = _plt()
    df = history if isinstance(history, pd.DataFrame) else pd.read_csv(history)
    x = df["epoch"] if "epoch" in df.columns else pd.Series(np.arange(len(df)))
    loss_cols = [c for c in df.columns if c in ("loss", "val_loss")]
    lr_cols = [c for c in df.columns if c in ("lr", "learning_rate")]
    other = [c for c in df.columns if c not in {"epoch", *loss_cols, *lr_cols}
             and not str(c).startswith("time") and pd.api.types.is_numeric_dtype(df[c])]
    panels = [p for p in (loss_cols, lr_cols, other) if p]
    if not panels:
        raise ValueError("history has no numeric columns to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, cols in zip(axes[0], panels):
        for c in cols:
            ax.plot(x, df[c], marker="." if len(df) < 60 else None, label=c)
        if cols is lr_cols:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)

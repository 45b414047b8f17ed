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

from ecg_keras.datasets.base import LEAD_NAMES

from .hierarchy import STATEMENT_LEVEL, SUBCLASS_LEVEL, SUPERCLASS_LEVEL
from .tables import PINNED_LAST, rank_models


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix) and close it."""
    path = Path(path)
    from ecg_keras.files import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    finally:
        pyplot().close(fig)
    return path


def plot_ci_bars(results: Mapping, path: str | PathLike, metric: str = "macro_auc",
                 tasks: Sequence[str] | None = None, title: str | None = None,
                 pinned_last: Sequence[str] = PINNED_LAST, higher_is_better: bool = True) -> Path:
    """Figure-2 style: one panel per task, one horizontal bar per model (ranked by point
    estimate, best on top) with the bootstrap 5%-95% interval as error bar.

    ``results`` = ``{model: {task: {metric: {"point", "lower", "upper", ...}}}}``.
    """
    plt = pyplot()
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
    return save_figure(fig, path)


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

    plt = pyplot()
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
    return save_figure(fig, path)


def plot_history(history, path: str | PathLike, title: str | None = None) -> Path:
    """Training curves from a history CSV path or DataFrame (columns ``epoch``, ``loss``,
    ``val_loss``, ``lr`` and any metric columns): losses, learning rate (log), other numeric
    columns (e.g. val metrics, beta_1) except wall-clock ``time*`` columns."""
    plt = pyplot()
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
    return save_figure(fig, path)


# --------------------------------------------------------------------------- deeper insights

_LEVEL_COLORS = {SUPERCLASS_LEVEL: "tab:red", SUBCLASS_LEVEL: "tab:orange", STATEMENT_LEVEL: "tab:blue"}


def plot_node_aucs(table: pd.DataFrame, path: str | PathLike, title: str | None = None) -> Path:
    """Per-node AUCs of the diagnostic hierarchy (:func:`~ecg_keras.evaluation.hierarchy.node_auc_table`)
    as a tree-ordered horizontal bar chart: each superclass, its subclasses and their statements,
    indented by depth and coloured by level, with the number of positives next to each bar.
    A thin line marks each parent's AUC across its children, so a child well below its parent
    (hidden stratification) stands out. Nodes without an AUC (one label value) show "n/a"."""
    from .hierarchy import tree_order

    plt = pyplot()
    tab = tree_order(table)
    n = len(tab)
    fig, ax = plt.subplots(figsize=(7.5, 0.19 * n + 1.3))
    y = np.arange(n)[::-1]
    aucs = tab["auc"].to_numpy(dtype=float)
    colors = [_LEVEL_COLORS.get(lvl, "tab:gray") for lvl in tab["level"]]
    ax.barh(y, np.nan_to_num(aucs, nan=0.0), color=colors, height=0.75)
    raw = ["   " * int(d) + str(node) for d, node in zip(tab["depth"], tab["node"])]
    width = max((len(r) for r in raw), default=0)
    labels = [r.ljust(width) for r in raw]      # fixed width: right-aligned ticks keep the indent
    ax.set_yticks(y, labels, fontsize=7, fontfamily="monospace")
    ax.set_ylim(-0.7, n - 0.3)
    finite = aucs[np.isfinite(aucs)]
    left = max(0.0, float(finite.min()) - 0.05) if finite.size else 0.0
    ax.set_xlim(left, 1.06)
    # parent AUC as a vertical tick spanning its children
    auc_of = {(lvl, node): a for lvl, node, a in zip(tab["level"], tab["node"], aucs)}
    parent_level = {STATEMENT_LEVEL: SUBCLASS_LEVEL, SUBCLASS_LEVEL: SUPERCLASS_LEVEL}
    for yi, lvl, parent in zip(y, tab["level"], tab["parent"]):
        pa = auc_of.get((parent_level.get(lvl), parent), np.nan)
        if np.isfinite(pa):
            ax.plot([pa, pa], [yi - 0.45, yi + 0.45], color="k", lw=0.8)
    for yi, a, npos in zip(y, aucs, tab["n_pos"]):
        text = f"{a:.3f}  n={int(npos)}" if np.isfinite(a) else f"n/a  n={int(npos)}"
        ax.text(min(a, 1.0) + 0.003 if np.isfinite(a) else left + 0.003, yi, text,
                va="center", fontsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _LEVEL_COLORS.values()]
    ax.legend(handles + [plt.Line2D([0], [0], color="k", lw=0.8)],
              ["superclass", "subclass", "statement", "parent AUC"], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=7)
    ax.set_xlabel("ROC AUC (scores propagated by clipped sum)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "AUC per node of the diagnostic hierarchy")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_uncertainty_box(table: pd.DataFrame, path: str | PathLike, bins: Sequence[float] | None = None,
                         title: str | None = None) -> Path:
    """Box plot of the ensemble std (column ``std``) per diagnosis likelihood (column
    ``likelihood``), one box per bin (default: 15, 35, 50, 80, 100), with the count under each
    box and the median joined across bins (paper, Section "model uncertainty")."""
    from .uncertainty import LIKELIHOOD_BINS

    plt = pyplot()
    bins = list(LIKELIHOOD_BINS if bins is None else bins)
    groups = [table.loc[table["likelihood"] == b, "std"].to_numpy(dtype=float) for b in bins]
    fig, ax = plt.subplots(figsize=(6, 4))
    pos = np.arange(1, len(bins) + 1)
    keep = [i for i, g in enumerate(groups) if len(g)]
    if keep:
        ax.boxplot([groups[i] for i in keep], positions=pos[keep], widths=0.6, showfliers=True,
                   flierprops={"markersize": 2, "alpha": 0.4})
        med = [np.median(groups[i]) for i in keep]
        ax.plot(pos[keep], med, "o--", color="tab:red", ms=3, lw=0.8, label="median")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xticks(pos, [f"{b:g}\n(n={len(g)})" for b, g in zip(bins, groups)])
    ax.set_xlim(0.4, len(bins) + 0.6)
    ax.set_xlabel("likelihood of the diagnosis in scp_codes (%)")
    ax.set_ylabel("std of the predicted probability over the ensemble")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or "Model uncertainty vs. diagnosis likelihood")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_attribution(signal, attribution, path: str | PathLike, sampling_rate: int = 100,
                     leads: Sequence[str] | None = None, title: str | None = None,
                     windows: Sequence[tuple[int, int]] | None = None) -> Path:
    """12 stacked leads: the ECG trace (mV, thin black line) over a broad band coloured by its
    attribution (diverging colormap, red = evidence for the class, blue = against, white = none; one
    symmetric scale for all leads, clipped at the 99.5th percentile of |attribution|), with a
    shared colour bar. ``windows`` (start, stop) sample ranges are shaded faintly (optional)."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    plt = pyplot()
    sig = np.asarray(signal, dtype=float)
    att = np.asarray(attribution, dtype=float)
    if sig.ndim != 2 or sig.shape != att.shape:
        raise ValueError(f"signal {sig.shape} and attribution {att.shape} must both be (time, leads)")
    t_len, n_leads = sig.shape
    if leads is None:
        leads = LEAD_NAMES[:n_leads]
        leads = list(leads) + [f"lead{i + 1}" for i in range(len(leads), n_leads)]
    t = np.arange(t_len) / float(sampling_rate)
    scale = float(np.quantile(np.abs(att), 0.995)) if np.any(att) else 1.0
    scale = scale if scale > 0 else float(np.abs(att).max() or 1.0)
    norm = Normalize(-scale, scale)
    cmap = plt.get_cmap("bwr")
    fig, axes = plt.subplots(n_leads, 1, figsize=(12, 0.85 * n_leads + 1.2), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for i, ax in enumerate(axes):
        ax.plot(t, sig[:, i], color="k", lw=0.6, zorder=2)
        pts = np.stack([t, sig[:, i]], axis=1)
        segs = np.stack([pts[:-1], pts[1:]], axis=1)
        seg_att = 0.5 * (att[:-1, i] + att[1:, i])
        lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=4.0, zorder=1, capstyle="round")
        lc.set_array(np.clip(seg_att, -scale, scale))
        ax.add_collection(lc)
        lo, hi = float(sig[:, i].min()), float(sig[:, i].max())
        pad = 0.1 * max(hi - lo, 0.2)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(leads[i], rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(axis="y", labelsize=6)
        ax.grid(axis="x", alpha=0.25)
        for w in windows or ():
            ax.axvspan(w[0] / sampling_rate, w[1] / sampling_rate, color="tab:green", alpha=0.04, lw=0)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(t[0], t[-1] if t_len > 1 else 1.0)
    fig.subplots_adjust(hspace=0.08, right=0.9, top=0.95 if title else 0.98)
    cax = fig.add_axes([0.92, 0.15, 0.012, 0.7])
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, cax=cax, label="attribution (logit units)")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)

"""Result tables in the paper's format: ``0.925(08)`` = point estimate and the bootstrap CI's
maximal deviation from it, in units of 1e-3.

``results`` everywhere is a nested mapping ``{model: {task: {metric: {"point", "mean",
"lower", "upper"}}}}`` as produced by ``bootstrap_scores`` per model and task.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

MISSING = "--"
#: Reference rows listed after the ranked models, as in the paper's tables.
PINNED_LAST = ("ensemble", "naive")


def format_ci(point, lower: float | None = None, upper: float | None = None) -> str:
    """``"%.3f(%.2d)"`` of the point estimate and ``int(1000 * max(upper - point, point - lower))``.

    Accepts a stats dict (``{"point", "lower", "upper"}``) as first argument. The deviation is
    truncated to an integer as in the reference implementation (``int(unc * 1000)``), e.g.
    ``format_ci(0.9251, 0.917, 0.931) == "0.925(08)"``.
    """
    if isinstance(point, Mapping):
        point, lower, upper = point["point"], point["lower"], point["upper"]
    if point is None or not np.isfinite(point):
        return MISSING
    if lower is None or upper is None or not (np.isfinite(lower) and np.isfinite(upper)):
        return "%.3f" % np.round(point, 3)
    unc = max(upper - point, point - lower)
    return "%.3f(%.2d)" % (np.round(point, 3), int(unc * 1000))


def _point(results, model, task, metric) -> float:
    try:
        return float(results[model][task][metric]["point"])
    except (KeyError, TypeError):
        return float("nan")


def rank_models(results: Mapping, task: str, metric: str = "macro_auc",
                pinned_last: Sequence[str] = PINNED_LAST, higher_is_better: bool = True) -> list[str]:
    """Models sorted by the point estimate on ``task`` (best first, missing last);
    ``pinned_last`` models follow in their given order."""
    ranked = [m for m in results if m not in pinned_last]
    sign = -1.0 if higher_is_better else 1.0

    def key(m):
        v = _point(results, m, task, metric)
        return (np.isnan(v), sign * v if not np.isnan(v) else 0.0, m)

    ranked.sort(key=key)
    return ranked + [m for m in pinned_last if m in results]


def results_table(results: Mapping, metric: str = "macro_auc", tasks: Sequence[str] | None = None,
                  sort_by: str | None = None, pinned_last: Sequence[str] = PINNED_LAST,
                  higher_is_better: bool = True) -> pd.DataFrame:
    """Models x tasks table of formatted ``0.925(08)`` strings (``--`` where missing).

    Rows are ranked by the point estimate on ``sort_by`` (default: the first task), like the
    paper's Figure 2 / tables; ``pinned_last`` rows (ensemble, naive) come last.
    """
    if tasks is None:
        tasks = []
        for per_task in results.values():
            tasks += [t for t in per_task if t not in tasks]
    tasks = list(tasks)
    order = rank_models(results, sort_by or (tasks[0] if tasks else ""), metric, pinned_last,
                        higher_is_better)
    rows = {}
    for m in order:
        rows[m] = [format_ci(results[m][t][metric]) if metric in results[m].get(t, {}) else MISSING
                   for t in tasks]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=tasks)
    df.index.name = "model"
    return df


def long_table(results: Mapping) -> pd.DataFrame:
    """One numeric row per (model, task, metric): point, mean, lower, upper, formatted."""
    recs = []
    for model, per_task in results.items():
        for task, per_metric in per_task.items():
            for metric, st in per_metric.items():
                if not isinstance(st, Mapping) or "point" not in st:
                    continue
                recs.append({"model": model, "task": task, "metric": metric,
                             "point": st["point"], "mean": st.get("mean"), "lower": st.get("lower"),
                             "upper": st.get("upper"), "formatted": format_ci(st)})
    return pd.DataFrame(recs, columns=["model", "task", "metric", "point", "mean", "lower",
                                       "upper", "formatted"])


def to_markdown(df: pd.DataFrame, index_name: str | None = None) -> str:
    """GitHub Markdown of a table (first column = index, right-aligned like the reference)."""
    cols = [index_name or df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|---:|" + "|".join(":---" for _ in df.columns) + "|"]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.values]) + " |")
    return "\n".join(lines) + "\n"

"""Diagnostic hierarchy: propagate statement-level probabilities to subclasses and superclasses
(sum of the children, clipped at 1) and report an AUC per node (hidden stratification).

The mapping is passed in, so this module does not depend on the dataset code: either a dict
``{code: (subclass, superclass)}`` or a DataFrame indexed by code with columns
``diagnostic_subclass`` and ``diagnostic_class`` (PTB-XL ``scp_statements.csv``; rows with an
empty class, or ``diagnostic != 1`` when that column exists, are ignored).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ecg_keras.tasks import DIAGNOSTIC, DIAGNOSTIC_LEVELS

from .metrics import per_class_auc

LEVELS = DIAGNOSTIC_LEVELS
STATEMENT_LEVEL, SUBCLASS_LEVEL, SUPERCLASS_LEVEL = LEVELS
_LEVEL_ALIASES = {"subclass": SUBCLASS_LEVEL, SUBCLASS_LEVEL: SUBCLASS_LEVEL,
                  "class": SUPERCLASS_LEVEL, "superclass": SUPERCLASS_LEVEL,
                  SUPERCLASS_LEVEL: SUPERCLASS_LEVEL}


def normalize_mapping(mapping) -> dict[str, tuple[str, str]]:
    """``{code: (subclass, superclass)}`` from a dict or a scp_statements-like DataFrame."""
    if isinstance(mapping, pd.DataFrame):
        df = mapping
        if DIAGNOSTIC.flag in df.columns:
            df = df[df[DIAGNOSTIC.flag] == 1]
        missing = {"diagnostic_subclass", "diagnostic_class"} - set(df.columns)
        if missing:
            raise ValueError(f"mapping DataFrame lacks column(s) {sorted(missing)}")
        out = {}
        for code, row in df.iterrows():
            sub, sup = row["diagnostic_subclass"], row["diagnostic_class"]
            if isinstance(sub, str) and isinstance(sup, str) and sub and sup:
                out[str(code)] = (sub, sup)
        return out
    if isinstance(mapping, Mapping):
        out = {}
        for code, pair in mapping.items():
            sub, sup = pair
            out[str(code)] = (str(sub), str(sup))
        return out
    raise TypeError(f"mapping must be a dict or a DataFrame, got {type(mapping).__name__}")


def _parents(classes: Sequence[str], mapping: dict, level: str) -> tuple[list[str], list[str]]:
    """Parent name per known class (None if unmapped) and the sorted parent names."""
    pos = 0 if level == SUBCLASS_LEVEL else 1
    par = [mapping[c][pos] if c in mapping else None for c in classes]
    return par, sorted({p for p in par if p is not None})


def propagate(y_score, classes: Sequence[str], mapping, level: str = SUPERCLASS_LEVEL,
              reduce: str = "sum") -> tuple[np.ndarray, list[str]]:
    """Scores of the ``level`` nodes ("subdiagnostic"/"subclass" or "superdiagnostic"/"class")
    from diagnostic-level columns ``classes``; returns ``(scores (n, n_nodes), node names)``.

    ``reduce="sum"`` (probabilities: sum of children clipped at 1, docs/PROTOCOL.md) or ``"max"``
    (binary labels: a node is positive when any child is). Classes absent from the mapping are
    ignored.
    """
    level = _LEVEL_ALIASES.get(level, level)
    if level not in (SUBCLASS_LEVEL, SUPERCLASS_LEVEL):
        raise ValueError(f"level must be {SUBCLASS_LEVEL} or {SUPERCLASS_LEVEL}, got {level!r}")
    mapping = normalize_mapping(mapping)
    y = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != len(classes):
        raise ValueError(f"scores of shape {y.shape} do not match {len(classes)} classes")
    par, names = _parents(list(classes), mapping, level)
    if not names:
        raise ValueError("none of the classes is in the hierarchy mapping")
    member = np.array([[p == n for n in names] for p in par], dtype=np.float64)  # (C, nodes)
    if reduce == "sum":
        return np.clip(y @ member, 0.0, 1.0), names
    if reduce == "max":
        return np.stack([y[:, member[:, j] > 0].max(axis=1) for j in range(len(names))], axis=1), names
    raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")


def hierarchy_levels(y_true, y_score, classes: Sequence[str], mapping) -> dict:
    """``{level: (y_true, y_score, names)}`` for diagnostic, subdiagnostic and superdiagnostic:
    labels propagate by logical OR, scores by clipped sum."""
    out = {STATEMENT_LEVEL: (np.asarray(y_true), np.asarray(y_score, dtype=np.float64), list(classes))}
    for level in LEVELS[1:]:
        yt, names = propagate(y_true, classes, mapping, level, reduce="max")
        ys, _ = propagate(y_score, classes, mapping, level, reduce="sum")
        out[level] = (yt, ys, names)
    return out


def node_auc_table(y_true, y_score, classes: Sequence[str], mapping) -> pd.DataFrame:
    """One row per node of every level: ``level, node, parent, n_pos, auc`` (AUC NaN when a node
    has only one label value). Statements map to their subclass, subclasses to their class."""
    m = normalize_mapping(mapping)
    sub_parent = {sub: sup for sub, sup in m.values()}
    rows = []
    for level, (yt, ys, names) in hierarchy_levels(y_true, y_score, classes, m).items():
        aucs = per_class_auc(yt, ys)
        npos = (np.asarray(yt) > 0.5).sum(axis=0)
        for j, name in enumerate(names):
            parent = (m[name][0] if name in m else "") if level == STATEMENT_LEVEL else \
                (sub_parent.get(name, "") if level == SUBCLASS_LEVEL else "")
            rows.append({"level": level, "node": name, "parent": parent,
                         "n_pos": int(npos[j]), "auc": float(aucs[j])})
    return pd.DataFrame(rows, columns=["level", "node", "parent", "n_pos", "auc"])


def tree_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a :func:`node_auc_table` in depth-first tree order (superclass, then each of its
    subclasses followed by their statements; alphabetical within a level), with a ``depth``
    column (0 superclass, 1 subclass, 2 statement). Nodes whose parent is absent from the
    table are appended at their level's depth."""
    table = table.drop(columns=["depth"], errors="ignore")
    by_level = {lvl: table[table.level == lvl].sort_values("node", kind="stable") for lvl in LEVELS}
    depth = {SUPERCLASS_LEVEL: 0, SUBCLASS_LEVEL: 1, STATEMENT_LEVEL: 2}
    rows, seen = [], set()

    def add(idx, row):
        rows.append({**row.to_dict(), "depth": depth[row.level]})
        seen.add(idx)

    for i_sup, sup in by_level[SUPERCLASS_LEVEL].iterrows():
        add(i_sup, sup)
        for i_sub, sub in by_level[SUBCLASS_LEVEL][by_level[SUBCLASS_LEVEL].parent == sup.node].iterrows():
            add(i_sub, sub)
            for i_st, st in by_level[STATEMENT_LEVEL][by_level[STATEMENT_LEVEL].parent == sub.node].iterrows():
                add(i_st, st)
    for lvl in (SUBCLASS_LEVEL, STATEMENT_LEVEL):  # orphans (parent not in the table)
        for idx, row in by_level[lvl].iterrows():
            if idx not in seen:
                add(idx, row)
    return pd.DataFrame(rows, columns=[*table.columns, "depth"]).reset_index(drop=True)

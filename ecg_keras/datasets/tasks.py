"""Task views of a RecordSet (docs/PROTOCOL.md "Data") and train/validation/test splits.

What each task is (label source, kind, classes) is its :class:`ecg_keras.tasks.Task` record;
this module derives the labels the record describes:

* statement tasks (source ``STATEMENTS``): PTB-XL record sets (``meta`` has ``scp_codes`` and
  ``statements`` is set); likelihoods ignored (a key present counts); records without a label
  for the task are dropped; classes are the sorted label names present; ``y`` multi-hot float32;
* column tasks (``COLUMN``): one numeric metadata column, ``y`` (n, 1); records without a value
  (or with a value outside ``Task.values``) dropped; PTB-XL codes ages above 89 as 300, read as 90;
* ``ANY_TEXT``: 1 when any of the task's metadata columns is non-empty (PTB-XL only).

Other record sets (ICBEB2018, LUDB, generic WFDB folders) keep their labels as a list of
strings in a ``labels`` meta column; they answer their own label task name
(``ecg_keras.tasks.label_tasks``) and the column tasks whose columns they have.

Splits: ``scheme="strat"`` uses ``strat_fold`` (1-8 train, 9 validation, 10 test);
``scheme="random"`` is a seeded random record-wise (not patient-wise) split with the same
8/1/1 proportions.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras import tasks as T
from ecg_keras.datasets.base import DataError, RecordSet, Splits, TaskData

STATEMENT_TASKS = T.statement_tasks()  # re-exported; the registry is read when a task is made
TASKS = T.names()
TRAIN_FOLDS, VAL_FOLD, TEST_FOLD = tuple(range(1, 9)), 9, 10
PTBXL_AGE_CODED_300 = 300  # PTB-XL writes 300 for ages above 89
SCHEMES = ("strat", "random")


def is_ptbxl(records: RecordSet) -> bool:
    return records.statements is not None and "scp_codes" in records.meta.columns


def available_tasks(records: RecordSet) -> tuple[str, ...]:
    """Task names ``make_task`` accepts for this record set."""
    if is_ptbxl(records):
        return T.names()
    extra = tuple(t.name for t in T.all_tasks()
                  if t.source == T.COLUMN and not t.ptbxl_only and t.column in records.meta.columns)
    return label_tasks(records) + extra


def label_tasks(records: RecordSet) -> tuple[str, ...]:
    return T.label_tasks(records.name)


# --------------------------------------------------------------------------- statement labels
def check_scp_codes(meta: pd.DataFrame, statements: pd.DataFrame, where: str = "ptbxl_database.csv") -> None:
    """DataError naming the first unknown SCP code and its record."""
    known = set(statements.index)
    for rid, codes in zip(meta.index, meta["scp_codes"]):
        for code in codes:
            if code not in known:
                raise DataError(f"{where}: record {rid} has SCP code {code!r} that is not in scp_statements.csv")


def _flag(statements: pd.DataFrame, column: str) -> set[str]:
    values = pd.to_numeric(statements[column], errors="coerce").fillna(0.0)
    return set(statements.index[values == 1.0])


def statement_labels(meta: pd.DataFrame, statements: pd.DataFrame, task: str) -> list[list[str]]:
    """Per record, the sorted label set of a statement task (its ``Task.flag`` and ``Task.level``)."""
    spec = T.find(task)
    if spec is None or spec.source != T.STATEMENTS:
        raise ValueError(f"unknown statement task {task!r}; one of {T.statement_tasks()}")
    check_scp_codes(meta, statements)
    if spec.flag is None and spec.level is None:
        return [sorted(codes) for codes in meta["scp_codes"]]
    keep = set(statements.index) if spec.flag is None else _flag(statements, spec.flag)
    if spec.level is None:
        return [sorted(c for c in codes if c in keep) for codes in meta["scp_codes"]]
    mapping = {code: str(v) for code, v in statements[spec.level].items()
               if code in keep and isinstance(v, str) and v.strip()}
    return [sorted({mapping[c] for c in codes if c in mapping}) for codes in meta["scp_codes"]]


# --------------------------------------------------------------------------- make_task
def _multilabel(records: RecordSet, task: str, labels: Sequence[Sequence[str]]) -> TaskData:
    from sklearn.preprocessing import MultiLabelBinarizer

    keep = np.array([len(x) > 0 for x in labels], dtype=bool)
    if not keep.any():
        raise DataError(f"{records.name}: task {task!r} is empty (no record has a label for it)")
    kept = [list(labels[i]) for i in np.flatnonzero(keep)]
    classes = sorted({c for x in kept for c in x})
    y = MultiLabelBinarizer(classes=classes).fit_transform(kept).astype(np.float32)
    return _task_data(records, task, classes, y, keep, T.kind_of(task))


def _task_data(records: RecordSet, task: str, classes: list[str], y: np.ndarray, keep: np.ndarray,
               kind: str) -> TaskData:
    sub = records.subset(keep)
    folds = (sub.meta["strat_fold"].to_numpy().astype(np.int64) if "strat_fold" in sub.meta.columns
             else np.zeros(len(sub), np.int64))
    return TaskData(task, list(classes), sub.signals, y, sub.meta.index.to_numpy(), folds,
                    records.sampling_rate, sub.meta, kind)


def _nonempty(value) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(str(value).strip()) and str(value).strip().lower() not in ("nan", "none")


def _column_task(records: RecordSet, spec: T.Task) -> TaskData:
    meta, name, column = records.meta, spec.name, spec.column
    if column not in meta.columns:
        raise DataError(f"{records.name}: no {column!r} column for the {name} task")
    values = pd.to_numeric(meta[column], errors="coerce").to_numpy(dtype=np.float64)
    if spec.values is None:
        if spec.column == T.AGE.column and is_ptbxl(records):
            values = np.where(values >= PTBXL_AGE_CODED_300, 90.0, values)
        keep = np.isfinite(values)
        what = f"an {column}" if column[:1] in "aeiou" else f"a {column}"
    else:
        keep = np.isin(values, spec.values)
        what = f"{column} {'/'.join(f'{v:g}' for v in spec.values)}"
    if not keep.any():
        raise DataError(f"{records.name}: task {name!r} is empty (no record has {what})")
    return _task_data(records, name, list(spec.classes), values[keep].astype(np.float32)[:, None], keep, spec.kind)


def _any_text_task(records: RecordSet, spec: T.Task) -> TaskData:
    meta = records.meta
    missing = [c for c in spec.columns if c not in meta.columns]
    if missing:
        raise DataError(f"{records.name}: {spec.name} columns {missing} missing")
    flagged = np.array([any(_nonempty(row[c]) for c in spec.columns)
                        for _, row in meta[list(spec.columns)].iterrows()], dtype=np.float32)
    return _task_data(records, spec.name, list(spec.classes), flagged[:, None], np.ones(len(meta), bool), spec.kind)


def make_task(records: RecordSet, task: str) -> TaskData:
    """Inputs and targets of ``task`` (its ``ecg_keras.tasks.Task`` record; see the module docstring)."""
    meta = records.meta
    spec = T.find(task)
    if spec is not None and spec.source == T.COLUMN:
        return _column_task(records, spec)
    if is_ptbxl(records):
        if spec is not None and spec.source == T.ANY_TEXT:
            return _any_text_task(records, spec)
        if spec is None or spec.source != T.STATEMENTS:
            raise ValueError(f"unknown task {task!r} for {records.name}; one of {T.names()}")
        return _multilabel(records, task, statement_labels(meta, records.statements, task))
    if task not in label_tasks(records):
        raise ValueError(f"unknown task {task!r} for {records.name}; one of {available_tasks(records)}")
    if "labels" not in meta.columns:
        raise DataError(f"{records.name}: no 'labels' column in the metadata")
    return _multilabel(records, task, [list(x) if isinstance(x, (list, tuple)) else [] for x in meta["labels"]])


# --------------------------------------------------------------------------- splits
def split(task_data: TaskData, scheme: str = "strat", seed: int = 0) -> Splits:
    """Train / validation / test views of ``task_data``."""
    n = len(task_data)
    if scheme == "strat":
        folds = np.asarray(task_data.folds)
        if not np.isin(folds, np.arange(1, 11)).all():
            raise DataError(f"task {task_data.task!r}: strat folds must be 1..10, found {sorted(set(folds.tolist()))[:5]}")
        parts = (np.isin(folds, TRAIN_FOLDS), folds == VAL_FOLD, folds == TEST_FOLD)
    elif scheme == "random":
        perm = np.random.default_rng(seed).permutation(n)
        n_test = n_val = int(round(n / 10))
        test, val = np.zeros(n, bool), np.zeros(n, bool)
        test[perm[:n_test]] = True
        val[perm[n_test:n_test + n_val]] = True
        parts = (~(test | val), val, test)
    else:
        raise ValueError(f"unknown split scheme {scheme!r}; one of {SCHEMES}")
    return Splits(*(task_data.subset(p) for p in parts))


def stratified_folds(labels: Sequence[Sequence[str]], n_folds: int = 10, seed: int = 0) -> np.ndarray:
    """Fold numbers 1..n_folds by iterative stratification over multi-labels (Sechidis et al. 2011).

    Deterministic for a given ``seed``. Records without any label count as one extra label so
    they spread evenly too.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    sets = [set(map(str, x)) or {"\0none"} for x in labels]
    classes = sorted(set().union(*sets))
    index = {c: j for j, c in enumerate(classes)}
    y = np.zeros((n, len(classes)), bool)
    for i, s in enumerate(sets):
        y[i, [index[c] for c in s]] = True
    desired = np.tile(y.sum(0) / n_folds, (n_folds, 1)).astype(np.float64)
    desired_total = np.full(n_folds, n / n_folds)
    fold = np.full(n, -1, np.int64)
    order = rng.permutation(n)
    remaining = np.ones(n, bool)
    while remaining.any():
        counts = y[remaining].sum(0)
        counts = np.where(counts > 0, counts, np.iinfo(np.int64).max)
        label = int(np.argmin(counts))
        for i in order[(y[order, label]) & remaining[order]]:
            best = np.flatnonzero(desired[:, label] == desired[:, label].max())
            if len(best) > 1:
                best = best[desired_total[best] == desired_total[best].max()]
            f = int(best[0]) if len(best) == 1 else int(rng.choice(best))
            fold[i] = f
            remaining[i] = False
            desired[f, y[i]] -= 1
            desired_total[f] -= 1
    return fold + 1

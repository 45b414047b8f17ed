"""Task views of a RecordSet (docs/PROTOCOL.md "Data") and train/validation/test splits.

PTB-XL record sets (``meta`` has ``scp_codes`` and ``statements`` is set) answer

* statement tasks ``all``, ``diagnostic``, ``subdiagnostic``, ``superdiagnostic``, ``form``,
  ``rhythm``: likelihoods ignored (a key present counts); records without a label for the task
  are dropped; classes are the sorted label names present; ``y`` multi-hot float32;
* ``age`` (kind "regression", y (n, 1); PTB-XL codes ages above 89 as 300, these become 90),
  ``sex`` (kind "binary", y = 1 for female), ``quality`` (kind "binary", y = 1 when any of
  static_noise, burst_noise, baseline_drift is non-empty).

Other record sets (ICBEB2018, LUDB, generic WFDB folders) keep their labels as a list of
strings in a ``labels`` meta column; they answer their own label task name from
``LABEL_TASKS`` (ICBEB2018 ``"all"``, LUDB ``"rhythm"``, anything else ``"all"``) and ``age`` /
``sex`` when those meta columns are present.

Splits: ``scheme="strat"`` uses ``strat_fold`` (1-8 train, 9 validation, 10 test);
``scheme="random"`` is a seeded random record-wise (not patient-wise) split with the same
8/1/1 proportions.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import DataError, RecordSet, Splits, TaskData

STATEMENT_TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
TASKS = STATEMENT_TASKS + ("age", "sex", "quality")
LABEL_TASKS = {"icbeb2018": ("all",), "ludb": ("rhythm",)}
DEFAULT_LABEL_TASKS = ("all",)
QUALITY_COLUMNS = ("static_noise", "burst_noise", "baseline_drift")
TRAIN_FOLDS, VAL_FOLD, TEST_FOLD = tuple(range(1, 9)), 9, 10
PTBXL_AGE_CODED_300 = 300  # PTB-XL writes 300 for ages above 89
SCHEMES = ("strat", "random")


def is_ptbxl(records: RecordSet) -> bool:
    return records.statements is not None and "scp_codes" in records.meta.columns


def available_tasks(records: RecordSet) -> tuple[str, ...]:
    """Task names ``make_task`` accepts for this record set."""
    if is_ptbxl(records):
        return TASKS
    extra = tuple(t for t in ("age", "sex") if t in records.meta.columns)
    return label_tasks(records) + extra


def label_tasks(records: RecordSet) -> tuple[str, ...]:
    return LABEL_TASKS.get(records.name, DEFAULT_LABEL_TASKS)


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
    """Per record, the sorted label set of a statement task."""
    if task not in STATEMENT_TASKS:
        raise ValueError(f"unknown statement task {task!r}; one of {STATEMENT_TASKS}")
    check_scp_codes(meta, statements)
    if task == "all":
        return [sorted(codes) for codes in meta["scp_codes"]]
    if task in ("form", "rhythm"):
        keep = _flag(statements, task)
        return [sorted(c for c in codes if c in keep) for codes in meta["scp_codes"]]
    diagnostic = _flag(statements, "diagnostic")
    if task == "diagnostic":
        return [sorted(c for c in codes if c in diagnostic) for codes in meta["scp_codes"]]
    column = "diagnostic_subclass" if task == "subdiagnostic" else "diagnostic_class"
    mapping = {code: str(v) for code, v in statements[column].items()
               if code in diagnostic and isinstance(v, str) and v.strip()}
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
    return _task_data(records, task, classes, y, keep, "multilabel")


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


def make_task(records: RecordSet, task: str) -> TaskData:
    """Inputs and targets of ``task`` (see the module docstring for the task list)."""
    meta = records.meta
    if task == "age":
        if "age" not in meta.columns:
            raise DataError(f"{records.name}: no 'age' column for the age task")
        age = pd.to_numeric(meta["age"], errors="coerce").to_numpy(dtype=np.float64)
        if is_ptbxl(records):
            age = np.where(age >= PTBXL_AGE_CODED_300, 90.0, age)
        keep = np.isfinite(age)
        if not keep.any():
            raise DataError(f"{records.name}: task 'age' is empty (no record has an age)")
        return _task_data(records, task, ["age"], age[keep].astype(np.float32)[:, None], keep, "regression")
    if task == "sex":
        if "sex" not in meta.columns:
            raise DataError(f"{records.name}: no 'sex' column for the sex task")
        sex = pd.to_numeric(meta["sex"], errors="coerce").to_numpy(dtype=np.float64)
        keep = np.isin(sex, (0.0, 1.0))
        if not keep.any():
            raise DataError(f"{records.name}: task 'sex' is empty (no record has sex 0/1)")
        return _task_data(records, task, ["female"], sex[keep].astype(np.float32)[:, None], keep, "binary")
    if is_ptbxl(records):
        if task == "quality":
            missing = [c for c in QUALITY_COLUMNS if c not in meta.columns]
            if missing:
                raise DataError(f"{records.name}: quality columns {missing} missing")
            noisy = np.array([any(_nonempty(row[c]) for c in QUALITY_COLUMNS)
                              for _, row in meta[list(QUALITY_COLUMNS)].iterrows()], dtype=np.float32)
            return _task_data(records, task, ["noisy"], noisy[:, None], np.ones(len(meta), bool), "binary")
        if task not in STATEMENT_TASKS:
            raise ValueError(f"unknown task {task!r} for {records.name}; one of {TASKS}")
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

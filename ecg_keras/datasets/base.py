"""Containers shared by every dataset reader: a set of records and a task view of it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ecg_keras.io.base import LEAD_NAMES, LEADS, DataError  # noqa: F401  (re-exported; home: io.base)
from ecg_keras.tasks import MULTILABEL


def read_table(path, what: str, required=(), **read_csv) -> pd.DataFrame:
    """A CSV table (``pandas.read_csv(path, **read_csv)``), or DataError naming the file when it is
    missing, unreadable or lacks one of the ``required`` columns; ``what`` names it in the message."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        table = pd.read_csv(path, **read_csv)
    except Exception as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} missing")
    return table


@dataclass(frozen=True)
class RecordSet:
    """Signals of one dataset plus one metadata row per record.

    ``signals`` is either a float32 array (n, length, 12) (fixed-length datasets, possibly a
    memmap; a subset of a memmap is a :class:`RecordView` of it) or a list of float32 (length_i, 12) arrays (variable-length datasets), in mV, lead
    order ``LEADS``. ``meta`` is indexed by record id in the same order as ``signals``.
    """

    name: str
    sampling_rate: int
    signals: np.ndarray | list[np.ndarray]
    meta: pd.DataFrame
    statements: pd.DataFrame | None = None
    synthetic: bool = False

    def __len__(self) -> int:
        return len(self.meta)

    def subset(self, mask_or_idx) -> "RecordSet":
        idx = _to_index(mask_or_idx, len(self))
        return RecordSet(self.name, self.sampling_rate, _take(self.signals, idx),
                         self.meta.iloc[idx], self.statements, self.synthetic)


@dataclass(frozen=True)
class TaskData:
    """Inputs and targets of one task: ``y`` is (n, n_classes) float32 (multi-hot or a scalar target)."""

    task: str
    classes: list[str]
    signals: np.ndarray | list[np.ndarray]
    y: np.ndarray
    ids: np.ndarray
    folds: np.ndarray
    sampling_rate: int
    meta: pd.DataFrame = field(repr=False, default=None)
    kind: str = MULTILABEL  # a key of ecg_keras.tasks.KINDS

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask_or_idx) -> "TaskData":
        idx = _to_index(mask_or_idx, len(self))
        return TaskData(self.task, self.classes, _take(self.signals, idx), self.y[idx], self.ids[idx],
                        self.folds[idx], self.sampling_rate,
                        None if self.meta is None else self.meta.iloc[idx], self.kind)


@dataclass(frozen=True)
class Splits:
    train: TaskData
    val: TaskData
    test: TaskData


def _to_index(mask_or_idx, n: int) -> np.ndarray:
    arr = np.asarray(mask_or_idx)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"boolean mask of shape {arr.shape} for {n} records")
        return np.flatnonzero(arr)
    return arr.astype(np.int64)


class RecordView:
    """Records ``index`` of a fixed-length (n, length, leads) array, read only when used.

    What a subset of the signal cache's memory map is (``RecordSet.subset``, ``TaskData.subset``):
    taking the 80 % training split of PTB-XL at 500 Hz copies no 4 GB. It stands for the array
    ``base[index]``: ``shape``, ``dtype``, ``len``; an integer gives that record (a view of
    ``base``), a slice, index array or mask gives another view; ``np.asarray(view)`` copies.
    """

    def __init__(self, base: np.ndarray, index):
        if base.ndim != 3:
            raise ValueError(f"RecordView needs an (n, length, leads) array, got shape {base.shape}")
        self.base, self.index = base, np.asarray(index, dtype=np.int64).reshape(-1)

    shape = property(lambda self: (len(self.index),) + tuple(self.base.shape[1:]))
    dtype = property(lambda self: self.base.dtype)
    ndim = property(lambda self: 3)
    size = property(lambda self: int(np.prod(self.shape)))
    nbytes = property(lambda self: self.size * self.base.itemsize)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            head, rest = key[0], key[1:]
            return self[head][rest] if isinstance(head, (int, np.integer)) else np.asarray(self[head])[(slice(None),) + rest]
        if isinstance(key, (int, np.integer)):
            return self.base[self.index[key]]
        return RecordView(self.base, self.index[key])

    def __iter__(self):
        return (self.base[i] for i in self.index)

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.base[self.index])  # a plain array (fancy indexing a memmap copies)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"RecordView(shape={self.shape}, dtype={self.dtype})"


def _take(signals, idx: np.ndarray):
    if isinstance(signals, RecordView) or (isinstance(signals, np.memmap) and signals.ndim == 3):
        return RecordView(signals, idx) if isinstance(signals, np.memmap) else signals[idx]
    if isinstance(signals, np.ndarray):
        return signals[idx]
    return [signals[i] for i in idx]

"""Containers shared by every dataset reader: a set of records and a task view of it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The benchmark's lead order (the one spelling shown to people and stored in exports).
LEAD_NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LEADS = tuple(name.upper() for name in LEAD_NAMES)  # as compared with file headers (case-insensitive)


class DataError(ValueError):
    """Bad or missing input data; the message names the file and the problem."""


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
    memmap) or a list of float32 (length_i, 12) arrays (variable-length datasets), in mV, lead
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
    kind: str = "multilabel"  # multilabel | binary | regression

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


def _take(signals, idx: np.ndarray):
    if isinstance(signals, np.ndarray):
        return signals[idx]
    return [signals[i] for i in idx]

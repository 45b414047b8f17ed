"""Reading what ``ecg-keras evaluate`` scores: prediction arrays and run directories, with checks that
name the file, row and column of anything a metric must not see (non-finite or out-of-range
predictions, labels that are not 0/1). Run directories are read by :func:`ecg_keras.runs.resolve`
(which also reads and checks their ``predictions/*.npz``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecg_keras.runs import Run, RunError, first_bad, resolve

NAIVE = "naive"
ENSEMBLE = "ensemble"


class EvaluationError(RunError):
    """Unusable input (missing file, inconsistent runs); the message says which and why. A run's
    unreadable files raise :class:`ecg_keras.runs.RunError`, its base."""


# --------------------------------------------------------------------------- raw-array mode

def read_npy(path, what: str) -> np.ndarray:
    """A plain .npy array, or EvaluationError naming ``what``, the file and the problem (never a traceback)."""
    p = Path(path)
    if not p.is_file():
        raise EvaluationError(f"{what}: {p} does not exist")
    if p.stat().st_size == 0:
        raise EvaluationError(f"{what}: {p} is empty (0 bytes)")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise EvaluationError(f"{what}: {p} is not a readable .npy array ({e})") from e
    if not isinstance(arr, np.ndarray):  # np.load returns an NpzFile for .npz archives
        arr.close()
        raise EvaluationError(f"{what}: {p} is an .npz archive; give a single .npy array "
                              "(np.save(path, array))")
    return arr


def load_array(path: str, what: str) -> np.ndarray:
    arr = read_npy(path, what)
    if arr.dtype.kind not in "biuf":
        raise EvaluationError(f"{what}: {path} holds {arr.dtype} values; expected numbers "
                              "(0/1 labels or probabilities)")
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise EvaluationError(f"{what}: {path} must be a non-empty (n_samples, n_classes) array, "
                              f"got shape {arr.shape}")
    return arr


def check_labels(y: np.ndarray, where: str, ids=None) -> None:
    """Labels must be finite 0/1 values."""
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise EvaluationError(f"{where}: labels must be 0 or 1, found {y[r, c].item()} at "
                              f"{first_bad(bad, ids)}")


def read_runs(paths) -> list[Run]:
    """The run directories to score, their predictions read and checked now (``test`` required),
    named uniquely (:func:`name_runs`)."""
    runs = [resolve(p) for p in paths]
    for r in runs:
        r.splits  # noqa: B018  (read and checked before anything is written)
    name_runs(runs)
    return runs


def name_runs(runs: list[Run]) -> None:
    """Model names unique within a (dataset, task) group: arch, else arch_seedS, else dir name."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(r.key, []).append(r)
    for members in groups.values():
        counts = pd.Series([r.arch for r in members]).value_counts()
        for r in members:
            r.name = r.arch if counts[r.arch] == 1 else f"{r.arch}_seed{r.config.get('seed', '?')}"
        names = [r.name for r in members]
        for r in members:
            if names.count(r.name) > 1:
                r.name = f"{r.arch}_{r.path.name}"
        if ENSEMBLE in [r.name for r in members] and len(members) > 1:
            raise EvaluationError("a run is named 'ensemble', which clashes with the computed ensemble")

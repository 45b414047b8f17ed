"""Reading what evaluate.py scores: prediction arrays and run directories, with checks that
name the file, row and column of anything a metric must not see (non-finite or out-of-range
predictions, labels that are not 0/1)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NAIVE = "naive"
ENSEMBLE = "ensemble"


class EvaluationError(ValueError):
    """Unusable input (missing file, inconsistent runs); the message says which and why."""


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


def _first_bad(mask: np.ndarray, ids=None) -> str:
    """'row 3 (record id X), column 1; 7 row(s) affected' for the first True of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    r = int(rows[0])
    c = int(np.flatnonzero(mask[r])[0])
    rid = f" (record id {ids[r]})" if ids is not None else ""
    return f"row {r}{rid}, column {c}; {len(rows)} row(s) affected"


def check_labels(y: np.ndarray, where: str, ids=None) -> None:
    """Labels must be finite 0/1 values."""
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise EvaluationError(f"{where}: labels must be 0 or 1, found {y[r, c].item()} at "
                              f"{_first_bad(bad, ids)}")


def check_predictions(p: np.ndarray, where: str, ids=None, probabilities: bool = True) -> None:
    """Predictions must be finite (a NaN is a diverged model, never a score) and, for
    probability tasks, within [0, 1]."""
    bad = ~np.isfinite(p)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise EvaluationError(f"{where}: non-finite prediction {p[r, c].item()} at {_first_bad(bad, ids)}; "
                              "the model diverged or its output is corrupt, nothing is scored")
    if probabilities:
        bad = (p < 0) | (p > 1)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise EvaluationError(f"{where}: predictions must be probabilities in [0, 1], found "
                                  f"{p[r, c].item()} at {_first_bad(bad, ids)}")


@dataclass
class Predictions:
    ids: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    healthy: np.ndarray | None = None

    def aligned(self, order_ids: np.ndarray, where: str) -> "Predictions":
        """Rows reordered to ``order_ids`` (same id set required)."""
        pos = pd.Index(self.ids).get_indexer(order_ids)
        if (pos < 0).any() or len(self.ids) != len(order_ids):
            raise EvaluationError(f"{where}: record ids differ from the other runs of the same "
                                  "dataset/task; runs must be scored on the same records")
        return Predictions(order_ids, self.y_true[pos], self.y_pred[pos],
                           None if self.healthy is None else self.healthy[pos])


@dataclass
class Run:
    path: Path
    config: dict
    classes: list[str]
    splits: dict[str, Predictions]
    history: Path | None = None
    name: str = ""

    @property
    def arch(self) -> str:
        return str(self.config.get("arch") or self.path.name)

    @property
    def key(self) -> tuple[str, str]:
        return str(self.config.get("dataset", "dataset")), str(self.config.get("task", "task"))

    @property
    def kind(self) -> str:
        kind = self.config.get("kind")
        if kind:
            return str(kind)
        if self.key[1] == "age":
            return "regression"
        return "binary" if self.splits["test"].y_true.shape[1] == 1 else "multilabel"


def _read_json(path: Path):
    if not path.is_file():
        raise EvaluationError(f"{path} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EvaluationError(f"{path}: invalid JSON ({e})") from e


def _load_predictions(path: Path, n_classes: int) -> Predictions:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"ids", "y_true", "y_pred"} - set(z.files)
            if missing:
                raise EvaluationError(f"{path}: missing array(s) {sorted(missing)}")
            ids, yt, yp = z["ids"], z["y_true"], z["y_pred"]
            healthy = z["healthy"].astype(bool) if "healthy" in z.files else None
    except (ValueError, EOFError, OSError, AttributeError) as e:  # 0-byte, truncated, not an .npz
        if isinstance(e, EvaluationError):
            raise
        raise EvaluationError(f"{path}: not a readable predictions .npz ({e})") from e
    if yt.dtype.kind not in "biuf" or yp.dtype.kind not in "biuf":
        raise EvaluationError(f"{path}: y_true ({yt.dtype}) and y_pred ({yp.dtype}) must be numeric")
    yt = yt[:, None] if yt.ndim == 1 else yt
    yp = yp[:, None] if yp.ndim == 1 else yp
    if yt.shape != yp.shape or yt.shape[0] != len(ids):
        raise EvaluationError(f"{path}: ids {ids.shape}, y_true {yt.shape}, y_pred {yp.shape} "
                              "do not agree")
    if yt.shape[1] != n_classes:
        raise EvaluationError(f"{path}: {yt.shape[1]} columns but classes.json lists {n_classes}")
    if len(np.unique(ids)) != len(ids):
        raise EvaluationError(f"{path}: duplicate record ids")
    if ids.dtype == object:
        ids = ids.astype(str)
    check_predictions(yp, f"{path} (y_pred)", ids, probabilities=False)  # range: per task kind, see run_dirs
    return Predictions(ids, yt.astype(np.float64), yp.astype(np.float64), healthy)


def load_run(run_dir) -> Run:
    """Read one run directory (see module docstring)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise EvaluationError(f"run directory {path} does not exist")
    config = _read_json(path / "config.json")
    classes = [str(c) for c in _read_json(path / "classes.json")]
    splits = {}
    for split in ("test", "val", "train"):
        f = path / "predictions" / f"{split}.npz"
        if f.is_file():
            splits[split] = _load_predictions(f, len(classes))
    if "test" not in splits:
        raise EvaluationError(f"{path / 'predictions' / 'test.npz'} is missing")
    hist = path / "history.csv"
    return Run(path, config, classes, splits, hist if hist.is_file() else None)


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

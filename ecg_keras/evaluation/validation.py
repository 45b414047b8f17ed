"""Score a model on a real labelled folder: per-class AUC with bootstrap intervals.

    ecg-keras evaluate MODEL --dataset FOLDER [--labels CSV] [--out DIR] [--bootstrap N] [--seed S]

``validate(model, folder)`` reads the folder with the package's dataset readers, maps its labels
onto the model's classes (:mod:`ecg_keras.datasets.labelmap`: LUDB rhythm strings, SNOMED-CT codes
of CinC ``# Dx:`` headers, SCP codes), predicts every record with the model's own whole-record
rule (:func:`ecg_keras.windows.predict_records`) and scores each class: ROC AUC, its 90 %
bootstrap interval (5 %/95 % quantiles over resamples holding >= 1 positive and >= 1 negative of
the class) and the number of positive records. A class with no positive (or no negative)
record in the folder is reported as n/a.

The folder is read as

* LUDB when it holds ``ludb.csv`` (labels: the ``Rhythms`` column);
* a label table when ``labels=`` is given or it holds ``labels.csv`` (columns ``record`` and
  ``labels``: labels separated by ``,`` or ``;``; or 0/1 columns, one per label; see
  :func:`ecg_keras.datasets.wfdb_folder.load_wfdb_folder`);
* else WFDB records with PhysioNet/CinC ``# Dx:`` header lines.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import DataError
from ecg_keras.datasets.labelmap import to_scp

from . import bootstrap as bs
from .metrics import per_class_auc

DEFAULT_N_BOOTSTRAP = 1000
LABELS_CSV = "labels.csv"
LUDB_CSV = "ludb.csv"
#: Columns of :attr:`Validation.table` (one row per model class).
COLUMNS = ("auc", "lower", "upper", "n_positive")


@dataclass
class Validation:
    """Per-class scores of one model on one labelled folder (:func:`validate`)."""

    model: str
    dataset: str
    labels: str  # how the labels were read: "ludb", "cinc-dx" or "labels.csv"
    n_records: int
    n_bootstrap: int
    seed: int
    table: pd.DataFrame  # index: the model's classes; COLUMNS (NaN AUC = n/a)
    unmapped: dict[str, int] = field(default_factory=dict)  # dataset label -> records carrying it

    def to_dict(self) -> dict:
        """JSON-ready: NaN scores are None, counts are integers."""
        classes = {c: {"auc": _num(r.auc), "lower": _num(r.lower), "upper": _num(r.upper),
                       "n_positive": int(r.n_positive)} for c, r in self.table.iterrows()}
        return {"model": self.model, "dataset": self.dataset, "labels": self.labels, "n_records": self.n_records,
                "n_bootstrap": self.n_bootstrap, "seed": self.seed, "classes": classes,
                "unmapped_labels": dict(self.unmapped)}

    @classmethod
    def from_dict(cls, d: dict) -> "Validation":
        table = pd.DataFrame.from_dict({c: {k: (np.nan if v[k] is None else v[k]) for k in COLUMNS}
                                        for c, v in d["classes"].items()}, orient="index")
        return cls(d["model"], d["dataset"], d["labels"], int(d["n_records"]), int(d["n_bootstrap"]),
                   int(d["seed"]), table[list(COLUMNS)], dict(d.get("unmapped_labels", {})))

    def markdown(self) -> str:
        """The per-class table in Markdown (model cards)."""
        lines = ["| class | AUC | 90% CI | n positive |", "|---|---|---|---|"]
        for c, r in self.table.iterrows():
            if math.isnan(r.auc):
                lines.append(f"| {c} | n/a | | {int(r.n_positive)} |")
            else:
                lines.append(f"| {c} | {r.auc:.3f} | {r.lower:.3f}-{r.upper:.3f} | {int(r.n_positive)} |")
        return "\n".join(lines)

    def format(self) -> str:
        """A readable console table with a header line."""
        width = max([5] + [len(str(c)) for c in self.table.index])
        lines = [f"{self.model} on {self.dataset} ({self.n_records} records, labels: {self.labels}; "
                 f"90% bootstrap CI over {self.n_bootstrap} resamples, seed {self.seed})",
                 f"{'class':<{width}}  {'AUC':>6}  {'90% CI':<13}  {'n pos':>5}"]
        for c, r in self.table.iterrows():
            score = ("n/a", "") if math.isnan(r.auc) else (f"{r.auc:.3f}", f"{r.lower:.3f}-{r.upper:.3f}")
            lines.append(f"{c:<{width}}  {score[0]:>6}  {score[1]:<13}  {int(r.n_positive):>5}")
        if self.unmapped:
            lines.append("labels meaning none of the model's classes (ignored; records): "
                         + ", ".join(f"{k} ({v})" for k, v in sorted(self.unmapped.items())))
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """``<out_dir>/validation_<dataset>.json`` and ``.csv`` (written to a temporary name, then renamed)."""
        from ecg_keras.files import write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = "validation_" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.dataset)
        frame = self.table.rename_axis("class").reset_index()
        frame["n_positive"] = frame["n_positive"].astype(int)
        frame.insert(0, "dataset", self.dataset)
        frame.insert(0, "model", self.model)
        paths = out / f"{stem}.json", out / f"{stem}.csv"
        write_text(paths[0], json.dumps(self.to_dict(), indent=2))
        write_text(paths[1], frame.to_csv(index=False, float_format="%.4f"))
        return paths


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


# --------------------------------------------------------------------------- reading
def read_labelled_folder(folder, labels=None, sampling_rate: int | None = None, cache_dir=None):
    """``(RecordSet, how the labels were read)`` of a labelled folder (see the module docstring)."""
    from ecg_keras.datasets.wfdb_folder import load_ludb, load_wfdb_folder

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a directory of labelled records")
    if (root / "SYNTHETIC").exists():
        raise DataError(f"{root} holds a SYNTHETIC marker: a validation needs real, labelled records")
    if labels is None and (root / LABELS_CSV).is_file():
        labels = root / LABELS_CSV
    if labels is not None:
        return load_wfdb_folder(root, labels=labels, sampling_rate=sampling_rate, cache_dir=cache_dir), LABELS_CSV
    if (root / LUDB_CSV).is_file():
        return load_ludb(root, sampling_rate=sampling_rate or 500, cache_dir=cache_dir), "ludb"
    records = load_wfdb_folder(root, sampling_rate=sampling_rate, cache_dir=cache_dir)
    if not any(len(v) for v in records.meta["labels"]):
        raise DataError(f"{root}: no record has labels (no ludb.csv, no {LABELS_CSV}, no '# Dx:' header lines); "
                        f"pass a label table (--labels CSV with columns record,labels)")
    return records, "cinc-dx"


def label_matrix(record_labels, classes) -> tuple[np.ndarray, dict[str, int]]:
    """``(y (n_records, n_classes) 0/1, unmapped label -> count)``: record labels mapped onto ``classes``."""
    classes = list(classes)
    y = np.zeros((len(record_labels), len(classes)), dtype=np.float64)
    unmapped: Counter = Counter()
    for i, labels in enumerate(record_labels):
        codes, missed = to_scp(labels)
        unmapped.update(set(missed) | {c for c in codes if c not in classes})
        for code in codes & set(classes):
            y[i, classes.index(code)] = 1.0
    return y, dict(unmapped)


# --------------------------------------------------------------------------- scoring
def class_scores(y_true, y_score, n_bootstrap: int = DEFAULT_N_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """Per column: AUC, 5 %/95 % bootstrap quantiles and positives; NaN AUC when a column has no
    positive or no negative. Resamples of a column hold >= 1 positive and >= 1 negative."""
    y_true, y_score = np.asarray(y_true, np.float64), np.asarray(y_score, np.float64)
    rows = []
    for j in range(y_true.shape[1]):
        y, p = y_true[:, j], y_score[:, j]
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == len(y):
            rows.append((np.nan, np.nan, np.nan, n_pos))
            continue
        idx = bs.draw_bootstrap_indices(np.stack([y, 1 - y], axis=1), n=n_bootstrap, seed=seed)
        samples = per_class_auc(y[idx].T, p[idx].T)  # one column per resample
        s = bs.summarize(per_class_auc(y[:, None], p[:, None])[0], samples)
        rows.append((s["point"], s["lower"], s["upper"], n_pos))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _predictor(model, models_directory):
    """``(name, classes, sampling rate, fn(signals) -> probabilities)`` of a run, release or name,
    or of an already loaded predictor (anything callable with ``classes`` and ``sampling_rate``)."""
    if callable(model) and hasattr(model, "classes") and hasattr(model, "sampling_rate"):
        return str(getattr(model, "name", type(model).__name__)), list(model.classes), int(model.sampling_rate), model
    from ecg_keras.runs import resolve

    run = resolve(model, models_directory).check_complete()
    return run.name, list(run.classes), run.sampling_rate, run.predict_records  # the model's own preprocessing


def validate(model, folder, *, labels=None, n_bootstrap: int = DEFAULT_N_BOOTSTRAP, seed: int = 0,
             models_directory=None, cache_dir=None) -> Validation:
    """Score ``model`` (a run directory, release directory, released name or a loaded
    :class:`ecg_keras.predict.Predictor`) on the labelled records of ``folder``.

    ``labels``: a label table (CSV path or DataFrame) for a folder without its own labels.
    Returns a :class:`Validation` (``.table``: AUC, lower, upper, n_positive per class).
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    name, classes, rate, predict = _predictor(model, models_directory)
    records, how = read_labelled_folder(folder, labels, sampling_rate=rate, cache_dir=cache_dir)
    y, unmapped = label_matrix(records.meta["labels"].tolist(), classes)
    signals = list(records.signals)
    probabilities = np.asarray(predict(signals), dtype=np.float64)
    table = class_scores(y, probabilities, n_bootstrap, seed)
    table.index = pd.Index(classes, name="class")
    return Validation(model=name, dataset=Path(folder).expanduser().resolve().name, labels=how,
                      n_records=len(signals), n_bootstrap=int(n_bootstrap), seed=int(seed), table=table,
                      unmapped=unmapped)

"""Scoring: predictions of runs -> metrics, with the benchmark's bootstrap intervals.

The one public scoring API, called by the end of every training run (:func:`split_metrics`),
``ecg-keras evaluate``, the training-size sweep and ``reproduce``:

* :func:`split_metrics` — headline metrics of one split (macro AUC and Fmax | AUC and accuracy |
  MAE and R²); :func:`headline_metric` names the one a run is judged by;
* :func:`scorable_classes` — the classes with a positive and a negative record (AUC is defined);
* :func:`group_models` — runs of one (dataset, task) aligned on record ids, plus their ensemble;
* :func:`threshold_metrics` — the challenge's F_beta/G_beta with thresholds from train (else val)
  predictions;
* :func:`stored_bootstrap` — bootstrap resamples drawn once per set of records and stored, so
  every model of a table is scored on the same resamples;
* :func:`score_models` — every model's metrics on those resamples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ecg_keras import tasks
from ecg_keras.files import atomic_path
from ecg_keras.runs import Predictions, Run

from . import bootstrap as bs
from . import metrics as M
from .runs import ENSEMBLE, NAIVE, EvaluationError


# --------------------------------------------------------------------------- one split
def headline_metric(kind: str) -> str:
    """The metric a run of this task kind is judged by (its ``Kind.headline``)."""
    return tasks.kind(kind).headline


def split_metrics(kind: str, y_true, y_pred) -> dict:
    """Headline metrics of a split: macro AUC (+Fmax) | AUC, accuracy | MAE, R². Classes without
    both labels in the split are left out of the macro AUC (``classes_scored`` then says how many
    were scored)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if kind == tasks.REGRESSION:
        return {"mae": M.mae(y_true, y_pred), "r2": M.r2(y_true, y_pred)}
    per_class = M.per_class_auc(y_true, y_pred)
    scored = int(np.isfinite(per_class).sum())
    out = {"macro_auc": float(np.nanmean(per_class)) if scored else float("nan")}
    if scored == per_class.size:
        out["macro_auc"] = M.macro_auc(y_true, y_pred)
    else:
        out["classes_scored"] = scored  # classes with both labels present in this split
    if kind == tasks.BINARY:
        out["auc"] = out["macro_auc"]
        out["accuracy"] = M.accuracy(y_true, y_pred)
    else:
        out["fmax"] = M.fmax(y_true, y_pred)
    return out


def scorable_classes(y_true) -> np.ndarray:
    """Boolean mask of the classes with at least one positive and one negative record."""
    y = np.asarray(y_true) > 0.5
    return y.any(axis=0) & (~y).any(axis=0)


# --------------------------------------------------------------------------- groups of runs
@dataclass
class ScoredModel:
    """Aligned predictions of one scored model (a run or the ensemble) in a group."""

    name: str
    splits: dict[str, Predictions]
    runs: list[str] = field(default_factory=list)
    history: Path | None = None

    def subset(self, keep) -> "ScoredModel":
        """The same model with only the classes ``keep`` (a boolean mask or indices)."""
        splits = {k: Predictions(p.ids, p.y_true[:, keep], p.y_pred[:, keep], p.healthy)
                  for k, p in self.splits.items()}
        return ScoredModel(self.name, splits, list(self.runs), self.history)


def group_models(members: Sequence[Run]) -> list[ScoredModel]:
    """Runs of one (dataset, task) aligned on sorted record ids, plus their ensemble (the mean
    probability of two or more runs, naive runs excluded)."""
    ref = members[0]
    for r in members[1:]:
        if r.classes != ref.classes:
            raise EvaluationError(f"{r.path}: classes differ from {ref.path} (same dataset/task)")
    aligned: list[dict[str, Predictions]] = [{} for _ in members]
    for split in ("test", "val", "train"):
        if not all(split in r.splits for r in members):
            continue
        order = np.sort(ref.splits[split].ids)
        for i, r in enumerate(members):
            aligned[i][split] = r.splits[split].aligned(order, f"{r.path}/predictions/{split}.npz")
            if not np.array_equal(aligned[i][split].y_true, aligned[0][split].y_true):
                raise EvaluationError(f"{r.path}/predictions/{split}.npz: y_true differs from "
                                      f"{ref.path} on the same records")
    models = [ScoredModel(r.name, a, [str(r.path)], r.history) for r, a in zip(members, aligned)]
    base = [m for m, r in zip(models, members) if r.arch != NAIVE]
    if len(base) >= 2:
        ens = {}
        for split, p0 in base[0].splits.items():
            ens[split] = Predictions(p0.ids, p0.y_true, np.mean([m.splits[split].y_pred for m in base], axis=0),
                                     p0.healthy)
        models.append(ScoredModel(ENSEMBLE, ens, [r for m in base for r in m.runs]))
    return models


def threshold_metrics(model: ScoredModel) -> tuple[dict, str | None]:
    """Challenge F/G metric functions with thresholds from train (else val) predictions, and the
    split the thresholds came from (None: no such split, no functions)."""
    src = "train" if "train" in model.splits else ("val" if "val" in model.splits else None)
    if src is None:
        return {}, None
    thr = M.find_optimal_thresholds(model.splits[src].y_true, model.splits[src].y_pred)

    def f_beta(y, p):
        return M.challenge_metrics(y, M.apply_thresholds(p, thr))["F_beta_macro"]

    def g_beta(y, p):
        return M.challenge_metrics(y, M.apply_thresholds(p, thr))["G_beta_macro"]

    return {"F_beta": f_beta, "G_beta": g_beta}, src


# --------------------------------------------------------------------------- bootstrap
def stored_bootstrap(y_true, kind: str, records, n: int, seed: int, store: Path, stem: str) -> np.ndarray:
    """Reuse the resamples stored as ``store/<stem>_ids.npy`` for exactly these records and count,
    else draw them (stratified on ``y_true``; plain for regression) and store them with the records
    they index (``<stem>_records.npy``)."""
    store = Path(store)
    ids_f, rec_f = store / f"{stem}_ids.npy", store / f"{stem}_records.npy"
    if ids_f.is_file() and rec_f.is_file():
        old_rec = np.load(rec_f, allow_pickle=False)
        idx = np.load(ids_f, allow_pickle=False)
        if old_rec.shape == records.shape and np.array_equal(old_rec, records) and len(idx) == n:
            return idx
    y = np.ones((len(y_true), 1)) if kind == tasks.REGRESSION else y_true
    idx = bs.draw_bootstrap_indices(y, n=n, seed=seed)
    bs.save_indices(ids_f, idx)
    with atomic_path(rec_f) as tmp:
        np.save(tmp, np.asarray(records), allow_pickle=False)
    return idx


def point_scores(y_true, y_pred, metric_fns: Mapping[str, Callable]) -> dict:
    """Metrics without an interval, in :func:`score_models`' layout (when no resample is possible)."""
    return {k: {"point": float(fn(y_true, y_pred)), "mean": np.nan, "lower": np.nan, "upper": np.nan}
            for k, fn in metric_fns.items()}


def score_models(models: Sequence[ScoredModel], y_true, indices, kind: str = tasks.MULTILABEL, *,
                 challenge: bool = False, split: str = "test", rows=slice(None)) -> dict:
    """``{model name: ({metric: {point, mean, lower, upper}}, threshold source)}``: every model's
    default metrics of ``kind`` (+ F_beta/G_beta with ``challenge``) on ``split`` (rows ``rows``),
    with the same bootstrap ``indices`` (None: point estimates only)."""
    out = {}
    for model in models:
        fns, src = dict(M.default_metrics(kind)), None
        if challenge:
            extra, src = threshold_metrics(model)
            fns.update(extra)
        pred = model.splits[split].y_pred[rows]
        res = bs.bootstrap_scores(y_true, pred, fns, indices) if indices is not None else \
            point_scores(y_true, pred, fns)
        out[model.name] = (res, src)
    return out

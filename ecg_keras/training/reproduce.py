"""``reproduce``: one command from PTB-XL to the paper's Table II and a released model zoo.

    python -m ecg_keras.training.reproduce --data-dir PTBXL --out DIR            # the whole grid
    python -m ecg_keras.training.reproduce --data-dir PTBXL --out DIR --dry-run  # the estimate only
    python -m ecg_keras.training.reproduce --dataset synthetic --out DIR --tasks superdiagnostic,rhythm \\
        --archs fcn_wang,naive --epochs 1                                          # the demo

Every (task, architecture, seed) run of the grid goes to ``DIR/runs/<task>/<arch>/seed<seed>`` (a
normal run directory, see :mod:`ecg_keras.training.rundir`). A run that is COMPLETE is reused; one
that holds a config.json was interrupted and is continued with ``resume=True`` (from its last
per-epoch checkpoint); anything else starts afresh. So the same command, run again after a crash
or a kill, picks up where it stopped, and a finished grid trains nothing.

Then every run is scored on the test fold with the benchmark's bootstrap (the resamples of a task
are drawn once, seeded, stored in ``DIR/bootstrap/`` and shared by all models), and written:

* ``DIR/table.md``, ``DIR/table.csv``: Table II's layout, macro AUC with its 90 % interval per task
  beside the paper's value (:mod:`ecg_keras.evaluation.published`) and the difference, Fmax, and
  F_beta/G_beta for ICBEB2018; ``DIR/results_long.csv`` holds every number;
* ``DIR/figures/<dataset>_<task>.png``: Figure-2 style bars with intervals, the paper's values marked;
* ``DIR/release/``: the best seed (by validation macro AUC) of every network per task, released
  with :func:`ecg_keras.export.release_run` (``MANIFEST.json`` with sha256, model cards) plus a
  SavedModel and an ONNX file each, and ``SHA256SUMS`` over the folder.

``naive`` (training prevalence), ``wavelet_nn`` (the paper's Wavelet+NN, at most 30 epochs, best
validation loss) and ``ensemble`` (mean probability of the best runs of all other models but naive;
computed, not trained) complete the table; they are not released (no window model to serve).

Any number of processes (on one machine, or on many sharing ``DIR``) may run the same command:
each run is claimed through its run lock, so none is trained twice; an idle process waits while
others hold runs and takes over (resumes) a run whose process died; the process that sees the grid
complete first writes the table, figures and release (``DIR/collected.json``); ``--collect`` writes
them from the runs complete so far (docs/REPRODUCE.md "Many processes, many machines").

Progress (run, epoch, time left for the grid) goes to the console, each run's output to
``DIR/logs/<task>-<arch>-seed<seed>.log``; a failed run is recorded and the grid goes on; the
failures are summarised at the end and make the exit code 1. ``DIR/runs.csv`` lists every run's
state and times.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.training.config import NAMED_DATASETS, TrainConfig

#: The six statement tasks of Table II, in the paper's column order.
STATEMENT_TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
NAIVE, WAVELET, ENSEMBLE = "naive", "wavelet_nn", "ensemble"
BASELINES = (NAIVE, WAVELET)  # trained here (no one-cycle run), never released
#: Wavelet+NN trains at most this many epochs and keeps the best validation loss (PROTOCOL.md).
WAVELET_EPOCHS = 30
#: Table II's rows (PTB-XL) and the ICBEB2018 table's, per dataset.
DEFAULT_ARCHS = {
    "ptbxl": ("inception1d", "xresnet1d101", "resnet1d_wang", "fcn_wang", "lstm_bidir", "lstm", WAVELET, NAIVE,
              ENSEMBLE),
    "icbeb2018": ("xresnet1d101", "resnet1d_wang", "inception1d", "lstm", "fcn_wang", WAVELET, ENSEMBLE),
}
DEFAULT_ARCHS["synthetic"] = DEFAULT_ARCHS["ptbxl"]
DEFAULT_TASKS = {"ptbxl": STATEMENT_TASKS, "synthetic": STATEMENT_TASKS, "icbeb2018": ("all",)}
DATASETS = tuple(NAMED_DATASETS)
#: PTB-XL has 21,837 records and folds 1-8 (of 10) train; used only when the data is not on disk.
PTBXL_TRAIN_UPPER_BOUND = math.ceil(21_837 * 8 / 10)


class ReproduceError(ValueError):
    """Unusable arguments (unknown task, architecture, dataset); the message says which."""


@dataclass(frozen=True)
class RunSpec:
    task: str
    arch: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.task}-{self.arch}-seed{self.seed}"

    def path(self, out: Path) -> Path:
        return Path(out) / "runs" / self.task / self.arch / f"seed{self.seed}"


@dataclass
class Outcome:
    """What :func:`reproduce` did: the grid's runs, what failed, and the files written."""

    out: Path
    runs: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    estimate: dict | None = None
    table: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


# --------------------------------------------------------------------------- the grid
def grid(tasks: Sequence[str], archs: Sequence[str], seeds: Sequence[int]) -> list[RunSpec]:
    """Runs in the order they are trained: task by task; the naive baseline once per task (its
    prediction does not depend on a seed); ``ensemble`` is computed, not trained."""
    out = []
    for task in tasks:
        for arch in archs:
            if arch == ENSEMBLE:
                continue
            out += [RunSpec(task, arch, int(s)) for s in (seeds[:1] if arch == NAIVE else seeds)]
    return out


def check_arguments(dataset: str, tasks: Sequence[str], archs: Sequence[str], seeds: Sequence[int],
                    epochs: int) -> None:
    from ecg_keras import models

    if dataset not in DATASETS:
        raise ReproduceError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    allowed = DEFAULT_TASKS[dataset]
    bad = [t for t in tasks if t not in allowed]
    if bad or not tasks:
        raise ReproduceError(f"--tasks for {dataset}: choose from {', '.join(allowed)} (got {', '.join(bad) or 'none'})")
    known = set(models.list_models()) | {NAIVE, WAVELET, ENSEMBLE}
    bad = [a for a in archs if a not in known]
    if bad or not archs:
        raise ReproduceError(f"unknown architecture(s) {', '.join(bad) or '(none given)'}; choose from "
                             f"{', '.join(sorted(known))}")
    if not seeds or len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ReproduceError(f"--seeds must be distinct non-negative integers, got {list(seeds)}")
    if epochs < 1:
        raise ReproduceError(f"--epochs must be >= 1, got {epochs}")


def run_config(spec: RunSpec, out: Path, *, dataset: str, data_dir: str | None, epochs: int, batch_size: int,
               synthetic_records: int) -> TrainConfig:
    epochs = min(epochs, WAVELET_EPOCHS) if spec.arch == WAVELET else epochs
    return TrainConfig(task=spec.task, arch=spec.arch, dataset=dataset, data_dir=data_dir, epochs=epochs,
                       batch_size=batch_size, seed=spec.seed, output=str(spec.path(out)),
                       synthetic_records=synthetic_records, extra={"experiment": "reproduce"})


def conflicts(specs: Sequence[RunSpec], configs: dict[RunSpec, TrainConfig]) -> list[str]:
    """Runs already in ``DIR`` that were started with other settings than this command's."""
    out = []
    for s in specs:
        path = Path(configs[s].output) / "config.json"
        if not path.exists():
            continue
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            out.append(f"{s.name}: unreadable {path}")
            continue
        differ = [f"{k} {stored.get(k)!r} (now {getattr(configs[s], k)!r})"
                  for k in ("task", "arch", "seed", "dataset", "epochs", "batch_size")
                  if stored.get(k) != getattr(configs[s], k)]
        if differ:
            out.append(f"{s.name}: started with {', '.join(differ)}")
    return out


def epochs_done(run_path: Path) -> int:
    from ecg_keras.training.rundir import RunDir

    run = RunDir(run_path)
    try:
        info = run.latest_checkpoint()
    except (OSError, ValueError):
        return 0
    return int(info["epoch"]) if info else 0


# --------------------------------------------------------------------------- data
class GridData:
    """The dataset's records, loaded once, and the splits of one task at a time (PTB-XL's signals
    are ~1 GB; a task's splits are another copy)."""

    def __init__(self, config: TrainConfig, download: bool, log):
        self.config, self.download, self.log = config, download, log
        self._records = self._root = None
        self._task, self._splits = None, None

    def load(self):
        if self._records is None:
            from ecg_keras.training.data import load_records

            self._records, root = load_records(self.config, download=self.download, log=self.log)
            self._root = Path(root).resolve()
        return self._records, self._root

    def splits(self, task: str):
        if task != self._task:
            from ecg_keras.datasets.tasks import make_task, split

            records, _ = self.load()
            self._task, self._splits = None, None
            self._splits, self._task = split(make_task(records, task), scheme="strat", seed=0), task
        return self._splits

    @property
    def root(self) -> Path:
        return self.load()[1]

    def try_load(self) -> bool:
        """Load if possible; False (with a note) when the dataset is not on disk."""
        try:
            self.load()
            return True
        except Exception as err:  # noqa: BLE001 - the dry run then counts with an upper bound
            self.log(f"note: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            return False


# --------------------------------------------------------------------------- estimate
def estimate(specs: Sequence[RunSpec], out: Path, data: GridData | None, *, epochs: int, batch_size: int,
             steps: int = 5, log=print) -> dict:
    """Runs and epochs still to do, and the training-step time of each architecture measured here
    (:func:`ecg_keras.training.throughput.train_step_throughput`, ``steps`` steps after 2 warm-up
    steps (1 if ``steps`` < 3), batch ``batch_size``, 71 outputs, no XLA). Epoch time = steps per epoch x step time
    (training steps only: the per-epoch validation pass and the final evaluation come on top)."""
    from ecg_keras.training.throughput import train_step_throughput
    from ecg_keras.windows import steps_per_epoch

    todo = [s for s in specs if not s.path(out).joinpath("COMPLETE").exists()]
    n_train, exact = {}, True
    for task in dict.fromkeys(s.task for s in todo):
        try:
            n_train[task] = len(data.splits(task).train) if data is not None else None
        except Exception as err:  # noqa: BLE001 - no data on disk: an upper bound instead
            log(f"note: cannot count the training records of {task} ({type(err).__name__}); assuming at most "
                f"{PTBXL_TRAIN_UPPER_BOUND} (80% of PTB-XL's 21,837 records)")
            n_train[task] = None
        if n_train[task] is None:
            n_train[task], exact = PTBXL_TRAIN_UPPER_BOUND, False
    step_s: dict[str, float] = {}
    for arch in dict.fromkeys(s.arch for s in todo if s.arch not in BASELINES):
        r = train_step_throughput(arch, jit=False, batch_size=batch_size, steps=steps, warmup=1 if steps < 3 else 2)
        step_s[arch] = r["seconds"] / steps
        log(f"  measured {arch}: {step_s[arch]:.3f} s per step of {batch_size} windows "
            f"({r['windows_per_s']:.0f} windows/s, {r['params']:,} parameters)")
    rows, total_s, total_epochs = [], 0.0, 0
    for s in todo:
        done = epochs_done(s.path(out))
        if s.arch in BASELINES:
            rows.append({"run": s.name, "task": s.task, "arch": s.arch, "steps_per_epoch": None, "epoch_s": None,
                         "epochs_left": 0 if s.arch == NAIVE else min(epochs, WAVELET_EPOCHS), "left_s": None})
            continue
        spe = steps_per_epoch(n_train[s.task], batch_size)
        epoch_s = spe * step_s[s.arch]
        left = epochs - done
        rows.append({"run": s.name, "task": s.task, "arch": s.arch, "epochs_left": left, "steps_per_epoch": spe,
                     "epoch_s": epoch_s, "left_s": left * epoch_s})
        total_s += left * epoch_s
        total_epochs += left
    return {"runs_total": len(specs), "runs_todo": len(todo), "epochs_todo": total_epochs, "train_seconds": total_s,
            "step_seconds": step_s, "batch_size": batch_size, "n_train": n_train, "exact_counts": exact,
            "rows": rows}


def format_estimate(est: dict, epochs: int) -> str:
    from ecg_keras.training.callbacks import format_duration

    lines = [f"Grid: {est['runs_total']} runs, {est['runs_todo']} still to do, {est['epochs_todo']} network epochs "
             f"to train ({epochs} per run)."]
    if est["step_seconds"]:
        lines.append(f"Time per epoch measured on this machine (training steps only, batch {est['batch_size']}):")
        counts = ", ".join(f"{t} {n:,}" for t, n in est["n_train"].items())
        lines.append(f"  training records per task{'' if est['exact_counts'] else ' (upper bound: data not found)'}: "
                     f"{counts}")
        seen = {}
        for r in est["rows"]:
            if r["epoch_s"] is not None:
                seen.setdefault(r["arch"], []).append(r["epoch_s"])
        for arch, vals in seen.items():
            span = f"{min(vals) / 60:.1f}" + (f"-{max(vals) / 60:.1f}" if max(vals) - min(vals) >= 6 else "")
            lines.append(f"  {arch:<16} {est['step_seconds'][arch]:.3f} s/step, {span} min per epoch")
    lines.append(f"Estimated training time: {format_duration(est['train_seconds'])} (plus validation each epoch, "
                 "evaluation, Wavelet+NN features and the exports).")
    return "\n".join(lines)


# --------------------------------------------------------------------------- progress
class Progress:
    """Console progress of the grid: the current run and epoch, and the time left for the grid
    (epochs left x the time per epoch of each (task, architecture): measured before the start,
    then the last epoch actually observed)."""

    def __init__(self, specs: Sequence[RunSpec], out: Path, est: dict | None, epochs: int, stream):
        self.specs, self.out, self.epochs, self.stream = list(specs), Path(out), epochs, stream
        self.epoch_s: dict[tuple[str, str], float] = {}
        for r in (est or {}).get("rows", []):
            if r["epoch_s"] is not None:
                self.epoch_s[(r["task"], r["arch"])] = r["epoch_s"]
        self._stop = threading.Event()
        self._thread = None

    def say(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)

    def left_seconds(self, index: int, current_done: int | None = None) -> float:
        """Training time left from run ``index`` on (``current_done`` epochs of it finished)."""
        total = 0.0
        for i, s in enumerate(self.specs[index:]):
            if s.arch in BASELINES or s.path(self.out).joinpath("COMPLETE").exists():
                continue
            done = current_done if i == 0 and current_done is not None else epochs_done(s.path(self.out))
            total += max(self.epochs - done, 0) * self.epoch_s.get((s.task, s.arch), 0.0)
        return total

    def start(self, index: int, spec: RunSpec) -> None:
        from ecg_keras.training.callbacks import format_duration

        left = self.left_seconds(index)
        self.say(f"[{index + 1}/{len(self.specs)}] {spec.task} / {spec.arch} / seed {spec.seed}"
                 + (f"  (grid: about {format_duration(left)} of training left)" if left else ""))
        if spec.arch not in BASELINES:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, args=(index, spec), daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self, index: int, spec: RunSpec) -> None:
        """Poll the run's history.csv (one row per finished epoch) and report each new epoch."""
        import csv

        from ecg_keras.training.callbacks import format_duration

        history = spec.path(self.out) / "history.csv"

        def read() -> list[dict]:
            try:
                return list(csv.DictReader(history.read_text().splitlines()))
            except OSError:
                return []

        seen = len(read())  # rows of an earlier process (a resumed run) are not news
        stopped = False
        while not stopped:
            stopped = self._stop.wait(1.0)  # one last look after the run ends: a fast epoch is still reported
            rows = read()
            if len(rows) <= seen:
                continue
            seen = len(rows)
            with contextlib.suppress(KeyError, ValueError):
                self.epoch_s[(spec.task, spec.arch)] = float(rows[-1]["time_s"])
            left = self.left_seconds(index, current_done=int(rows[-1].get("epoch") or seen))
            self.say(f"    {spec.name}: epoch {rows[-1].get('epoch', seen)}/{self.epochs} done; "
                     f"grid: about {format_duration(left)} of training left")


# --------------------------------------------------------------------------- one run
def _open_log(path: Path):
    from ecg_keras.files import open_append

    path.parent.mkdir(parents=True, exist_ok=True)
    return open_append(path)


def run_one(spec: RunSpec, cfg: TrainConfig, data: GridData, log) -> str:
    """Train (or continue) one run; returns "trained" or "resumed"."""
    from ecg_keras.training.rundir import RunDir

    run = RunDir(cfg.output)
    splits = data.splits(spec.task)
    if spec.arch in BASELINES:
        train_baseline(cfg, splits, str(data.root), log=log)
        return "trained"
    from ecg_keras.training.loop import train

    resume = run.config.exists()
    train(dataclasses.replace(cfg, resume=resume), splits=splits, data_path=str(data.root), log=log)
    return "resumed" if resume else "trained"


def _wavelet_features(signals) -> np.ndarray:
    from ecg_keras.models.wavelet import wavelet_features

    if isinstance(signals, np.ndarray) and signals.ndim == 3:
        return wavelet_features(signals)
    return np.concatenate([wavelet_features(np.asarray(s)[None]) for s in signals])  # variable-length records


def train_baseline(cfg: TrainConfig, splits, data_path: str, log=print) -> Path:
    """A run directory for ``naive`` or ``wavelet_nn`` with the layout of a trained network's run
    (config, classes, standardizer, predictions, metrics, COMPLETE); the fitted baseline is stored
    as ``naive.json`` or ``wavelet_nn/``. Fast, so an unfinished one is simply redone."""
    from ecg_keras.models.baselines import NaiveBaseline
    from ecg_keras.models.wavelet import WaveletNN
    from ecg_keras.standardize import Standardizer
    from ecg_keras.training import rundir as rd
    from ecg_keras.training.data import fingerprint
    from ecg_keras.training.lifecycle import scored_parts, set_seed, versions, write_predictions
    from ecg_keras.windows import aggregation, window_length

    cfg = cfg.resolved()
    run = rd.RunDir(cfg.output)
    with rd.claim(run, resume=True, log=log):
        if run.is_complete():
            return run.path
        rd.clear(run)  # a baseline is simply redone
        set_seed(cfg.seed, cfg.deterministic)
        tr, va, te = splits.train, splits.val, splits.test
        kind, classes = tr.kind, list(tr.classes)
        synthetic = cfg.dataset == "synthetic"
        run.write_start({**cfg.to_dict(), "versions": versions(), "data_fingerprint": fingerprint(splits),
                         "kind": kind, "classes": classes, "aggregation": aggregation(cfg.task),
                         "window": window_length(cfg.sampling_rate), "leads": int(np.asarray(tr.signals[0]).shape[-1]),
                         "synthetic": synthetic, "data_path": data_path, "baseline": cfg.arch},
                        classes, Standardizer.fit(tr.signals))
        t0 = time.perf_counter()
        if cfg.arch == NAIVE:
            model = NaiveBaseline().fit(tr.y)
            rd.write_text(run / "naive.json", model.to_json())
            preds = {"train": model.predict_proba(len(tr)), "val": model.predict_proba(len(va)),
                     "test": model.predict_proba(len(te))}
        else:
            log(f"Wavelet+NN: DWT features of {len(tr) + len(va) + len(te)} records ...")
            feats = {part: _wavelet_features(getattr(splits, part).signals) for part in ("train", "val", "test")}
            model = WaveletNN(num_classes=len(classes), epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed)
            model.fit(feats["train"], tr.y, feats["val"], va.y, features=True, verbose=2 if cfg.verbose else 0)
            model.save(run / WAVELET)
            log(f"Wavelet+NN: best validation loss after epoch {model.best_epoch + 1} of {cfg.epochs}")
            preds = {part: model.predict_proba(feats[part], features=True) for part in ("train", "val", "test")}
        metrics = {part: write_predictions(run, part, getattr(splits, part), preds[part]) for part in scored_parts(cfg)}
        metrics["train_seconds"] = round(time.perf_counter() - t0, 1)
        rd.write_json(run.metrics, metrics)
        run.mark_complete()
    return run.path


# --------------------------------------------------------------------------- evaluation
def _val_auc(path: Path) -> float:
    try:
        v = json.loads((path / "metrics.json").read_text())["val"]["macro_auc"]
        return float(v) if v is not None and np.isfinite(v) else -np.inf
    except (OSError, KeyError, TypeError, ValueError):
        return -np.inf


def best_runs(specs: Sequence[RunSpec], out: Path) -> dict[tuple[str, str], dict]:
    """Per (task, arch) the complete seeds and the best one by validation macro AUC (ties: lowest seed)."""
    best: dict = {}
    for s in specs:
        path = s.path(out)
        if not (path / "COMPLETE").exists():
            continue
        b = best.setdefault((s.task, s.arch), {"seeds": [], "seed": None, "path": None, "val": -np.inf})
        b["seeds"].append(s.seed)
        val = _val_auc(path)
        if b["path"] is None or val > b["val"]:
            b.update(seed=s.seed, path=path, val=val)
    return best


def evaluate(specs: Sequence[RunSpec], out: Path, dataset: str, archs: Sequence[str], *, n_bootstrap: int,
             bootstrap_seed: int, log=print) -> dict:
    """Score the best run of every (task, arch), and the ensemble, on the test fold with one set of
    seeded bootstrap resamples per task (``DIR/bootstrap/``). Returns ``{"results": {task: {model:
    {metric: stats}}}, "info": {task: {model: {...}}}, "notes": {task: str}}``.

    Classes without a positive or without a negative test record have no AUC; they are left out
    (and named in the notes), which only happens on small (synthetic) sets."""
    from ecg_keras.evaluation import scoring
    from ecg_keras.runs import resolve

    best = best_runs(specs, out)
    results, info, notes = {}, {}, {}
    for task in dict.fromkeys(s.task for s in specs):
        members = []
        for arch in archs:
            b = best.get((task, arch))
            if b is None:
                continue
            r = resolve(b["path"])
            r.name = arch
            members.append(r)
        if not members:
            continue
        models = scoring.group_models(members)
        if ENSEMBLE not in archs:
            models = [m for m in models if m.name != ENSEMBLE]
        test0 = models[0].splits["test"]
        keep = scoring.scorable_classes(test0.y_true)
        classes = members[0].classes
        if not keep.all():
            notes[task] = (f"{int(keep.sum())} of {len(keep)} classes scored (no positive or no negative test record: "
                           f"{', '.join(c for c, k in zip(classes, keep) if not k)})")
        models = [m.subset(keep) for m in models]
        y_true = models[0].splits["test"].y_true
        try:
            idx = scoring.stored_bootstrap(y_true, "multilabel", test0.ids, n_bootstrap, bootstrap_seed, out / "bootstrap",
                                 f"{dataset}_{task}")
        except (ValueError, RuntimeError) as err:
            idx = None
            notes[task] = (notes.get(task, "") + "; " if task in notes else "") + f"no bootstrap interval ({err})"
        scored = scoring.score_models(models, y_true, idx, "multilabel", challenge=dataset == "icbeb2018")
        for m in models:
            res, src = scored[m.name]
            results.setdefault(task, {})[m.name] = res
            b = best.get((task, m.name))
            info.setdefault(task, {})[m.name] = {
                "seeds": sorted(b["seeds"]) if b else None, "best_seed": b["seed"] if b else None,
                "runs": [str(Path(p).relative_to(out)) for p in m.runs], "threshold_source": src,
                "n_test": int(len(y_true)), "n_bootstrap": int(len(idx)) if idx is not None else 0}
    return {"results": results, "info": info, "notes": notes}


# --------------------------------------------------------------------------- table
def _diff(point, paper) -> str:
    if paper is None or point is None or not np.isfinite(point):
        return ""
    return f"{round(float(point), 3) - paper:+.3f}"


def _seeds_cell(info: dict) -> str:
    seeds = info.get("seeds")
    if not seeds:
        return f"mean of {len(info['runs'])} runs" if info.get("runs") else ""
    return ",".join(map(str, seeds)) + (f" (best {info['best_seed']})" if len(seeds) > 1 else "")


def write_tables(out: Path, evaluation: dict, *, dataset: str, tasks: Sequence[str], epochs: int,
                 n_bootstrap: int, bootstrap_seed: int, missing: Sequence[str] = ()) -> Path:
    """``table.md``, ``table.csv`` (Table II layout) and ``results_long.csv``; returns table.md."""
    import pandas as pd

    from ecg_keras.evaluation import published, tables
    from ecg_keras.training import rundir as rd

    res, info, notes = evaluation["results"], evaluation["info"], evaluation["notes"]
    tasks = [t for t in tasks if t in res]
    by_model: dict = {}
    for task in tasks:
        for model, per in res[task].items():
            by_model.setdefault(model, {})[task] = per
    order = tables.rank_models(by_model, tasks[0], "macro_auc") if tasks else []
    synthetic = dataset == "synthetic"
    paper_data = {"ptbxl": "PTB-XL", "icbeb2018": "ICBEB2018"}[published.PAPER_DATA[dataset]]
    paper_col = f"paper ({paper_data})"

    def seeds_of(model):
        cells = {_seeds_cell(info[t][model]) for t in tasks if model in info.get(t, {})}
        return " / ".join(sorted(c for c in cells if c))

    csv_rows, md = [], []
    title = {"ptbxl": "PTB-XL (Table II)", "icbeb2018": "ICBEB2018", "synthetic": "SYNTHETIC DATA"}[dataset]
    md.append(f"# Benchmark reproduction: {title}\n")
    if synthetic:
        md.append("> **SYNTHETIC DATA.** These runs used ecg_keras' generated PTB-XL-like demo set, not real ECGs. "
                  f"The \"{paper_col}\" columns are the paper's numbers for **PTB-XL**, not for this data: the "
                  "differences only show that the pipeline runs, nothing about the models.\n")
    md.append(f"Macro AUC on the test fold (fold 10) as point(deviation): the point estimate and the largest "
              f"distance to the 5%/95% quantiles of {n_bootstrap} bootstrap resamples (seed {bootstrap_seed}), in "
              f"units of 1e-3, the same resamples for every model. \"{paper_col}\" = {published.CITATION}; "
              "Δ = ours (rounded) − paper. "
              f"{epochs} epochs per network run (Wavelet+NN: at most {min(epochs, WAVELET_EPOCHS)}, best validation "
              "loss); with several seeds, the seed with the best validation macro AUC is reported; the ensemble "
              "averages the reported runs of all models but naive.\n")
    header = ["model", "seeds"] + [c for t in tasks for c in (t, paper_col, "Δ")]
    md += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + [":---", "---:", "---:"] * len(tasks)) + "|"]
    for model in order:
        cells = [published.display_name(model), seeds_of(model)]
        row = {"model": model, "seeds": seeds_of(model), "data": "SYNTHETIC" if synthetic else dataset,
               "paper_data": paper_data}
        for t in tasks:
            st = res[t].get(model, {}).get("macro_auc")
            paper = published.paper_value(dataset, model, t)
            point = st["point"] if st else None
            cells += [tables.format_ci(st) if st else tables.MISSING,
                      f"{paper:.3f}" if paper is not None else "", _diff(point, paper)]
            row.update({t: tables.format_ci(st) if st else "", f"{t}_point": point,
                        f"{t}_lower": st["lower"] if st else None, f"{t}_upper": st["upper"] if st else None,
                        f"{t}_paper": paper, f"{t}_diff": _diff(point, paper)})
        md.append("| " + " | ".join(cells) + " |")
        csv_rows.append(row)
    others = [m for m in ("fmax", "F_beta", "G_beta") if any(m in per for t in tasks for per in res[t].values())]
    for metric in others:
        sources = sorted({i.get("threshold_source") or "?" for t in tasks for i in info.get(t, {}).values()})
        fitted = f"thresholds maximising G_beta on the {' / '.join(sources)} predictions"
        what = {"fmax": "Fmax (sample-centric, threshold chosen on the test fold itself)",
                "F_beta": f"F_beta (β = 2), {fitted}", "G_beta": f"G_beta (β = 2), {fitted}"}[metric]
        tab = tables.results_table({m: by_model[m] for m in order}, metric=metric, tasks=tasks, sort_by=tasks[0])
        tab.index = pd.Index([published.display_name(m) for m in tab.index], name="model")
        md += ["", f"## {what}", "", "No paper values recorded for this metric.", "", tables.to_markdown(tab).rstrip()]
    if notes or missing:
        md += ["", "## Notes", ""]
        md += [f"- {t}: {n}" for t, n in notes.items()]
        if missing:
            md.append(f"- not complete (left out): {', '.join(missing)}")
    text = "\n".join(md) + "\n"
    path = rd.write_text(out / "table.md", text)
    with rd.atomic_path(out / "table.csv") as tmp:
        pd.DataFrame(csv_rows).to_csv(tmp, index=False)
    long = tables.long_table(by_model)
    long.insert(3, "paper", [published.paper_value(dataset, m, t, k) for m, t, k in
                             zip(long["model"], long["task"], long["metric"])])
    with rd.atomic_path(out / "results_long.csv") as tmp:
        long.to_csv(tmp, index=False)
    return path


def plot_figures(out: Path, evaluation: dict, dataset: str, tasks: Sequence[str]) -> list[Path]:
    """Figure-2 style, one file per task: models ranked by macro AUC, 90% interval bars, the
    paper's value as a diamond."""
    from ecg_keras.evaluation import published, tables
    from ecg_keras.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    paths = []
    for task in tasks:
        res = evaluation["results"].get(task)
        if not res:
            continue
        models = tables.rank_models({m: {task: r} for m, r in res.items()}, task, "macro_auc")
        pts = np.array([res[m]["macro_auc"]["point"] for m in models], float)
        lo = np.array([res[m]["macro_auc"]["lower"] for m in models], float)
        hi = np.array([res[m]["macro_auc"]["upper"] for m in models], float)
        err = np.nan_to_num(np.vstack([np.clip(pts - lo, 0, None), np.clip(hi - pts, 0, None)]))
        y = np.arange(len(models))[::-1]
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(models) + 1.6))
        ax.barh(y, pts, xerr=err, capsize=3, height=0.6, label="ours (90% interval)",
                color=["tab:gray" if m in tables.PINNED_LAST else "tab:blue" for m in models])
        paper = np.array([published.paper_value(dataset, m, task) or np.nan for m in models], float)
        if np.isfinite(paper).any():
            data_name = {"ptbxl": "PTB-XL", "icbeb2018": "ICBEB2018"}[published.PAPER_DATA[dataset]]
            ax.plot(paper, y, "kD", markersize=5, label=f"paper ({data_name})")
        ax.set_yticks(y, [published.display_name(m) for m in models])
        vals = np.concatenate([pts, lo, hi, paper])
        vals = vals[np.isfinite(vals)]
        ax.set_xlim(max(0.0, float(vals.min()) - 0.05), min(1.0, float(vals.max()) + 0.03) + 0.01)
        ax.set_xlabel("macro AUC (test fold)")
        ax.set_title(f"{task}" + ("  —  SYNTHETIC DATA" if dataset == "synthetic" else f"  ({dataset})"))
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        paths.append(save_figure(fig, out / "figures" / f"{dataset}_{task}.png"))
    return paths


# --------------------------------------------------------------------------- release
def _savedmodel_hashes(directory: Path) -> dict[str, str]:
    from ecg_keras.zoo import sha256

    return {str(p.relative_to(directory)): sha256(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def _exports_ok(release: Path, entry: dict) -> bool:
    from ecg_keras.zoo import sha256

    ex = entry.get("exports") or {}
    try:
        onnx, sm = ex["onnx"], ex["savedmodel"]
        if sha256(release / entry["file"]) != entry["sha256"] or sha256(release / onnx["file"]) != onnx["sha256"]:
            return False
        return _savedmodel_hashes(release / sm["dir"]) == sm["files"]
    except (KeyError, OSError, TypeError):
        return False


def release_best(out: Path, dataset: str, best: dict, url_base: str | None = None,
                 log=print) -> tuple[list[str], list[dict]]:
    """Release the best run of every network and task into ``DIR/release`` (skipping releases whose
    weights and exports are already there), then write ``SHA256SUMS``. Returns (names, failures)."""
    from ecg_keras import zoo
    from ecg_keras.export import export_onnx, export_savedmodel, release_run
    from ecg_keras.runs import resolve
    from ecg_keras.training import rundir as rd

    release = out / "release"
    names, failures = [], []
    for (task, arch), b in sorted(best.items()):
        if arch in BASELINES or arch == ENSEMBLE:
            continue
        name = f"{dataset}-{task}-{arch}"
        names.append(name)
        manifest = {e["name"]: e for e in zoo.read_manifest(release)} if (release / zoo.MANIFEST).exists() else {}
        old = manifest.get(name)
        if (old and old.get("sha256") == zoo.sha256(b["path"] / "model.keras") and old.get("seed") == b["seed"]
                and old.get("url_base") == url_base and _exports_ok(release, old)):
            continue
        try:
            log(f"release {name} (seed {b['seed']}): weights, model card, SavedModel, ONNX")
            release_run(b["path"], name, models_directory=release, url_base=url_base, overwrite=True)
            run = resolve(b["path"])
            sm = export_savedmodel(run.model, release / "savedmodel", model_name=name, version=1, overwrite=True,
                                   **run.export_kwargs())
            onnx = export_onnx(run.model, release / f"{name}.onnx", **run.export_kwargs())
            entries = zoo.read_manifest(release)
            for e in entries:
                if e["name"] == name:
                    e["seed"] = b["seed"]
                    e["source_run"] = str(Path(b["path"]).relative_to(out))
                    e["exports"] = {"onnx": {"file": onnx.name, "sha256": zoo.sha256(onnx)},
                                    "savedmodel": {"dir": str(sm.relative_to(release)),
                                                   "files": _savedmodel_hashes(sm)}}
            rd.write_text(release / zoo.MANIFEST, json.dumps({"models": entries}, indent=2))
        except Exception as err:  # noqa: BLE001 - one failed release does not stop the others
            failures.append({"what": f"release {name}", "error": f"{type(err).__name__}: {err}"})
            log(traceback.format_exc())
    if release.exists():
        files = sorted(p for p in release.rglob("*") if p.is_file() and p.name != "SHA256SUMS"
                       and not p.name.startswith("."))
        rd.write_text(release / "SHA256SUMS", "".join(f"{zoo.sha256(p)}  {p.relative_to(release)}\n" for p in files))
    return names, failures


# --------------------------------------------------------------------------- the command
def reproduce(data_dir: str | None, out: str | Path, tasks: Sequence[str] | None = None,
              archs: Sequence[str] | None = None, seeds: Sequence[int] = (0,), epochs: int = 50,
              dataset: str = "ptbxl", *, batch_size: int = 128, n_bootstrap: int = 1000, bootstrap_seed: int = 0,
              synthetic_records: int = 2000, download: bool = False, release: bool = True, url_base: str | None = None,
              dry_run: bool = False, estimate_steps: int = 5, collect_only: bool = False, poll_seconds: float = 10.0,
              stream=None) -> Outcome:
    """Train the grid (tasks x archs x seeds) that is not yet complete, evaluate, tabulate, plot and
    release into ``out`` (see the module docstring). ``dry_run`` only measures and prints the estimate;
    ``collect_only`` trains nothing and writes the table of the runs complete so far. Any number of
    processes may run this on one ``out``: they divide the runs (``poll_seconds``: how often an idle
    one looks for runs freed by a process that died)."""
    from ecg_keras.training.callbacks import format_duration

    stream = stream or sys.stdout
    tasks = list(tasks or DEFAULT_TASKS.get(dataset, STATEMENT_TASKS))
    archs = list(dict.fromkeys(archs or DEFAULT_ARCHS.get(dataset, ())))
    seeds = [int(s) for s in seeds]
    check_arguments(dataset, tasks, archs, seeds, epochs)
    out = Path(out).expanduser().resolve()
    outcome = Outcome(out)

    def say(msg: str) -> None:
        print(msg, file=stream, flush=True)

    specs = grid(tasks, archs, seeds)
    probe = TrainConfig(dataset=dataset, data_dir=data_dir, synthetic_records=synthetic_records)
    data = GridData(probe, download, say)
    if dataset == "synthetic":
        say("=" * 78 + "\n  SYNTHETIC DATA: a generated PTB-XL-like demo set, not real ECGs.\n" + "=" * 78)
    if dry_run:
        est = estimate(specs, out, data if data.try_load() else None, epochs=epochs,
                       batch_size=batch_size, steps=estimate_steps, log=say)
        say(format_estimate(est, epochs))
        outcome.estimate = est
        return outcome

    out.mkdir(parents=True, exist_ok=True)
    configs = {s: run_config(s, out, dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size,
                             synthetic_records=synthetic_records) for s in specs}
    clash = conflicts(specs, configs)
    if clash:
        raise ReproduceError(f"{out} holds runs started with other settings; run this command with another --out "
                             "(or the original settings):\n  " + "\n  ".join(clash))
    if not collect_only:
        _train_grid(specs, configs, out, data, outcome, epochs=epochs, batch_size=batch_size,
                    estimate_steps=estimate_steps, poll_seconds=poll_seconds, stream=stream, say=say)
    settings = {"tasks": tasks, "archs": archs, "seeds": seeds, "epochs": epochs, "n_bootstrap": n_bootstrap,
                "bootstrap_seed": bootstrap_seed, "release": release, "url_base": url_base}
    _collect(specs, out, dataset, tasks, archs, settings, outcome, say=say)
    if outcome.failures:
        say(f"\n{len(outcome.failures)} FAILED:")
        for f in outcome.failures:
            say(f"  - {f['what']}: {f['error']}" + (f" (log: {f['log']})" if f.get("log") else ""))
        say("Run the same command again to retry them (finished runs are kept).")
    return outcome


def _train_grid(specs, configs, out: Path, data: GridData, outcome: Outcome, *, epochs: int, batch_size: int,
                estimate_steps: int, poll_seconds: float, stream, say) -> None:
    """Train every run of the grid this process can claim; with other processes on the same ``out``,
    wait while they hold runs (a run whose process died is taken over), until every run is
    complete or has failed here."""
    from ecg_keras.training.callbacks import format_duration

    todo = [s for s in specs if not (s.path(out) / "COMPLETE").exists()]
    est = None
    if todo and estimate_steps < 1:
        data.load()
        say("No estimate (--estimate-steps 0).")
    elif todo:
        data.load()
        say("Estimate before starting:")
        est = estimate(specs, out, data, epochs=epochs, batch_size=batch_size, steps=estimate_steps, log=say)
        say(format_estimate(est, epochs))
    else:
        say(f"All {len(specs)} runs of the grid are complete; nothing to train.")
    outcome.estimate = est
    progress = Progress(specs, out, est, epochs, stream)
    mine: dict[str, dict] = {}  # runs this process trained, resumed or failed
    waiting_for = None
    while True:
        for i, spec in enumerate(specs):
            path = spec.path(out)
            if spec.name in mine or (path / "COMPLETE").exists() or is_held(path):
                continue
            row = _attempt(i, spec, configs[spec], out, data, progress, outcome, say=say)
            if row is None:  # claimed by another process between the look and the claim
                continue
            mine[spec.name] = row
            say(f"    {spec.name}: {row['status']} in {format_duration(row['seconds'])}"
                + (f" — see {out / row['log']}" if row["status"] == "failed" else ""))
        left = [s.name for s in specs if s.name not in mine and not (s.path(out) / "COMPLETE").exists()]
        if not left:
            break
        if left != waiting_for:
            say(f"Waiting for {len(left)} run(s) held by other processes ({', '.join(left)}); a run whose process "
                "ends unfinished is taken over here.")
            waiting_for = left
        time.sleep(poll_seconds)
    for spec in specs:
        row = mine.get(spec.name) or {**_row(spec, out), "status": "complete" if (spec.path(out) / "COMPLETE").exists()
                                      else "missing"}
        outcome.runs.append(row)


def is_held(path: Path) -> bool:
    """True while another process holds run ``path``'s lock (a lock left by a process that died on
    this host is free; one left by a process on another host counts as held, see RunLock)."""
    from ecg_keras.training import rundir as rd

    if not (path / rd.LOCK).exists():
        return False
    try:
        with rd.RunLock(path, log=lambda msg: None):
            return False
    except rd.RunLockedError:
        return True


def _row(spec: RunSpec, out: Path) -> dict:
    return {"run": spec.name, "task": spec.task, "arch": spec.arch, "seed": spec.seed,
            "path": str(spec.path(out).relative_to(out)), "log": f"logs/{spec.name}.log"}


def _attempt(index: int, spec: RunSpec, cfg: TrainConfig, out: Path, data: GridData, progress: Progress,
             outcome: Outcome, *, say) -> dict | None:
    """Train or resume one run in this process, its output appended to its log; None when another
    process claimed it first."""
    from ecg_keras.training.rundir import RunLockedError

    row = _row(spec, out)
    progress.start(index, spec)
    t0 = time.perf_counter()
    log_path = out / row["log"]
    with _open_log(log_path) as fh:
        def log(msg, fh=fh):
            print(msg, file=fh, flush=True)
        print(f"===== {time.strftime('%Y-%m-%dT%H:%M:%S')} {spec.name} (pid {os.getpid()} on {socket.gethostname()})",
              file=fh, flush=True)
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                status = run_one(spec, cfg, data, log)
        except (RunLockedError, FileExistsError) as err:
            if isinstance(err, FileExistsError) and not (spec.path(out) / "config.json").exists():
                raise  # not another process: something else is in the way
            print(f"----- claimed by another process ({err}); left to it", file=fh, flush=True)
            return None
        except Exception as err:  # noqa: BLE001 - one failed run does not stop the grid
            traceback.print_exc(file=fh)
            status = "failed"
            outcome.failures.append({"what": spec.name, "error": f"{type(err).__name__}: {err}",
                                     "log": str(log_path)})
        finally:
            progress.stop()
        print(f"----- {spec.name}: {status} by pid {os.getpid()} on {socket.gethostname()}", file=fh, flush=True)
    return {**row, "status": status, "seconds": round(time.perf_counter() - t0, 1),
            "process": f"{socket.gethostname()}:{os.getpid()}"}


def _collect(specs, out: Path, dataset: str, tasks, archs, settings: dict, outcome: Outcome, *, say) -> None:
    """Evaluate, tabulate, plot and release, once per state of the grid: by the one process that
    holds ``out``'s lock; skipped when another process is doing it or has done it for the same
    finished runs and settings (``collected.json``)."""
    from ecg_keras.training import rundir as rd

    complete = [s.name for s in specs if (s.path(out) / "COMPLETE").exists()]
    state = {"complete": complete, "settings": settings}
    try:
        lock = rd.RunLock(out, log=say).__enter__()
    except rd.RunLockedError:
        say(f"Another process is writing the table of {out}; done here.")
        return
    try:
        marker = out / "collected.json"
        try:
            same = json.loads(marker.read_text()) == json.loads(json.dumps(state)) and (out / "table.md").exists()
        except (OSError, ValueError):
            same = False
        if same:
            say(f"The table of {out} is up to date (written by another process); done here.")
            outcome.table = out / "table.md"
            return
        n_bootstrap, bootstrap_seed = settings["n_bootstrap"], settings["bootstrap_seed"]
        say("Evaluating on the test fold (bootstrap) ...")
        evaluation = evaluate(specs, out, dataset, archs, n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed,
                              log=say)
        missing = [s.name for s in specs if s.name not in complete]
        outcome.table = write_tables(out, evaluation, dataset=dataset, tasks=tasks, epochs=settings["epochs"],
                                     n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed, missing=missing)
        try:
            plot_figures(out, evaluation, dataset, tasks)
        except Exception as err:  # noqa: BLE001
            outcome.failures.append({"what": "figures", "error": f"{type(err).__name__}: {err}"})
        if settings["release"]:
            _, failed = release_best(out, dataset, best_runs(specs, out), url_base=settings["url_base"], log=say)
            outcome.failures += failed
        if not outcome.runs:  # --collect: the state of every run
            outcome.runs = [{**_row(s, out), "status": "complete" if s.name in complete else "missing"} for s in specs]
        _write_runs_csv(out, outcome)
        rd.write_json(marker, state)
        say(outcome.table.read_text())
        say(f"Wrote {out / 'table.md'}, {out / 'table.csv'}, {out / 'figures'}"
            + (f" and {out / 'release'}" if settings["release"] else ""))
    finally:
        lock.__exit__(None, None, None)


def _write_runs_csv(out: Path, outcome: Outcome) -> None:
    import pandas as pd

    from ecg_keras.training import rundir as rd

    with rd.atomic_path(out / "runs.csv") as tmp:
        pd.DataFrame(outcome.runs).to_csv(tmp, index=False)


# --------------------------------------------------------------------------- CLI
def _list(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecg-keras reproduce",
        description="Train the paper's benchmark grid (tasks x architectures x seeds), resumably, and write "
                    "Table II beside the published values, Figure-2 plots and a release folder.",
        epilog="Run the same command again after a crash or kill: finished runs are kept, the interrupted one "
               "is resumed. See docs/REPRODUCE.md.")
    p.add_argument("--data-dir", default=None, help="dataset folder (PTB-XL: the one holding ptbxl_database.csv)")
    p.add_argument("--out", required=True, help="output folder (runs/, logs/, table.md, figures/, release/)")
    p.add_argument("--dataset", choices=DATASETS, default="ptbxl",
                   help="ptbxl (Table II), icbeb2018 (the ICBEB table), synthetic (a generated demo set)")
    p.add_argument("--tasks", default=None, help="comma-separated (default: the six statement tasks; icbeb2018: all)")
    p.add_argument("--archs", default=None,
                   help=f"comma-separated (default: {','.join(DEFAULT_ARCHS['ptbxl'])}; naive, wavelet_nn and "
                        "ensemble are the baselines)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--epochs", type=int, default=50, help="epochs per network run (default 50)")
    p.add_argument("--batch-size", type=int, default=128, help="default 128")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the test fold (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the resample draw (default 0)")
    p.add_argument("--synthetic-records", type=int, default=2000, help="size of the generated set (--dataset synthetic)")
    p.add_argument("--download", action="store_true", help="download PTB-XL / ICBEB2018 if missing")
    p.add_argument("--no-release", dest="release", action="store_false", help="skip DIR/release")
    p.add_argument("--url-base", default=None,
                   help="where the release folder will be uploaded: recorded as url_base in MANIFEST.json")
    p.add_argument("--estimate-steps", type=int, default=5,
                   help="timed training steps per architecture (default 5; 0: no estimate)")
    p.add_argument("--dry-run", action="store_true", help="print the estimate (runs, epochs, measured time) and stop")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: write the table, figures and release of the runs complete so far")
    p.add_argument("--poll-seconds", type=float, default=10.0,
                   help="while other processes hold the remaining runs, look for freed ones this often (default 10)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ecg_keras.datasets.base import DataError
    from ecg_keras.training.rundir import RunLockedError

    try:
        seeds = [int(s) for s in _list(ns.seeds) or []]
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got {ns.seeds!r}", file=sys.stderr)
        return 2
    try:
        outcome = reproduce(ns.data_dir, ns.out, tasks=_list(ns.tasks), archs=_list(ns.archs), seeds=seeds,
                            epochs=ns.epochs, dataset=ns.dataset, batch_size=ns.batch_size, n_bootstrap=ns.bootstrap,
                            bootstrap_seed=ns.bootstrap_seed, synthetic_records=ns.synthetic_records,
                            download=ns.download, release=ns.release, url_base=ns.url_base, dry_run=ns.dry_run,
                            estimate_steps=ns.estimate_steps, collect_only=ns.collect, poll_seconds=ns.poll_seconds)
    except ReproduceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, RunLockedError, OSError, ValueError, RuntimeError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

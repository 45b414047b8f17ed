"""Running the grid: every run this process can claim (through its run lock; any number of
processes share one output folder), trained or resumed with its output in its own log, and the
baselines (naive, Wavelet+NN) as run directories of the same layout."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
import traceback
from pathlib import Path

import numpy as np

from ecg_keras.training.config import TrainConfig
from ecg_keras.training.grid.plan import (BASELINES, NAIVE, WAVELET, GridData, Outcome, RunSpec, estimate,
                                          format_estimate)
from ecg_keras.training.grid.progress import Progress


def open_log(path: Path):
    """A run's log file, opened for appending (never through a planted link)."""
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


def record_features(signals) -> np.ndarray:
    """Wavelet+NN features of every record (fixed-length arrays at once, others one by one)."""
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
    from ecg_keras.windows import aggregation

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
                         "window": cfg.window, "leads": int(np.asarray(tr.signals[0]).shape[-1]),
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
            feats = {part: record_features(getattr(splits, part).signals) for part in ("train", "val", "test")}
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


def train_grid(specs, configs, out: Path, data: GridData, outcome: Outcome, *, epochs: int, batch_size: int,
               estimate_steps: int, poll_seconds: float, stream, say) -> None:
    """Train every run of the grid this process can claim; with other processes on the same ``out``,
    wait while they hold runs (a run whose process died is taken over), until every run is
    complete or has failed here."""
    from ecg_keras.training.callbacks import format_duration

    todo = [s for s in specs if not s.run(out).is_complete()]
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
            if spec.name in mine or spec.run(out).is_complete() or is_held(path):
                continue
            row = attempt(i, spec, configs[spec], out, data, progress, outcome, say=say)
            if row is None:  # claimed by another process between the look and the claim
                continue
            mine[spec.name] = row
            say(f"    {spec.name}: {row['status']} in {format_duration(row['seconds'])}"
                + (f" — see {out / row['log']}" if row["status"] == "failed" else ""))
        left = [s.name for s in specs if s.name not in mine and not s.run(out).is_complete()]
        if not left:
            break
        if left != waiting_for:
            say(f"Waiting for {len(left)} run(s) held by other processes ({', '.join(left)}); a run whose process "
                "ends unfinished is taken over here.")
            waiting_for = left
        time.sleep(poll_seconds)
    for spec in specs:
        row = mine.get(spec.name) or {**run_row(spec, out), "status": "complete" if spec.run(out).is_complete()
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


def run_row(spec: RunSpec, out: Path) -> dict:
    """A run's row of runs.csv (name, task, architecture, seed, paths)."""
    return {"run": spec.name, "task": spec.task, "arch": spec.arch, "seed": spec.seed,
            "path": str(spec.path(out).relative_to(out)), "log": f"logs/{spec.name}.log"}


def attempt(index: int, spec: RunSpec, cfg: TrainConfig, out: Path, data: GridData, progress: Progress,
            outcome: Outcome, *, say) -> dict | None:
    """Train or resume one run in this process, its output appended to its log; None when another
    process claimed it first."""
    from ecg_keras.training.rundir import RunLockedError

    row = run_row(spec, out)
    progress.start(index, spec)
    t0 = time.perf_counter()
    log_path = out / row["log"]
    with open_log(log_path) as fh:
        def log(msg, fh=fh):
            print(msg, file=fh, flush=True)
        print(f"===== {time.strftime('%Y-%m-%dT%H:%M:%S')} {spec.name} (pid {os.getpid()} on {socket.gethostname()})",
              file=fh, flush=True)
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                status = run_one(spec, cfg, data, log)
        except (RunLockedError, FileExistsError) as err:
            if isinstance(err, FileExistsError) and not spec.run(out).config.exists():
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

"""The one lifecycle of a training run, shared by :func:`~ecg_keras.training.loop.train`,
:func:`~ecg_keras.training.transfer.finetune` (and so the sweep), as a list of :class:`Phase`\\ s.

    start = Start(config, run, strategy, chief, splits, standardizer, ...)   # what the run starts from
    model = build(start, make_model)              # in the strategy's scope and precision policy
    return run_phases(start, model, [Phase(epochs=30, lr=1e-2)], info={...})

A run is: its directory and lock (:func:`claimed`), the start files with the info dict
(config.json, classes, standardiser), the model with its output bias at the training mean for
regression and synchronised BatchNorm under a distribution strategy, then every phase (one
optimiser and one-cycle schedule per phase, compiled with the task's loss; per-epoch checkpoints,
exact resume inside any phase; history.csv, TensorBoard), then the end of the run
(:func:`complete`: all workers agree on the weights; the chief writes model.keras, predictions,
metrics.json, history.png and COMPLETE). Plain training is one phase; finetuning is two (the head,
then all layers with discriminative learning rates).
"""
from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ecg_keras import tasks
from ecg_keras.datasets.base import Splits, TaskData
from ecg_keras.evaluation.scoring import headline_metric, split_metrics
from ecg_keras.models import fold_batchnorm
from ecg_keras.preprocessing import preprocessing_spec
from ecg_keras.standardize import Standardizer
from ecg_keras.training import distribute as dist, precision
from ecg_keras.training import rundir as rd
from ecg_keras.training.callbacks import (EpochLog, FiniteGuard, NonFiniteError, PhaseTag, TensorBoardLog,
                                          ValidationMetrics)
from ecg_keras.training.config import TrainConfig
from ecg_keras.training.schedule import OneCycle, OneCycleMomentum, optimizer_for
from ecg_keras.windows import aggregation, model_window, predict_records, steps_per_epoch, train_dataset


# --------------------------------------------------------------------------- setup
def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def versions() -> dict:
    out = {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
           "numpy": np.__version__, "platform": platform.platform()}
    try:
        repo = Path(__file__).resolve().parents[2]
        out["ecg_keras_commit"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                                 text=True, timeout=5).stdout.strip() or None
    except Exception:  # not a git checkout
        out["ecg_keras_commit"] = None
    return out


def build_model(config: TrainConfig, n_outputs: int, input_shape: tuple) -> keras.Model:
    from ecg_keras import models

    return models.get(config.arch, num_classes=n_outputs, input_shape=input_shape)


def task_loss(kind: str) -> keras.losses.Loss:
    """The training loss of a task kind (its ``Kind.loss`` built with ``Kind.loss_config``)."""
    spec = tasks.kind(kind)
    return getattr(keras.losses, spec.loss)(**dict(spec.loss_config))


def compile_model(model: keras.Model, config: TrainConfig, kind: str, total_steps: int, *, lr: float | None = None,
                  multipliers: dict | None = None) -> OneCycle:
    """A fresh one-cycle AdamW (``lr`` or ``config.lr`` at its peak; per-variable ``multipliers``)
    and the task's loss; the optimiser is built at once. Returns the schedule."""
    optimizer, schedule = optimizer_for(config, config.lr if lr is None else lr, total_steps, multipliers or {})
    model.compile(optimizer=optimizer, loss=task_loss(kind), jit_compile=bool(config.jit))
    model.optimizer.build(model.trainable_variables)  # a LossScaleOptimizer (mixed_float16) builds AdamW too
    return schedule


def output_dense(model: keras.Model):
    """The output layer: ``head_logits`` (every registered architecture), else the last Dense."""
    with contextlib.suppress(ValueError):
        return model.get_layer("head_logits")
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.Dense):
            return layer
    return None


def claimed(run: rd.RunDir, chief: bool, resume: bool, log=print):
    """The run lock, held by the chief (with several workers only the chief writes the run)."""
    return rd.claim(run, resume=resume, log=log) if chief else contextlib.nullcontext()


# --------------------------------------------------------------------------- a run
@dataclass(frozen=True)
class Phase:
    """Epochs trained with one optimiser and one one-cycle schedule (peak ``lr``).

    ``multipliers`` ({id(variable): factor}) scale the learning rate per variable (discriminative
    learning rates); ``trainable(model)`` sets which layers train before the phase is compiled;
    ``number`` is written to history.csv's ``phase`` column (finetuning)."""

    epochs: int
    lr: float
    multipliers: dict | None = None
    trainable: Callable | None = None
    number: int | None = None
    what: str = "training"


@dataclass
class Start:
    """What a run starts from: its config and directory, the strategy, the data, the standardiser,
    and the checkpoint to continue (None: from the first epoch). ``resuming``: the run directory
    already holds this run's start files (their data fingerprint must match)."""

    config: TrainConfig
    run: rd.RunDir
    strategy: tf.distribute.Strategy
    chief: bool
    splits: Splits
    standardizer: Standardizer
    synthetic: bool = False
    data_path: str | None = None
    checkpoint: dict | None = None
    resuming: bool = False

    def __post_init__(self):
        replicas, rest = self.strategy.num_replicas_in_sync, len(self.splits.train) % self.config.batch_size
        if 0 < rest < replicas:  # a replica would get an empty batch, and synchronised BatchNorm fails on it
            raise ValueError(f"{len(self.splits.train)} training records in batches of {self.config.batch_size} "
                             f"leave a last batch of {rest} for {replicas} replicas; choose a --batch-size "
                             f"that leaves 0 or at least {replicas} records in the last batch")

    @property
    def kind(self) -> str:
        return self.splits.train.kind

    @property
    def aggregation(self) -> str:
        return aggregation(self.config.task)

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.splits.train), self.config.batch_size)

    def scope(self):
        """The strategy's scope under the run's precision policy."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.strategy.scope())
        stack.enter_context(precision.policy(self.config.precision))
        return stack


def build(start: Start, make_model: Callable[[int, tuple], keras.Model]) -> keras.Model:
    """``make_model(n_outputs, (window, leads))`` in the run's scope; for regression the output bias
    starts at the training mean (targets in raw units); BatchNorm is synchronised across replicas
    when distributed with ``sync_batchnorm``; prepared for ``fit`` under the strategy."""
    config, train_td = start.config, start.splits.train
    leads = int(np.asarray(train_td.signals[0]).shape[-1])
    with start.scope():
        model = make_model(len(train_td.classes), (config.window, leads))
        if tasks.kind(start.kind).linear:
            dense = output_dense(model)
            if dense is not None and dense.use_bias:
                dense.bias.assign(np.full(dense.bias.shape, float(np.mean(train_td.y)), np.float32))
    if config.distribute != "none" and config.sync_batchnorm:
        dist.synchronize_batchnorm(model)  # = single-device training on the global batch
    dist.prepare_fit(model, start.strategy)
    return model


def run_info(start: Start, model: keras.Model, phases: Sequence[Phase], **extra) -> dict:
    """config.json: the config, versions, data fingerprint, what the model answers and how."""
    from ecg_keras.training.data import fingerprint

    config, train_td = start.config, start.splits.train
    steps = start.steps_per_epoch
    return {**config.to_dict(), "versions": versions(), "data_fingerprint": fingerprint(start.splits),
            "kind": train_td.kind, "classes": list(train_td.classes), "aggregation": start.aggregation,
            "window": config.window, "leads": int(np.asarray(train_td.signals[0]).shape[-1]),
            "synthetic": start.synthetic, "steps_per_epoch": steps,
            "total_steps": steps * sum(p.epochs for p in phases),
            "replicas": start.strategy.num_replicas_in_sync, "resume": False, "data_path": start.data_path, **extra}


def write_start(start: Start, info: dict) -> None:
    """The start files (chief), or, when continuing, the check that the data is the run's."""
    run, classes = start.run, list(start.splits.train.classes)
    if start.resuming and run.config.exists():
        old = run.read_config()
        if old.get("data_fingerprint") != info["data_fingerprint"]:
            raise ValueError(f"the data differs from the data {run.path} was trained on; cannot resume")
        if start.chief and not (run.classes.exists() and run.standardizer.exists()):  # killed between its first files
            run.write_start(old, classes, start.standardizer)
    elif start.chief:
        run.write_start(info, classes, start.standardizer)


def run_phases(start: Start, model: keras.Model, phases: Sequence[Phase], *, info: dict, description: str = "",
               on_phase_end: Callable | None = None, log=print) -> Path:
    """Write the start files, train every phase not yet done (continuing ``start.checkpoint``) and
    end the run (:func:`complete`); returns the run directory."""
    config, run = start.config, start.run
    write_start(start, info)
    if config.verbose and description:
        log(f"{description}\n  run directory: {run.path}")
    ckpt = start.checkpoint
    history: list[dict] = list(ckpt["history"]) if ckpt else []
    done = int(ckpt["epoch"]) if ckpt else 0  # epochs finished before this process
    total = sum(p.epochs for p in phases)
    t0 = time.perf_counter()
    if ckpt is not None and done >= total:  # every epoch ran; the final files were not written
        run.restore_checkpoint(model, ckpt, optimizer=False)
    until = 0
    for phase in phases:
        first, until = until, until + phase.epochs  # this phase trains epochs first + 1 .. until
        if phase.epochs == 0 or done >= until:
            continue
        if phase.trainable is not None:
            phase.trainable(model)
        with start.scope():
            schedule = compile_model(model, config, start.kind, start.steps_per_epoch * phase.epochs, lr=phase.lr,
                                     multipliers=phase.multipliers)
        initial = first
        if ckpt is not None and done >= first:  # resume inside this phase, or at its very start
            run.restore_checkpoint(model, ckpt, optimizer=done > first)
            initial = done
            log(f"Resuming {run.path} after epoch {done} (optimizer step {ckpt.get('iterations')})"
                + (f" in phase {phase.number}." if phase.number is not None else "."))
        extra = (PhaseTag(phase.number),) if phase.number is not None else ()
        fit_epochs(model, start, history, schedule, initial_epoch=initial, until=until, total=total,
                   extra_callbacks=extra, what=phase.what)
        if on_phase_end is not None:
            on_phase_end(phase.number, model)
    if any(p.trainable is not None for p in phases):
        for layer in model.layers:
            layer.trainable = True
    return complete(start, model, history, time.perf_counter() - t0, log)


def fit_epochs(model: keras.Model, start: Start, history: list[dict], schedule: OneCycle, *, initial_epoch: int,
               until: int, total: int, extra_callbacks: tuple = (), what: str = "training") -> None:
    """Train epochs ``initial_epoch + 1 .. until`` (of ``total``) with the run's callbacks: one-cycle
    momentum, validation metrics, the non-finite guard, history rows and (chief) checkpoints."""
    config, run, splits = start.config, start.run, start.splits

    def make(shard=(1, 0)):
        return train_dataset(splits.train.signals, splits.train.y, batch_size=config.batch_size,
                             sampling_rate=config.sampling_rate, window=config.window, standardizer=start.standardizer,
                             seed=config.seed, epochs=until, initial_epoch=initial_epoch, augment=config.augment, shard=shard)

    ds = dist.worker_datasets(model.distribute_strategy, make)
    verbose = 0 if not config.verbose else (1 if sys.stdout.isatty() else 2)
    callbacks = [OneCycleMomentum(schedule), *extra_callbacks,
                 ValidationMetrics(splits.val, start.kind, start.aggregation, start.standardizer,
                                   config.eval_batch_size, window=config.window),
                 keras.callbacks.TerminateOnNaN(),
                 FiniteGuard(),
                 keras.callbacks.ProgbarLogger(),
                 EpochLog(run, history, schedule, total, verbose=config.verbose, write=start.chief)]
    if start.chief:
        callbacks += [TensorBoardLog(run, history), rd.Checkpointer(run, history, keep=config.keep_checkpoints)]
    model.fit(ds, epochs=until, initial_epoch=initial_epoch, steps_per_epoch=start.steps_per_epoch,
              callbacks=callbacks, verbose=verbose, shuffle=False)
    if model.stop_training or len(history) < until:
        raise NonFiniteError(f"{what} stopped early (non-finite loss?); {run.path} is left incomplete")


# --------------------------------------------------------------------------- the end of a run
def complete(start: Start, model: keras.Model, history: list[dict], train_seconds: float, log=print) -> Path:
    """The end of every run: all workers must hold the same weights; the chief writes the final
    files (:func:`finish`) and COMPLETE, the others wait for it."""
    config, run, strategy = start.config, start.run, start.strategy
    workers = dist.num_workers(strategy)
    # all variables; with --no-sync-bn each worker keeps its own BatchNorm moving statistics
    compared = model.variables if config.sync_batchnorm else model.trainable_variables
    if not dist.all_agree(strategy, dist.weights_fingerprint(compared)):
        raise RuntimeError(f"the {workers} workers ended with different weights; {run.path} is left incomplete")
    if not dist.is_chief(strategy):
        dist.all_agree(strategy, [0.0])  # wait for the chief to finish the run directory
        if config.verbose:
            log(f"Worker {dist.task_name(strategy)} done (the chief writes {run.path}).")
        return Path(config.output)

    result = finish(start, model, history)
    result["train_seconds_this_process"] = round(train_seconds, 1)
    extra = {"workers": workers, "weights_identical_across_workers": True} if workers > 1 else {}
    run.mark_complete(train_seconds_this_process=result["train_seconds_this_process"], **extra)
    dist.all_agree(strategy, [0.0])  # the other workers return once the run is complete
    if config.verbose:
        key = headline_metric(start.kind)
        log(f"Done: val {key} {result['val'].get(key, float('nan')):.4f}, test {key} "
            f"{result['test'].get(key, float('nan')):.4f}{' (SYNTHETIC data)' if start.synthetic else ''}. "
            f"Run directory: {run.path}")
    return Path(config.output)


def inference_model(model: keras.Model, config: TrainConfig, n_outputs: int, input_shape: tuple) -> keras.Model:
    """A fresh copy of the trained model outside any distribution scope, without optimiser state."""
    fresh = build_model(config, n_outputs, input_shape)
    fresh.set_weights(model.get_weights())
    return fresh


def write_predictions(run: rd.RunDir, part: str, td: TaskData, preds: np.ndarray) -> dict:
    """``predictions/<part>.npz`` (ids, y_true, y_pred) and the split's metrics (or its error)."""
    ids = np.asarray(td.ids)  # string ids (ICBEB2018) as unicode, not pickled objects
    ids = ids.astype(str) if ids.dtype == object else ids
    run.write_predictions(part, ids=ids, y_true=np.asarray(td.y, np.float32), y_pred=np.asarray(preds, np.float32))
    try:
        return {**split_metrics(td.kind, td.y, preds), "n_records": len(td)}
    except ValueError as e:
        return {"error": str(e), "n_records": len(td)}


def scored_parts(config: TrainConfig) -> tuple[str, ...]:
    """The splits a run predicts and scores. ICBEB2018's F_beta/G_beta fit their thresholds on
    training predictions (docs/PROTOCOL.md "Metrics")."""
    return ("val", "test", "train") if config.dataset == "icbeb2018" else ("val", "test")


def finish(start: Start, model: keras.Model, history: list[dict]) -> dict:
    """Write model.keras, predictions, metrics.json and history.png (everything but COMPLETE)."""
    config, run, splits, kind = start.config, start.run, start.splits, start.kind
    final = inference_model(model, config, len(splits.train.classes), tuple(model.input_shape[1:]))
    activation = tasks.kind(kind).activation
    run.save_model(final, preprocessing_spec(
        classes=splits.train.classes, standardizer=start.standardizer, sampling_rate=config.sampling_rate,
        window=model_window(final, config.sampling_rate), aggregation=start.aggregation, activation=activation))
    metrics = {}
    folded = fold_batchnorm(final)  # once for every split (predict_records leaves a folded model as it is)
    for part in scored_parts(config):
        td: TaskData = getattr(splits, part)
        preds = predict_records(folded, td.signals, sampling_rate=config.sampling_rate,
                                standardizer=start.standardizer, how=start.aggregation, activation=activation,
                                batch_size=config.eval_batch_size)
        bad = ~np.isfinite(preds).all(axis=tuple(range(1, preds.ndim)))
        if bad.any():
            raise NonFiniteError(f"{int(bad.sum())} of {len(bad)} {part} predictions are not finite (first: record "
                                 f"{np.asarray(td.ids)[bad][0]}); {run.path} is not marked COMPLETE")
        metrics[part] = write_predictions(run, part, td, preds)
    metrics["trainable_params"] = int(sum(np.prod(w.shape) for w in final.trainable_weights))
    metrics["epochs_trained"] = len(history)
    metrics["train_seconds"] = round(sum(r.get("time_s", 0.0) for r in history), 1)
    rd.write_json(run.metrics, metrics)
    try:
        from ecg_keras.evaluation.plots import plot_history
        import pandas as pd

        cols = [c for c in ("epoch", "loss", "val_loss", "lr", "val_" + headline_metric(kind))
                if history and c in history[0]]
        with rd.atomic_path(run.history_png) as tmp:
            plot_history(pd.DataFrame(history)[cols] if cols else pd.DataFrame(history), tmp,
                         title=f"{config.arch} / {config.task}")
    except Exception as e:  # a missing plot must not fail a finished training run
        print(f"warning: could not plot history: {e}", file=sys.stderr)
    return metrics

"""``train(config) -> run dir``: one-cycle AdamW training with ``model.fit``, per-epoch
checkpoints, exact resume, optional tf.distribute, and the final artefacts of a run."""
from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ecg_keras import tasks
from ecg_keras.datasets.base import Splits, TaskData
from ecg_keras.errors import ECGKerasError
from ecg_keras.preprocessing import preprocessing_spec
from ecg_keras.models.bnfold import fold_batchnorm
from ecg_keras.standardize import Standardizer
from ecg_keras.training import rundir as rd
from ecg_keras.training.config import TrainConfig
from ecg_keras.training.distribute import is_chief, make_strategy  # noqa: F401  (re-exported)
from ecg_keras.training import distribute as dist, precision
from ecg_keras.training.schedule import OneCycle, OneCycleMomentum, optimizer_for
from ecg_keras.windows import (aggregate, aggregation, eval_dataset, model_window, predict_records, steps_per_epoch,
                               train_dataset, window_length)


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


def _all_layers(layer) -> list:
    out = []
    for sub in getattr(layer, "layers", []):
        out += [sub, *_all_layers(sub)]
    return out


def _output_dense(model: keras.Model):
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.Dense):
            return layer
    return None


def compile_model(model: keras.Model, config: TrainConfig, kind: str, total_steps: int) -> OneCycle:
    optimizer, schedule = optimizer_for(config, config.lr, total_steps)
    model.compile(optimizer=optimizer, loss=task_loss(kind), jit_compile=bool(config.jit))
    model.optimizer.build(model.trainable_variables)  # a LossScaleOptimizer (mixed_float16) builds AdamW too
    return schedule


def task_loss(kind: str) -> keras.losses.Loss:
    """The training loss of a task kind (its ``Kind.loss`` built with ``Kind.loss_config``)."""
    spec = tasks.kind(kind)
    return getattr(keras.losses, spec.loss)(**dict(spec.loss_config))


# --------------------------------------------------------------------------- metrics
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def window_loss(kind: str, logits: np.ndarray, y: np.ndarray) -> float:
    """The training loss (BCE on logits, or MSE) over evaluation windows."""
    x, y = np.asarray(logits, np.float64), np.asarray(y, np.float64)
    if tasks.kind(kind).loss == "MeanSquaredError":
        return float(np.mean((x - y) ** 2))
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def score(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Headline metrics of a split: macro AUC (+Fmax) | AUC, accuracy | MAE, R²."""
    from ecg_keras import evaluation as ev

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if kind == tasks.REGRESSION:
        return {"mae": ev.mae(y_true, y_pred), "r2": ev.r2(y_true, y_pred)}
    per_class = ev.per_class_auc(y_true, y_pred)
    scored = int(np.isfinite(per_class).sum())
    out = {"macro_auc": float(np.nanmean(per_class)) if scored else float("nan")}
    if scored == per_class.size:
        out["macro_auc"] = ev.macro_auc(y_true, y_pred)
    else:
        out["classes_scored"] = scored  # classes with both labels present in this split
    if kind == tasks.BINARY:
        out["auc"] = out["macro_auc"]
        out["accuracy"] = ev.accuracy(y_true, y_pred)
    else:
        out["fmax"] = ev.fmax(y_true, y_pred)
    return out


def _headline(kind: str) -> str:
    return tasks.kind(kind).headline


class ValidationMetrics(keras.callbacks.Callback):
    """Predict every validation window once per epoch: ``val_loss`` over windows and the
    record-level headline metric (``val_macro_auc`` or ``val_mae``) after aggregation."""

    def __init__(self, data: TaskData, kind: str, how: str, standardizer: Standardizer, batch_size: int = 256):
        super().__init__()
        self.kind, self.how, self.y = kind, how, np.asarray(data.y)
        self.ds, self.record_index = eval_dataset(data.signals, batch_size=batch_size, sampling_rate=data.sampling_rate,
                                                  standardizer=standardizer)
        self.ds = dist.shard_by_data(self.ds)  # under MultiWorkerMirroredStrategy: each worker predicts a slice

    def on_epoch_end(self, epoch, logs=None):
        logits = self.model.predict(self.ds, verbose=0)
        logs = logs if logs is not None else {}
        logs["val_loss"] = window_loss(self.kind, logits, self.y[self.record_index])
        probs = _sigmoid(logits) if tasks.kind(self.kind).activation == "sigmoid" else logits
        preds = aggregate(probs, self.record_index, how=self.how, n_records=len(self.y))
        key = _headline(self.kind)
        try:
            logs["val_" + key] = score(self.kind, self.y, preds)[key]
        except ValueError:  # e.g. a single-class validation split
            logs["val_" + key] = float("nan")


class NonFiniteError(ECGKerasError, RuntimeError):
    """Training diverged: a loss or a prediction is NaN or infinite."""


class FiniteGuard(keras.callbacks.Callback):
    """Stop at the first epoch whose loss or validation loss (hence validation predictions) is not
    finite. It raises before EpochLog and Checkpointer run, so that epoch is neither logged nor
    checkpointed and ``--resume`` restarts from the last finite one."""

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: v for k, v in (logs or {}).items() if k in ("loss", "val_loss") and not np.isfinite(v)}
        if bad:
            raise NonFiniteError(f"epoch {epoch + 1}: {', '.join(f'{k} = {v}' for k, v in bad.items())}; training "
                                 "diverged (try a lower --lr). No checkpoint was written for this epoch.")


class EpochLog(keras.callbacks.Callback):
    """One history row per epoch (lr, beta_1, time); rewrites history.csv; prints time left."""

    def __init__(self, run: rd.RunDir, rows: list[dict], schedule: OneCycle, epochs: int, verbose: int = 1,
                 write: bool = True):
        super().__init__()
        self.run, self.rows, self.schedule, self.epochs, self.verbose = run, rows, schedule, epochs, verbose
        self.write = write  # False on the non-chief workers of a multi-worker run
        self._t0 = self._t_epoch = 0.0
        self._epoch_times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t_epoch = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import pandas as pd

        seconds = time.perf_counter() - self._t_epoch
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        lr, beta_1 = self.schedule.values(max(step - 1, 0))
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}, "lr": lr, "beta_1": beta_1,
               "time_s": round(seconds, 3)}
        row = {"epoch": row.pop("epoch"), "loss": row.pop("loss", float("nan")),
               "val_loss": row.pop("val_loss", float("nan")), **row}
        row.pop("learning_rate", None)
        self.rows.append(row)
        if self.write:
            rd.write_text(self.run.history_csv, pd.DataFrame(self.rows).to_csv(index=False))
        self._epoch_times.append(seconds)
        left = (self.epochs - epoch - 1) * float(np.median(self._epoch_times))
        if self.verbose:
            print(f"  epoch {epoch + 1}/{self.epochs} done in {seconds:.1f} s; about {format_duration(left)} left", flush=True)


class TensorBoardLog(keras.callbacks.Callback):
    """Each epoch's history row as TensorBoard scalars in ``RUN/tensorboard`` (Keras's layout:
    ``train/`` holds ``epoch_loss`` and ``epoch_learning_rate``, ``validation/`` holds ``epoch_loss``
    and the headline metric, e.g. ``epoch_macro_auc``; step = epoch number). ``tensorboard --logdir
    RUN`` shows one run, ``--logdir OUT/runs`` a whole reproduce grid. Runs after :class:`EpochLog`."""

    SKIP = ("epoch", "time_s")

    def __init__(self, run: rd.RunDir, rows: list[dict]):
        super().__init__()
        self.directory, self.rows, self._writers = run / "tensorboard", rows, {}

    def _writer(self, part: str):
        if part not in self._writers:
            from ecg_keras.files import check_directory

            check_directory(self.directory)  # TensorFlow writes the event files itself: no planted link on the way
            self._writers[part] = tf.summary.create_file_writer(str(check_directory(self.directory / part)))
        return self._writers[part]

    def on_epoch_end(self, epoch, logs=None):
        row = self.rows[-1]
        scalars = {"train": {}, "validation": {}}
        for key, value in row.items():
            if key in self.SKIP or not isinstance(value, (int, float)) or not np.isfinite(value):
                continue
            part = "validation" if key.startswith("val_") else "train"
            name = {"lr": "learning_rate"}.get(key, key.removeprefix("val_"))
            scalars[part]["epoch_" + name] = value
        for part, values in scalars.items():
            with self._writer(part).as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=int(row["epoch"]))
            self._writer(part).flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``5.5 h``, ``11.9 days``: the time left of a run or of a grid."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --------------------------------------------------------------------------- train
def train(config: TrainConfig, splits: Splits | None = None, *, data_path: str | None = None, download: bool = False,
          log=print) -> Path:
    """Train ``config`` and return the run directory (see :mod:`ecg_keras.training.rundir`).

    ``splits`` overrides the data named by ``config.dataset`` (programmatic use, tests;
    ``data_path`` then names where they came from, for config.json). With
    ``config.resume`` the stored config.json of ``config.output`` is used and training
    continues after the newest checkpoint; a complete run is returned unchanged.
    """
    config = config.resolved()
    strategy = make_strategy(config.distribute)
    chief = is_chief(strategy)  # with several workers only the chief writes the run directory
    run = rd.RunDir(config.output)
    if config.resume:
        stored = _stored_config(run)
        if run.is_complete():
            log(f"{run.path} is already complete; nothing to resume.")
            return run.path
        config = TrainConfig.from_dict({**stored.to_dict(), "resume": True, "verbose": config.verbose,
                                        "distribute": config.distribute, "output": config.output,
                                        "data_dir": config.data_dir or stored.data_dir,
                                        "cache_dir": config.cache_dir}).resolved()
    elif not run.is_empty():
        raise FileExistsError(f"{run.path} already holds a run; pass --resume to continue it or choose another --output")

    set_seed(config.seed, config.deterministic)
    ckpt = run.latest_checkpoint() if config.resume else None  # every worker reads the chief's (shared) one
    # Every worker has read the run directory before the chief writes to it, and all agree where to start.
    if not dist.all_agree(strategy, [float(ckpt["epoch"]) if ckpt else -1.0]):
        raise RuntimeError(f"the workers see different checkpoints in {run.path}; --output must be one shared "
                           "directory (see docs/DISTRIBUTED.md)")
    with rd.claim(run, resume=config.resume, log=log) if chief else contextlib.nullcontext():
        return _train(config, run, strategy, chief, splits, ckpt, data_path=data_path, download=download, log=log)


def _stored_config(run: rd.RunDir) -> TrainConfig:
    """The TrainConfig of the run in ``run`` (for --resume); a clear error if there is none."""
    if not run.path.exists():
        raise FileNotFoundError(f"--resume: {run.path} does not exist; drop --resume to start a new run there")
    if not run.config.exists():
        raise FileNotFoundError(f"--resume: {run.path} holds no run (no config.json); drop --resume to start one")
    try:
        stored = run.read_config()
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"--resume: {run.config} is not a training run's config ({err})") from None
    missing = [k for k in ("arch", "task", "dataset", "data_fingerprint") if not isinstance(stored, dict) or k not in stored]
    if missing:
        raise ValueError(f"--resume: {run.config} is not an ecg_keras training run's config (no "
                         f"{', '.join(missing)}); choose another --output")
    return TrainConfig.from_dict(stored)


def _train(config: TrainConfig, run: rd.RunDir, strategy: tf.distribute.Strategy, chief: bool,
           splits: Splits | None, ckpt: dict | None, *, data_path: str | None, download: bool, log) -> Path:

    records = None
    if splits is None:
        from ecg_keras.training.data import load_splits

        splits, records, root = load_splits(config, download=download, log=log)
        data_path = str(root)
    synthetic = bool(getattr(records, "synthetic", False)) or config.dataset == "synthetic"
    from ecg_keras.training.data import fingerprint

    train_td, val_td, test_td = splits.train, splits.val, splits.test
    kind, classes, how = train_td.kind, list(train_td.classes), aggregation(config.task)
    if synthetic and config.verbose:
        log("=" * 78 + "\n  SYNTHETIC DATA: a generated PTB-XL-like demo set, not real ECGs. Results say nothing\n"
            "  about clinical performance.\n" + "=" * 78)

    standardizer = Standardizer.fit(train_td.signals)
    window = window_length(config.sampling_rate)
    leads = int(np.asarray(train_td.signals[0]).shape[-1])
    steps = steps_per_epoch(len(train_td), config.batch_size)
    total_steps = steps * config.epochs

    info = {**config.to_dict(), "versions": versions(), "data_fingerprint": fingerprint(splits),
            "kind": kind, "classes": classes, "aggregation": how, "window": window, "leads": leads,
            "synthetic": synthetic, "steps_per_epoch": steps, "total_steps": total_steps,
            "replicas": strategy.num_replicas_in_sync, "resume": False, "data_path": data_path}
    if config.resume and run.config.exists():
        old = run.read_config()
        if old.get("data_fingerprint") != info["data_fingerprint"]:
            raise ValueError(f"the data differs from the data {run.path} was trained on; cannot resume")
        if chief and not (run.classes.exists() and run.standardizer.exists()):  # killed between its first files
            run.write_start(old, classes, standardizer)
    elif chief:
        run.write_start(info, classes, standardizer)

    with strategy.scope(), precision.policy(config.precision):
        model = build_model(config, len(classes), (window, leads))
        if tasks.kind(kind).linear:  # start the linear output at the training mean (targets in raw units)
            dense = _output_dense(model)
            if dense is not None and dense.use_bias:
                dense.bias.assign(np.full(dense.bias.shape, float(np.mean(train_td.y)), np.float32))
        if config.distribute != "none" and config.sync_batchnorm:
            for layer in _all_layers(model):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True  # = single-device training on the global batch
        schedule = compile_model(model, config, kind, total_steps)

    dist.prepare_fit(model, strategy)
    history: list[dict] = []
    initial_epoch = 0
    if ckpt is not None:
        run.restore_checkpoint(model, ckpt)  # the chief's (shared) checkpoint
        initial_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        log(f"Resuming {run.path} after epoch {initial_epoch} (optimizer step {ckpt['iterations']}).")

    if config.verbose:
        log(f"{config.arch} on {config.dataset}/{config.task}: {len(train_td)} train / {len(val_td)} val / "
            f"{len(test_td)} test records, {len(classes)} outputs, {config.epochs} epochs x {steps} steps, "
            f"lr {config.lr:g}, {strategy.num_replicas_in_sync} replica(s), XLA {'on' if config.jit else 'off'}"
            f"\n  run directory: {run.path}")

    t0 = time.perf_counter()
    if initial_epoch < config.epochs:
        fit_epochs(model, run, history, schedule, config, splits, standardizer, kind, how, chief,
                   initial_epoch=initial_epoch, until=config.epochs, total=config.epochs)
    return complete(run, model, config, strategy, splits, standardizer, kind, how, history,
                    time.perf_counter() - t0, synthetic, log)


def fit_epochs(model: keras.Model, run: rd.RunDir, history: list[dict], schedule: OneCycle, config: TrainConfig,
               splits: Splits, standardizer: Standardizer, kind: str, how: str, chief: bool, *,
               initial_epoch: int, until: int, total: int, extra_callbacks: tuple = (), what: str = "training") -> None:
    """Train epochs ``initial_epoch + 1 .. until`` (of ``total``) with the run's callbacks: one-cycle
    momentum, validation metrics, the non-finite guard, history rows and (chief) checkpoints."""
    def make(shard=(1, 0)):
        return train_dataset(splits.train.signals, splits.train.y, batch_size=config.batch_size,
                             sampling_rate=config.sampling_rate, standardizer=standardizer, seed=config.seed,
                             epochs=until, initial_epoch=initial_epoch, augment=config.augment, shard=shard)

    ds = dist.worker_datasets(model.distribute_strategy, make)
    verbose = 0 if not config.verbose else (1 if sys.stdout.isatty() else 2)
    callbacks = [OneCycleMomentum(schedule), *extra_callbacks,
                 ValidationMetrics(splits.val, kind, how, standardizer, config.eval_batch_size),
                 keras.callbacks.TerminateOnNaN(),
                 FiniteGuard(),
                 keras.callbacks.ProgbarLogger(),
                 EpochLog(run, history, schedule, total, verbose=config.verbose, write=chief)]
    if chief:
        callbacks += [TensorBoardLog(run, history), rd.Checkpointer(run, history, keep=config.keep_checkpoints)]
    model.fit(ds, epochs=until, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch(len(splits.train),
                                                                                            config.batch_size),
              callbacks=callbacks, verbose=verbose, shuffle=False)
    if model.stop_training or len(history) < until:
        raise NonFiniteError(f"{what} stopped early (non-finite loss?); {run.path} is left incomplete")


def complete(run: rd.RunDir, model: keras.Model, config: TrainConfig, strategy: tf.distribute.Strategy,
             splits: Splits, standardizer: Standardizer, kind: str, how: str, history: list[dict],
             train_seconds: float, synthetic: bool, log=print) -> Path:
    """The end of every run (training and finetuning): all workers must hold the same weights;
    the chief writes the final files (:func:`finish`) and COMPLETE, the others wait for it."""
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

    result = finish(run, model, config, splits, standardizer, kind, how, history)
    result["train_seconds_this_process"] = round(train_seconds, 1)
    extra = {"workers": workers, "weights_identical_across_workers": True} if workers > 1 else {}
    run.mark_complete(train_seconds_this_process=result["train_seconds_this_process"], **extra)
    dist.all_agree(strategy, [0.0])  # the other workers return once the run is complete
    if config.verbose:
        key = _headline(kind)
        log(f"Done: val {key} {result['val'].get(key, float('nan')):.4f}, test {key} "
            f"{result['test'].get(key, float('nan')):.4f}{' (SYNTHETIC data)' if synthetic else ''}. "
            f"Run directory: {run.path}")
    return Path(config.output)


def inference_model(model: keras.Model, config: TrainConfig, n_outputs: int, input_shape: tuple) -> keras.Model:
    """A fresh copy of the trained model outside any distribution scope, without optimiser state."""
    fresh = build_model(config, n_outputs, input_shape)
    fresh.set_weights(model.get_weights())
    return fresh


def finish(run: rd.RunDir, model: keras.Model, config: TrainConfig, splits: Splits, standardizer: Standardizer,
           kind: str, how: str, history: list[dict]) -> dict:
    """Write model.keras, predictions, metrics.json and history.png (everything but COMPLETE)."""
    n_outputs = len(splits.train.classes)
    final = inference_model(model, config, n_outputs, tuple(model.input_shape[1:]))
    run.save_model(final, preprocessing_spec(
        classes=splits.train.classes, standardizer=standardizer, sampling_rate=config.sampling_rate,
        window=model_window(final, config.sampling_rate), aggregation=how,
        activation=tasks.kind(kind).activation))
    metrics = {}
    # ICBEB2018's F_beta/G_beta fit their thresholds on training predictions (docs/PROTOCOL.md "Metrics")
    parts = ("val", "test", "train") if config.dataset == "icbeb2018" else ("val", "test")
    folded = fold_batchnorm(final)  # once for every split (predict_records leaves a folded model as it is)
    for part in parts:
        td: TaskData = getattr(splits, part)
        preds = predict_records(folded, td.signals, sampling_rate=config.sampling_rate, standardizer=standardizer,
                                how=how, activation=tasks.kind(kind).activation,
                                batch_size=config.eval_batch_size)
        bad = ~np.isfinite(preds).all(axis=tuple(range(1, preds.ndim)))
        if bad.any():
            raise NonFiniteError(f"{int(bad.sum())} of {len(bad)} {part} predictions are not finite (first: record "
                                 f"{np.asarray(td.ids)[bad][0]}); {run.path} is not marked COMPLETE")
        ids = np.asarray(td.ids)  # string ids (ICBEB2018) as unicode, not pickled objects
        ids = ids.astype(str) if ids.dtype == object else ids
        rd.write_npz(run.predictions / f"{part}.npz", ids=ids, y_true=np.asarray(td.y, np.float32),
                     y_pred=preds.astype(np.float32))
        try:
            metrics[part] = {**score(kind, td.y, preds), "n_records": len(td)}
        except ValueError as e:
            metrics[part] = {"error": str(e), "n_records": len(td)}
    metrics["trainable_params"] = int(sum(np.prod(w.shape) for w in final.trainable_weights))
    metrics["epochs_trained"] = len(history)
    metrics["train_seconds"] = round(sum(r.get("time_s", 0.0) for r in history), 1)
    rd.write_json(run.metrics, metrics)
    try:
        from ecg_keras.evaluation.plots import plot_history
        import pandas as pd

        cols = [c for c in ("epoch", "loss", "val_loss", "lr", "val_" + _headline(kind)) if history and c in history[0]]
        with rd.atomic_path(run.history_png) as tmp:
            plot_history(pd.DataFrame(history)[cols] if cols else pd.DataFrame(history), tmp,
                         title=f"{config.arch} / {config.task}")
    except Exception as e:  # a missing plot must not fail a finished training run
        print(f"warning: could not plot history: {e}", file=sys.stderr)
    return metrics

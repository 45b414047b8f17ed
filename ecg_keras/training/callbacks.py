"""The callbacks of a training run: validation metrics over every epoch, the non-finite guard,
history.csv rows, TensorBoard scalars and the finetuning phase tag."""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from ecg_keras import artefact, tasks
from ecg_keras.datasets.base import TaskData
from ecg_keras.errors import ECGKerasError
from ecg_keras.evaluation.scoring import headline_metric, split_metrics
from ecg_keras.standardize import Standardizer
from ecg_keras.training import distribute as dist
from ecg_keras.training import rundir as rd
from ecg_keras.training.schedule import OneCycle
from ecg_keras.windows import aggregate, eval_dataset



def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def window_loss(kind: str, logits: np.ndarray, y: np.ndarray) -> float:
    """The training loss (BCE on logits, or MSE) over evaluation windows."""
    x, y = np.asarray(logits, np.float64), np.asarray(y, np.float64)
    if tasks.kind(kind).loss == "MeanSquaredError":
        return float(np.mean((x - y) ** 2))
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


class ValidationMetrics(keras.callbacks.Callback):
    """Predict every validation window once per epoch: ``val_loss`` over windows and the
    record-level headline metric (``val_macro_auc`` or ``val_mae``) after aggregation."""

    def __init__(self, data: TaskData, kind: str, how: str, standardizer: Standardizer, batch_size: int = 256,
                 window: int | None = None):
        super().__init__()
        self.kind, self.how, self.y = kind, how, np.asarray(data.y)
        self.ds, self.record_index = eval_dataset(data.signals, batch_size=batch_size, sampling_rate=data.sampling_rate,
                                                  window=window, standardizer=standardizer)
        self.ds = dist.shard_by_data(self.ds)  # under MultiWorkerMirroredStrategy: each worker predicts a slice

    def on_epoch_end(self, epoch, logs=None):
        logits = self.model.predict(self.ds, verbose=0)
        logs = logs if logs is not None else {}
        logs["val_loss"] = window_loss(self.kind, logits, self.y[self.record_index])
        probs = sigmoid(logits) if tasks.kind(self.kind).activation == "sigmoid" else logits
        preds = aggregate(probs, self.record_index, how=self.how, n_records=len(self.y))
        key = headline_metric(self.kind)
        try:
            logs["val_" + key] = split_metrics(self.kind, self.y, preds)[key]
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
        self.directory, self.rows, self._writers = run / artefact.TENSORBOARD, rows, {}

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


class PhaseTag(keras.callbacks.Callback):
    """Adds ``phase`` (finetuning: 1 = head only, 2 = all layers) to the epoch logs -> history.csv."""

    def __init__(self, phase: int):
        super().__init__()
        self.phase = phase

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["phase"] = float(self.phase)

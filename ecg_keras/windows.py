"""Sliding-window tf.data pipelines and per-record aggregation (docs/PROTOCOL.md "Windows").

Windows are read from the records where they are, a batch at a time
(:class:`ecg_keras.datasets.cache.RecordReader`: ``pread`` from the signal cache's file, or slices of
records in memory), and standardised per batch, so memory does not grow with the number of records
and fixed- and variable-length datasets share one pipeline. Record order and crop offsets are drawn
in TensorFlow (stateless, seeded); only the reading runs in Python, once per batch.

Records shorter than one window are zero-padded at the end (after standardisation, i.e. with
the training mean) to exactly one window: they give one training crop and one evaluation window.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf

from ecg_keras import augment as augmentations
from ecg_keras import tasks
from ecg_keras.tasks import AGGREGATIONS
from ecg_keras.datasets.base import RecordView
from ecg_keras.datasets.cache import RecordReader
from ecg_keras.io.records import check_signal
from ecg_keras.preprocessing import WINDOW_SECONDS, window_length  # noqa: F401  (their home: preprocessing)
from ecg_keras.standardize import Standardizer

#: Longest record :func:`predict_records` and the exported whole-record models accept by default:
#: 24 h (a Holter recording), 8,640,000 samples at 100 Hz. Windows are processed in bounded
#: batches, so memory grows with the record itself (48 bytes per 12-lead sample), not with its windows.
MAX_RECORD_SECONDS = 24 * 3600
FLAT_POLICIES = ("error", "warn", "ignore")


class _Windows:
    """Standardised windows of checked records, cut a batch at a time."""

    def __init__(self, signals, window: int, standardizer: Standardizer | None):
        self.reader = signals if isinstance(signals, RecordReader) else RecordReader(signals)
        self.window, self.standardizer = window, standardizer
        for chunk in self.reader.chunks():  # one streamed pass, bounded memory
            if not np.isfinite(chunk).all():
                raise ValueError("signals contain NaN or inf")
        self.lengths = np.maximum(self.reader.lengths, window)  # short records count as padded to one window

    def read(self, records: np.ndarray, starts: np.ndarray) -> np.ndarray:
        x = self.reader.windows(records, starts, self.window)
        if self.standardizer is None:
            return x
        x = self.standardizer.transform(x)
        for k in np.flatnonzero(self.reader.lengths[records] < self.window):  # zero padding, as standardised
            x[k, self.reader.lengths[records[k]]:] = 0.0
        return x

    @tf.autograph.experimental.do_not_convert
    def tf_read(self, records, starts):
        """:meth:`read` as a TensorFlow op on a batch of (record, start) pairs."""
        x = tf.numpy_function(self.read, [records, starts], tf.float32, stateful=False)
        x.set_shape([None, self.window, self.reader.leads])
        return x


def train_dataset(signals, y: np.ndarray, *, batch_size: int = 128, sampling_rate: int = 100,
                  window: int | None = None, standardizer: Standardizer | None = None, seed: int = 0,
                  epochs: int | None = None, initial_epoch: int = 0, augment: Sequence[str] | str = (),
                  shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
    """Batches of (x (b, window, leads), y (b, C)): one random crop per record per epoch.

    Epoch ``e`` is a pure function of ``(seed, e)`` (record order and crop offsets), so a run
    resumed at ``initial_epoch`` sees exactly the batches an uninterrupted run would. With
    ``epochs=None`` it repeats forever; pass ``steps_per_epoch=steps_per_epoch(n, batch_size)``.
    ``augment``: names from ``ecg_keras.augment.NAMES``, keyed on (seed, global step).
    ``shard=(workers, index)``: this worker's part of every global batch of ``batch_size`` (rows
    ``index * b // workers`` to ``(index + 1) * b // workers``); only those windows are read.
    """
    window = window or window_length(sampling_rate)
    source = _Windows(signals, window, standardizer)
    n = len(source.lengths)
    y = np.asarray(y, dtype=np.float32).reshape(n, -1)
    max_offset = tf.constant(source.lengths - window + 1)  # number of valid crop positions
    labels = tf.constant(y)
    workers, index = shard

    def epoch_batches(epoch):
        key = tf.stack([tf.cast(seed, tf.int64), epoch])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=key))
        u = tf.random.stateless_uniform([n], seed=key + tf.constant([0, 1_000_003], tf.int64), dtype=tf.float64)
        return tf.data.Dataset.from_tensor_slices((order, u)).batch(batch_size)

    def part(idx, u):
        b = tf.shape(idx, out_type=tf.int64)[0]
        lo, hi = index * b // workers, (index + 1) * b // workers
        return idx[lo:hi], u[lo:hi]

    def crop(idx, u):
        idx = tf.cast(idx, tf.int64)
        pos = tf.cast(tf.floor(u * tf.cast(tf.gather(max_offset, idx), tf.float64)), tf.int64)
        return source.tf_read(idx, pos), tf.gather(labels, idx)

    epochs_ds = (tf.data.Dataset.range(initial_epoch, epochs) if epochs is not None
                 else tf.data.Dataset.range(initial_epoch, 2**62))
    ds = (epochs_ds.flat_map(epoch_batches)
          .map(part)
          .map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
    ds = augmentations.apply(ds, augment, seed=seed, first_step=initial_epoch * steps_per_epoch(n, batch_size),
                             sampling_rate=sampling_rate, scale=standardizer.std if standardizer else 1.0)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n_records: int, batch_size: int) -> int:
    return math.ceil(n_records / batch_size)


def window_index(lengths: Sequence[int], window: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(record_index, offset) of every evaluation window; windows past the end are dropped."""
    rec, off = [], []
    for i, length in enumerate(lengths):
        o = np.arange(0, max(int(length), window) - window + 1, stride, dtype=np.int64)
        rec.append(np.full(len(o), i, dtype=np.int64))
        off.append(o)
    return np.concatenate(rec), np.concatenate(off)


def eval_dataset(signals, *, batch_size: int = 256, sampling_rate: int = 100, window: int | None = None,
                 stride: int | None = None, standardizer: Standardizer | None = None
                 ) -> tuple[tf.data.Dataset, np.ndarray]:
    """All windows (stride = half a window) in record order, and each window's record index."""
    window = window or window_length(sampling_rate)
    stride = stride or window // 2
    source = _Windows(signals, window, standardizer)
    record_index, offsets = window_index(source.lengths, window, stride)
    ds = (tf.data.Dataset.from_tensor_slices((record_index, offsets)).batch(batch_size)
          .map(source.tf_read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .prefetch(tf.data.AUTOTUNE))
    return ds, record_index


def eval_windows(signals, *, sampling_rate: int = 100, window: int | None = None, stride: int | None = None,
                 standardizer: Standardizer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation windows as one numpy array (m, window, leads) plus each window's record index."""
    window = window or window_length(sampling_rate)
    stride = stride or window // 2
    source = _Windows(signals, window, standardizer)
    record_index, offsets = window_index(source.lengths, window, stride)
    return source.read(record_index, offsets), record_index


def aggregate(window_preds: np.ndarray, record_index: np.ndarray, how: str = "max",
              n_records: int | None = None) -> np.ndarray:
    """Aggregate window predictions per record (element-wise max or mean), one row per record in order."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    preds = np.asarray(window_preds)
    record_index = np.asarray(record_index)
    n = int(record_index.max()) + 1 if n_records is None else n_records
    if len(preds) != len(record_index):
        raise ValueError(f"{len(preds)} predictions for {len(record_index)} window indices")
    counts = np.bincount(record_index, minlength=n)
    if (counts == 0).any():
        raise ValueError(f"records without windows: {np.flatnonzero(counts == 0)[:10].tolist()}")
    order = np.argsort(record_index, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_preds = preds[order]
    if how == "max":
        return np.maximum.reduceat(sorted_preds, bounds, axis=0)
    return np.add.reduceat(sorted_preds.astype(np.float64), bounds, axis=0) / counts[:, None]


def check_signals(signals, *, flat: str = "error", max_length: int | None = None) -> list[int]:
    """Refuse records the models must not answer; returns the indices of records with a flat lead.

    Each record goes through :func:`ecg_keras.io.records.check_signal` (named "record i"), with the
    benchmark's rule (a lead constant over the whole record is flat; no amplitude limit), not the
    stricter serving policy (docs/SERVING.md) that predict and the exported graphs apply:

    * non-finite samples (NaN/Inf: lead-off, corrupted files): always a ``DataError`` naming the
      record index and the lead(s);
    * a flat lead (lead-off or a missing lead stored as zeros): ``flat="error"`` raises
      ``DataError``, ``"warn"`` warns, ``"ignore"`` accepts; the first ten records are named in
      one message;
    * records longer than ``max_length`` samples: ``DataError``.
    """
    from ecg_keras.datasets.base import DataError

    if flat not in FLAT_POLICIES:
        raise ValueError(f"flat must be one of {FLAT_POLICIES}, got {flat!r}")
    flat_records, messages = [], []
    # records of the signal cache are read, not mapped: checking a test set leaves no pages resident
    record = RecordReader(signals).record if isinstance(signals, (RecordView, np.memmap)) else signals.__getitem__
    for i in range(len(signals)):
        message = check_signal(record(i), None, f"record {i}", flat_is_error=False, min_ptp=None, max_mv=None,
                               max_length=max_length)
        if message and flat != "ignore":
            messages.append(message)
            flat_records.append(i)
    text = "; ".join(messages[:10]) + (f" (and {len(messages) - 10} more records)" if len(messages) > 10 else "")
    if messages and flat == "error":
        raise DataError(f"{text}; pass flat='warn' or 'ignore' to predict anyway")
    if messages and flat == "warn":
        warnings.warn(text, stacklevel=3)
    return flat_records


def predict_records(model, signals, *, sampling_rate: int = 100, standardizer: Standardizer | None = None,
                    how: str = "max", activation: str | None = "sigmoid", batch_size: int = 256,
                    flat: str = "warn", max_record_seconds: float | None = MAX_RECORD_SECONDS,
                    window: int | None = None, stride: int | None = None) -> np.ndarray:
    """Test-time augmentation: predict every window, apply ``activation`` to logits, aggregate per record.
    ``window`` / ``stride`` (samples): the model's input length and half of it unless given.

    Windows go through the model ``batch_size`` at a time (across and within records), so a long
    record never becomes one batch. Input checks (:func:`check_signals`): NaN/Inf is refused
    (``DataError`` naming the record index and lead); a flat lead is reported by a warning
    (``flat="warn"``, the default: benchmark test sets are scored in full, as in the reference) or
    refused (``flat="error"``); a record longer than ``max_record_seconds`` (default 24 h, None: no
    limit) is refused. Conv->BatchNorm pairs are folded into the convolutions for the prediction
    (:func:`~ecg_keras.models.bnfold.fold_batchnorm`; ``model`` itself is unchanged).
    """
    from ecg_keras.models.bnfold import fold_batchnorm

    max_length = None if max_record_seconds is None else int(max_record_seconds * sampling_rate)
    check_signals(signals, flat=flat, max_length=max_length)
    ds, record_index = eval_dataset(signals, batch_size=batch_size, sampling_rate=sampling_rate,
                                    standardizer=standardizer, window=window or model_window(model, sampling_rate),
                                    stride=stride)
    outputs = fold_batchnorm(model).predict(ds, verbose=0)
    if activation == "sigmoid":
        outputs = 1.0 / (1.0 + np.exp(-outputs.astype(np.float64)))
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")
    return aggregate(outputs, record_index, how=how, n_records=len(signals)).astype(np.float32)


def aggregation(task: str) -> str:
    """How window predictions of ``task`` are aggregated per record: "mean" or "max" (its ``Task.aggregation``)."""
    return tasks.aggregation(task)


def model_window(model, sampling_rate: int) -> int:
    """The model's fixed input length, or the benchmark window (2.5 s) for length-agnostic models."""
    length = model.input_shape[1]
    return int(length) if length is not None else window_length(sampling_rate)

"""Wavelet+NN baseline: hand-crafted DWT statistics -> standardisation -> a one-hidden-layer MLP.

Features (reference ``wavelet.get_single_ecg_features``, vectorised over records and leads):
per lead, ``pywt.wavedec(x, "db6", level=5)`` over the full record (6 coefficient arrays), and per
array 12 statistics in the reference's order::

    entropy, zero crossings, mean crossings, p5, p25, p75, p95, median, mean, std, var, rms

-> 12 leads x 6 arrays x 12 = 864 features, laid out ``[lead][array][statistic]``.
"entropy" is the Shannon entropy (nats) of the empirical distribution of the coefficient values
(value counts), "rms" is the reference's ``mean(sqrt(x**2))`` (i.e. the mean absolute value),
std/var are population (ddof=0) statistics, percentiles use linear interpolation.

Classifier: StandardScaler (stored as JSON) -> Dense 128 ReLU -> Dropout 0.25 -> Dense n_classes;
Adamax (Keras default lr 1e-3), binary cross-entropy, 30 epochs, batch 128, weights of the epoch
with the best validation loss. The Keras model outputs logits (``predict_proba`` applies the
sigmoid), which is numerically the reference's sigmoid output + BCE.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pywt
from keras import layers

FEATURE_NAMES = (
    "entropy", "zero_crossings", "mean_crossings", "p5", "p25", "p75", "p95",
    "median", "mean", "std", "var", "rms",
)
N_STATS = len(FEATURE_NAMES)


def _entropy_sorted(s: np.ndarray) -> np.ndarray:
    """Entropy of the value counts of every row of the row-sorted ``s`` (m, L):
    log L - sum(c log c) / L (equals ``scipy.stats.entropy`` of the ``Counter`` frequencies)."""
    m, n = s.shape
    new = np.ones_like(s, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    starts = np.flatnonzero(new.ravel())
    counts = np.diff(np.append(starts, s.size)).astype(np.float64)
    clogc = np.bincount(starts // n, weights=counts * np.log(counts), minlength=m)
    return np.log(n) - clogc / n


def _percentiles_sorted(s: np.ndarray, qs) -> list[np.ndarray]:
    """``np.percentile(..., method="linear")`` of every row of the row-sorted ``s``."""
    n = s.shape[1]
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        out.append(s[:, lo] + (s[:, hi] - s[:, lo]) * frac)
    return out


def _coefficient_stats(c: np.ndarray) -> np.ndarray:
    """12 statistics along the last axis of ``c`` (m, L) -> (m, 12)."""
    c = c.astype(np.float64, copy=False)
    mean = c.mean(axis=1)
    zc = np.count_nonzero(np.diff(c > 0, axis=1), axis=1)
    mc = np.count_nonzero(np.diff(c > mean[:, None], axis=1), axis=1)
    srt = np.sort(c, axis=1)
    p5, p25, p75, p95, med = _percentiles_sorted(srt, (5, 25, 75, 95, 50))
    var = c.var(axis=1)
    rms = np.abs(c).mean(axis=1)  # reference: nanmean(sqrt(x**2))
    return np.stack(
        [_entropy_sorted(srt), zc, mc, p5, p25, p75, p95, med, mean, np.sqrt(var), var, rms], axis=1
    )


def wavelet_features(
    signals: np.ndarray,
    wavelet: str = "db6",
    level: int = 5,
    chunk_size: int = 512,
) -> np.ndarray:
    """DWT statistics of every record: ``signals`` (n, time, leads) -> (n, leads * (level+1) * 12).

    Vectorised over records and leads (``pywt.wavedec(..., axis=1)``) and processed in chunks of
    ``chunk_size`` records, so PTB-XL's 21,837 records take well under a minute on one core.
    """
    signals = np.asarray(signals)
    if signals.ndim != 3:
        raise ValueError(f"signals must be (n, time, leads), got shape {signals.shape}")
    n, _, leads = signals.shape
    out = np.empty((n, leads, level + 1, N_STATS), dtype=np.float32)
    for start in range(0, n, chunk_size):
        x = np.asarray(signals[start:start + chunk_size], dtype=np.float64)
        m = x.shape[0]
        coeffs = pywt.wavedec(x, wavelet, level=level, axis=1)  # list of (m, L_j, leads)
        for j, c in enumerate(coeffs):
            rows = np.moveaxis(c, 1, 2).reshape(m * leads, c.shape[1])
            out[start:start + m, :, j, :] = _coefficient_stats(rows).reshape(m, leads, N_STATS)
    return out.reshape(n, -1)


class FeatureScaler:
    """StandardScaler (sklearn semantics: population std, zero std -> 1) serialisable as JSON."""

    def __init__(self, mean=None, scale=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, x: np.ndarray) -> "FeatureScaler":
        x = np.asarray(x, dtype=np.float64)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("FeatureScaler is not fitted")
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean.tolist(), "scale": self.scale.tolist()})

    @classmethod
    def from_json(cls, text: str) -> "FeatureScaler":
        d = json.loads(text)
        return cls(d["mean"], d["scale"])


def build_wavelet_mlp(
    n_features: int = 864,
    num_classes: int = 71,
    hidden: int = 128,
    dropout: float = 0.25,
    name: str = "wavelet_nn",
    classifier_activation=None,
) -> keras.Model:
    """Dense(hidden, relu) -> Dropout -> Dense(num_classes) (logits by default; Keras default
    glorot init as in the reference, which was itself written in Keras)."""
    inputs = keras.Input((n_features,), name="features")
    x = layers.Dense(hidden, activation="relu", name="mlp_dense1")(inputs)
    x = layers.Dropout(dropout, name="mlp_dropout1")(x)
    out = layers.Dense(num_classes, name="head_logits")(x)
    if classifier_activation is not None:
        out = layers.Activation(classifier_activation, name="head_activation")(out)
    return keras.Model(inputs, out, name=name)


class _BestWeights(keras.callbacks.Callback):
    """Keep the weights of the epoch with the lowest ``monitor`` and restore them at the end."""

    def __init__(self, monitor: str = "val_loss"):
        super().__init__()
        self.monitor = monitor
        self.best = np.inf
        self.best_epoch = -1
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_epoch = float(value), epoch
            self.weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


class WaveletNN:
    """The Wavelet+NN baseline: ``fit(x_train, y_train, x_val, y_val)``, ``predict_proba(x)``.

    ``x`` are full records (n, time, 12) (features are computed internally), or precomputed
    features when ``features=True`` is passed. ``save(dir)`` writes ``model.keras``,
    ``scaler.json`` and ``config.json``; ``WaveletNN.load(dir)`` restores it.
    """

    def __init__(self, num_classes: int, wavelet: str = "db6", level: int = 5, hidden: int = 128,
                 dropout: float = 0.25, epochs: int = 30, batch_size: int = 128,
                 learning_rate: float = 1e-3, seed: int | None = 0):
        self.num_classes = int(num_classes)
        self.wavelet, self.level = wavelet, int(level)
        self.hidden, self.dropout = int(hidden), float(dropout)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate = float(learning_rate)
        self.seed = seed
        self.scaler = FeatureScaler()
        self.model: keras.Model | None = None
        self.history = None
        self.best_epoch = None

    def config(self) -> dict:
        return {k: getattr(self, k) for k in (
            "num_classes", "wavelet", "level", "hidden", "dropout", "epochs", "batch_size",
            "learning_rate", "seed")}

    def features(self, x) -> np.ndarray:
        return wavelet_features(x, self.wavelet, self.level)

    def fit(self, x_train, y_train, x_val, y_val, *, features: bool = False, verbose: int = 0):
        f_train = np.asarray(x_train) if features else self.features(x_train)
        f_val = np.asarray(x_val) if features else self.features(x_val)
        f_train = self.scaler.fit_transform(f_train)
        f_val = self.scaler.transform(f_val)
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        self.model = build_wavelet_mlp(f_train.shape[1], self.num_classes, self.hidden,
                                       self.dropout)
        self.model.compile(
            optimizer=keras.optimizers.Adamax(self.learning_rate),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
        )
        best = _BestWeights("val_loss")
        self.history = self.model.fit(
            f_train, np.asarray(y_train, dtype=np.float32),
            validation_data=(f_val, np.asarray(y_val, dtype=np.float32)),
            epochs=self.epochs, batch_size=self.batch_size, callbacks=[best], verbose=verbose,
        )
        self.best_epoch = best.best_epoch
        return self

    def predict_proba(self, x, *, features: bool = False, batch_size: int = 1024) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("WaveletNN is not fitted")
        f = self.scaler.transform(np.asarray(x) if features else self.features(x))
        logits = self.model.predict(f, batch_size=batch_size, verbose=0)
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def save(self, directory) -> Path:
        from ecg_keras.files import atomic_path, write_text

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with atomic_path(d / "model.keras") as tmp:
            self.model.save(tmp)
        write_text(d / "scaler.json", self.scaler.to_json())
        write_text(d / "config.json", json.dumps(self.config(), indent=2))
        return d

    @classmethod
    def load(cls, directory) -> "WaveletNN":
        d = Path(directory)
        obj = cls(**json.loads((d / "config.json").read_text()))
        obj.scaler = FeatureScaler.from_json((d / "scaler.json").read_text())
        obj.model = keras.models.load_model(d / "model.keras")
        return obj

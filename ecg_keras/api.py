"""Arrays in, named probabilities out: ``ecg_keras.load(...)`` and ``pretrained(...)``.

    import ecg_keras
    model = ecg_keras.load("runs/fcn_wang")          # run, release, released name, preset, hf://, kaggle://,
                                                    # SavedModel, .onnx or .tflite
    frame = model.predict(signal, fs=500)           # (samples, leads) in mV, or a list of them
    frame.loc["record 0", "AFIB"]

``predict`` is the command line's ``ecg-keras predict`` on arrays instead of files: the same
loading (:func:`ecg_keras.predict.load_model`), the same lead matching, signal checks
(:func:`ecg_keras.io.records.check_signal`), resampling to the model's rate and whole-record
rule (:func:`ecg_keras.predict.run_predictions`), so the probabilities are the command line's.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.datasets.base import DataError
from ecg_keras.io.records import LEAD_NAMES, Record
from ecg_keras.tasks import ALL
from ecg_keras.zoo import DEFAULT_TAG


class Model:
    """A trained model with its preprocessing (classes, standardiser, sampling rate, windows,
    aggregation); made by :func:`load`."""

    def __init__(self, predictor):
        self._predictor = predictor

    @property
    def classes(self) -> list[str]:
        return list(self._predictor.classes)

    @property
    def sampling_rate(self) -> int:
        """The model's rate in Hz (signals at any ``fs`` are resampled to it)."""
        return self._predictor.sampling_rate

    @property
    def aggregation(self) -> str:
        return self._predictor.aggregation

    @property
    def identity(self) -> dict:
        """Name, kind, source, architecture, task, training data, sha256 (as ``ecg-keras predict`` prints)."""
        return self._predictor.identity()

    @property
    def keras_model(self):
        """The Keras model (logits; None for SavedModel, ONNX and LiteRT models)."""
        return self._predictor.keras_model

    def __repr__(self) -> str:
        p = self._predictor
        return (f"<ecg_keras.Model {p.name!r} ({p.kind}): {len(p.classes)} classes, {p.sampling_rate} Hz, "
                f"{p.aggregation} over windows{', SYNTHETIC-trained' if p.synthetic else ''}>")

    def predict(self, signals, *, fs: float, leads: Sequence[str] | None = None, names: Sequence[str] | None = None,
                errors: str = "raise"):
        """Class probabilities, one row per record (index: ``names``, default "record i") and one
        column per class; ``frame.attrs["model"]`` is the model's identity.

        ``signals``: one array (samples, leads) in mV or a list of them; ``fs``: their sampling rate
        in Hz (required: a wrong rate gives wrong answers, never an error); ``leads``: the column
        names (default the 12 standard leads in order), matched to the model's leads by name.
        A record that fails the checks of ``ecg-keras predict`` (NaN/Inf, a flat lead, values
        beyond 100 mV, unmatched leads) raises ``DataError`` naming it (``errors="raise"``), or
        with ``errors="nan"`` gets NaN probabilities and its reason in ``frame.attrs["problems"]``.
        ``frame.attrs["notes"]``: what ``ecg-keras predict`` prints as ``note:`` lines, per record (e.g. a
        record shorter than the model's window, zero-padded to it).
        """
        import pandas as pd

        from ecg_keras.predict import run_predictions

        if errors not in ("raise", "nan"):
            raise ValueError(f"errors must be 'raise' or 'nan', got {errors!r}")
        records = _records(signals, fs, leads, names)
        predictor, items = run_predictions(self._predictor, records, progress=False)
        problems = {it.name: it.problem for it in items if it.problem is not None}
        if problems and errors == "raise":
            raise DataError("; ".join(problems.values()))
        probs = np.full((len(items), len(predictor.classes)), np.nan)
        for i, it in enumerate(items):
            if it.probabilities is not None:
                probs[i] = it.probabilities
        frame = pd.DataFrame(probs, index=pd.Index([it.name for it in items], name="record"),
                             columns=list(predictor.classes))
        frame.attrs["model"] = predictor.identity()
        frame.attrs["problems"] = problems
        frame.attrs["notes"] = {it.name: list(it.notes) for it in items if it.notes}
        return frame


def _records(signals, fs, leads, names) -> list[Record]:
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise ValueError(f"fs must be the sampling rate in Hz, got {fs!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"fs must be a positive sampling rate in Hz, got {fs!r}")
    if isinstance(signals, np.ndarray) or (hasattr(signals, "shape") and hasattr(signals, "ndim")):
        signals = [signals]
    signals = list(signals)
    if not signals:
        raise ValueError("no signals given")
    names = [f"record {i}" for i in range(len(signals))] if names is None else [str(n) for n in names]
    if len(names) != len(signals) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(signals)} distinct names, one per signal")
    out = []
    for name, x in zip(names, signals):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise DataError(f"{name}: expected an array (samples, leads), got shape {x.shape}")
        columns = list(leads) if leads is not None else list(LEAD_NAMES)
        if len(columns) != x.shape[1]:
            raise DataError(f"{name}: {x.shape[1]} columns but {len(columns)} lead names"
                            + ("" if leads is not None else " (the 12 standard leads; pass leads=[...])")
                            + (": is the array (leads, samples)? pass signal.T" if x.shape[0] == len(columns) else ""))
        out.append(Record(name=name, path=Path(name), signal=x, fs=rate, leads=columns))
    return out


def load(source, *, models_directory=None) -> Model:
    """A :class:`Model` from a training run directory, a release or preset directory, a released
    model's name, ``hf://owner/name``, ``kaggle://owner/model/keras/variation``, a SavedModel
    directory, an ONNX or a LiteRT file; anything else is a ``ValueError`` saying why."""
    from ecg_keras.predict import ModelError, load_model

    try:
        return Model(load_model(source, models_directory))
    except ModelError as e:
        raise ValueError(str(e)) from None


def pretrained(arch: str = "xresnet1d101", task: str = ALL.name, include_top: bool = True,
               num_classes: int | None = None, weights=DEFAULT_TAG, *, name: str | None = None,
               models_directory=None, base_url: str | None = None, cache_dir=None):
    """A released model as a Keras model (logits), keras.applications style: :func:`ecg_keras.zoo.pretrained`
    (its arguments, ``weights`` a data tag such as "ptbxl" or a release directory). ``weights`` (or
    ``arch``) may also be a preset directory or a hub handle (``hf://owner/name``, ``kaggle://...``):
    the preset's model, every file sha256 checked, with ``model.ecg_info`` its preprocessing."""
    from ecg_keras import presets, runs, zoo

    for source in (weights, arch):
        if presets.is_handle(source) or (isinstance(source, (str, Path)) and runs.is_preset(Path(source))):
            if include_top and num_classes is not None:
                raise ValueError("num_classes applies to a new head: models.replace_head(pretrained(...), n)")
            return presets.load_preset(source, include_top=include_top)
    return zoo.pretrained(arch, task, include_top, num_classes, weights, name=name,
                          models_directory=models_directory, base_url=base_url, cache_dir=cache_dir)

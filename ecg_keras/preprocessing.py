"""A model's preprocessing as one JSON-serialisable dict, the form saved with the model.

What turns a recording into a model's input and its outputs into a prediction: classes,
standardiser, sampling rate, window and stride (samples), aggregation over windows, output
activation and lead order. ``model.keras`` carries it in its config
(:class:`ecg_keras.models.classifier.ECGClassifier`), a preset in ``preprocessor.json``; both are
written from :func:`preprocessing_spec` and read by :mod:`ecg_keras.runs`. Importable without TensorFlow.
"""
from __future__ import annotations

import math
from typing import Sequence

from ecg_keras.io.base import LEAD_NAMES

#: The benchmark's window (docs/PROTOCOL.md "Windows"); ``ecg-keras train --window`` trains on another.
WINDOW_SECONDS = 2.5


def window_length(sampling_rate: int, seconds: float = WINDOW_SECONDS) -> int:
    """Samples per window of ``seconds`` (default 2.5 s: 250 at 100 Hz, 1250 at 500 Hz); ValueError
    unless ``seconds`` is positive and a whole number of samples at ``sampling_rate``."""
    samples = float(seconds) * sampling_rate
    n = round(samples) if math.isfinite(samples) else 0
    if n < 1 or abs(samples - n) > 1e-6 * samples:
        raise ValueError(f"a window of {seconds:g} s is not a positive whole number of samples at {sampling_rate} Hz "
                         f"({samples:g}); e.g. 2.5, 5 or 10")
    return int(n)


#: The fields a reader needs (the others have defaults: stride half a window, the 12 standard leads).
REQUIRED = ("classes", "standardizer", "sampling_rate", "aggregation")


def preprocessing_spec(*, classes: Sequence[str], standardizer, sampling_rate: int, window: int,
                       aggregation: str, activation: str | None, stride: int | None = None,
                       leads: Sequence[str] = LEAD_NAMES) -> dict:
    """The preprocessing dict. ``standardizer``: a :class:`~ecg_keras.standardize.Standardizer` or its dict."""
    std = standardizer if isinstance(standardizer, dict) else standardizer.to_dict()
    return {"classes": [str(c) for c in classes], "standardizer": dict(std), "sampling_rate": int(sampling_rate),
            "window": int(window), "stride": int(stride or window // 2), "aggregation": str(aggregation),
            "activation": activation, "lead_order": [str(x) for x in leads]}

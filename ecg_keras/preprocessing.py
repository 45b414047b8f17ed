"""A model's preprocessing as one JSON-serialisable dict, the form saved with the model.

What turns a recording into a model's input and its outputs into a prediction: classes,
standardiser, sampling rate, window and stride (samples), aggregation over windows, output
activation and lead order. ``model.keras`` carries it in its config
(:class:`ecg_keras.models.classifier.ECGClassifier`), a preset in ``preprocessor.json``; both are
written from :func:`preprocessing_spec` and read by :mod:`ecg_keras.runs`. Importable without TensorFlow.
"""
from __future__ import annotations

from typing import Sequence

from ecg_keras.io.base import LEAD_NAMES

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

"""Naive and ensemble baselines.

* :class:`NaiveBaseline` predicts every class's training prevalence for every record (macro AUC
  0.5 by construction).
* :func:`average_probabilities` is the benchmark's ensemble: the element-wise mean of the members'
  predicted probabilities (numpy; works for any model, Wavelet+NN included).
* :func:`ensemble_model` packs several logits models into ONE Keras model whose output is the mean
  of the members' sigmoid PROBABILITIES (not logits), so that an ensemble can be saved, loaded and
  exported like any single model.
"""
from __future__ import annotations

import json
from typing import Sequence

import keras
import numpy as np
from keras import layers

from ecg_keras.models.heads import model_input
from ecg_keras.models.layers import INPUT_NAME


class NaiveBaseline:
    """``fit(y_train)`` stores the per-class positive rate; ``predict_proba(n_or_x)`` repeats it."""

    def __init__(self, prevalence=None):
        self.prevalence = None if prevalence is None else np.asarray(prevalence, dtype=np.float64)

    def fit(self, y_train) -> "NaiveBaseline":
        y = np.asarray(y_train, dtype=np.float64)
        self.prevalence = (y.reshape(len(y), -1) if y.ndim == 1 else y).mean(axis=0)
        return self

    def predict_proba(self, n_or_x) -> np.ndarray:
        if self.prevalence is None:
            raise RuntimeError("NaiveBaseline is not fitted")
        n = int(n_or_x) if np.isscalar(n_or_x) else len(n_or_x)
        return np.tile(self.prevalence, (n, 1))

    predict = predict_proba

    def to_json(self) -> str:
        return json.dumps({"prevalence": self.prevalence.tolist()})

    @classmethod
    def from_json(cls, text: str) -> "NaiveBaseline":
        return cls(json.loads(text)["prevalence"])


def average_probabilities(predictions: Sequence[np.ndarray], weights=None) -> np.ndarray:
    """Mean (optionally weighted) of the members' probability arrays, all of the same shape."""
    arrs = [np.asarray(p, dtype=np.float64) for p in predictions]
    if not arrs:
        raise ValueError("no predictions to average")
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ValueError(f"predictions differ in shape: {sorted(shapes)}")
    return np.average(np.stack(arrs), axis=0, weights=weights)


def _common_input_shape(models: Sequence[keras.Model], input_shape):
    if input_shape is not None:
        return tuple(input_shape)
    shapes = [tuple(m.inputs[0].shape[1:]) for m in models]
    fixed = {s for s in shapes if s[0] is not None}
    if len(fixed) > 1:
        raise ValueError(f"members need different fixed input shapes {sorted(fixed)}; "
                         "rebuild them with a common input_shape")
    return fixed.pop() if fixed else shapes[0]


def ensemble_model(
    models: Sequence[keras.Model],
    name: str = "ensemble",
    input_shape=None,
    member_activation: str | None = "sigmoid",
) -> keras.Model:
    """One Keras model averaging the members' probabilities.

    Each member (a logits model from :mod:`ecg_keras.models`) is applied to the same input,
    ``member_activation`` (sigmoid; ``None`` if the members already output probabilities) is
    applied to its output, and the results are averaged (layer ``ensemble_mean``). The OUTPUT IS
    PROBABILITIES. Members are nested as sub-models named ``member{i}_{name}`` (they share layers,
    hence weights, with the models passed in). ``input_shape`` defaults to the members' common
    fixed shape if any (e.g. (250, 12) with an RNN member), else the first member's.
    """
    models = list(models)
    if not models:
        raise ValueError("an ensemble needs at least one member")
    n_out = {m.outputs[0].shape[-1] for m in models}
    if len(n_out) != 1:
        raise ValueError(f"members disagree on the number of outputs: {sorted(n_out)}")
    inputs = keras.Input(_common_input_shape(models, input_shape), name=INPUT_NAME)
    outs = []
    for i, m in enumerate(models):
        member = keras.Model(model_input(m), m.outputs[0], name=f"member{i}_{m.name}")
        y = member(inputs)
        if member_activation is not None:
            y = layers.Activation(member_activation, name=f"member{i}_{member_activation}")(y)
        outs.append(y)
    out = layers.Average(name="ensemble_mean")(outs) if len(outs) > 1 else layers.Identity(
        name="ensemble_mean")(outs[0])
    return keras.Model(inputs, out, name=name)

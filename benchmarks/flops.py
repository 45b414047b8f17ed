"""Analytic FLOP counts (1 multiply-add = 2 FLOPs) of the models' matmul-like layers.

Counted: Conv1D, Dense, LSTM and GRU (also inside Bidirectional). Not counted: batch norm,
activations, pooling, the optimizer (all O(activations) or O(params), a few % at most). A
training step is taken as 3x the forward pass (forward + gradients w.r.t. inputs and weights).
"""
from __future__ import annotations

import math

import keras

TRAIN_FACTOR = 3.0


def _dims(shape) -> list[int]:
    return [int(d) for d in shape[1:]]


def _rnn_flops(layer, in_shape) -> float:
    steps, features = int(in_shape[1]), int(in_shape[-1])
    units = int(layer.units if hasattr(layer, "units") else layer.cell.units)
    gates = 4 if isinstance(layer, keras.layers.LSTM) else 3
    return 2.0 * steps * gates * units * (features + units)


def layer_flops(layer) -> float:
    """Forward FLOPs per sample of one layer (0 for layers that are not counted)."""
    if isinstance(layer, keras.layers.Bidirectional):
        in_shape = layer.input.shape
        return _rnn_flops(layer.forward_layer, in_shape) + _rnn_flops(layer.backward_layer, in_shape)
    if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return _rnn_flops(layer, layer.input.shape)
    if isinstance(layer, keras.layers.Conv1D):
        out = _dims(layer.output.shape)
        cin = int(layer.input.shape[-1]) // int(getattr(layer, "groups", 1) or 1)
        return 2.0 * out[0] * layer.kernel_size[0] * cin * layer.filters
    if isinstance(layer, keras.layers.Dense):
        rest = _dims(layer.input.shape)[:-1]
        return 2.0 * math.prod(rest) * int(layer.input.shape[-1]) * layer.units
    return 0.0


def forward_flops(model: keras.Model) -> float:
    """Forward FLOPs per input window of a built functional model with a fixed input length."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        else:
            total += layer_flops(layer)
    return total


def train_flops(model: keras.Model) -> float:
    return TRAIN_FACTOR * forward_flops(model)

"""lstm, lstm_bidir, gru: the reference ``rnn1d.RNN1d`` (2 layers, 256 units, no inter-layer dropout).

Pooling ("concat", the default) concatenates [mean over time, max over time, last time step]
(``pool_avg``, ``pool_max``, ``pool_last`` -> ``pool``), then the shared head. For the
bidirectional LSTM the reference's "last step" is the full 512-d output at the LAST time step
(its intended backward-direction slice is empty because it indexes with the full channel count);
this port keeps that behaviour so that published numbers are reproduced.

Parameter counts: Keras LSTM has one bias vector (PyTorch two), so ``lstm``/``lstm_bidir`` have
4*256 fewer parameters per layer and direction than PyTorch; GRU uses ``reset_after=True``, which
is PyTorch's formulation and parameter count.

Default ``input_shape`` is ``(250, 12)``: the benchmark only ever runs the recurrent models on
2.5-s windows, their mean/max/last pooling statistics depend on the length, and static shapes
keep export (ONNX/SavedModel) simple. ``input_shape=(None, 12)`` builds a length-agnostic model
with the same weights.

Initialisation ``init="torch"`` (default) reproduces PyTorch's RNN init, U(-1/sqrt(units),
1/sqrt(units)) for all weights and biases (the reference never re-initialises its RNNs);
``init="keras"`` keeps Keras' defaults (glorot/orthogonal, unit forget bias).

Names: ``rnn1``, ``rnn2`` (``Bidirectional`` wrappers for ``lstm_bidir``), pooling, head.
"""
from __future__ import annotations

import math

import keras
from keras import layers

from ecg_keras.models._registry import register
from ecg_keras.models.heads import POOL_NAME, finish_model
from ecg_keras.models.layers import TimeStep, signal_input

LAYER_GROUPS = (("rnn",),)  # reference get_layer_groups: (head,) -> rnn | head
DEFAULT_INPUT_SHAPE = (250, 12)


#: The layer class per cell: Keras's own. Measured alternatives for CPU training (TF's fused
#: BlockLSTM op, unrolling, XLA, inputs of all time steps projected at once): none faster
#: (docs/RESULTS.md section 8.5); ``benchmarks/ab.py`` swaps these classes to compare them.
RNN_LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU}


def rnn_pooling(x, pooling: str = "concat"):
    """AdaptiveConcatPoolRNN: [mean, max, last step]; "avg"/"max"/"last"/"sequence" also accepted."""
    if pooling == "concat":
        av = layers.GlobalAveragePooling1D(name="pool_avg")(x)
        mx = layers.GlobalMaxPooling1D(name="pool_max")(x)
        last = TimeStep(-1, name="pool_last")(x)
        return layers.Concatenate(axis=-1, name=POOL_NAME)([av, mx, last])
    if pooling == "avg":
        return layers.GlobalAveragePooling1D(name=POOL_NAME)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling1D(name=POOL_NAME)(x)
    if pooling == "last":
        return TimeStep(-1, name=POOL_NAME)(x)
    if pooling == "sequence":
        return layers.Identity(name=POOL_NAME)(x)
    raise ValueError(f"unknown pooling {pooling!r}")


def _cell_kwargs(cell: str, units: int, init: str) -> dict:
    kw: dict = {}
    if cell == "gru":
        kw["reset_after"] = True
    if init == "torch":
        k = 1.0 / math.sqrt(units)
        u = lambda: keras.initializers.RandomUniform(-k, k)  # noqa: E731
        kw.update(kernel_initializer=u(), recurrent_initializer=u(), bias_initializer=u())
        if cell == "lstm":
            kw["unit_forget_bias"] = False
    elif init != "keras":
        raise ValueError("init must be 'torch' or 'keras'")
    return kw


def rnn1d(
    cell: str = "lstm",
    bidirectional: bool = False,
    num_classes: int = 71,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "lstm",
    *,
    units: int = 256,
    num_layers: int = 2,
    init: str = "torch",
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    weights=None,
):
    """Family builder for the recurrent models."""
    rnn_cls = RNN_LAYERS[cell]
    inputs = signal_input(input_shape, default=DEFAULT_INPUT_SHAPE)
    x = inputs
    for i in range(1, num_layers + 1):
        kw = _cell_kwargs(cell, units, init)
        if bidirectional:
            x = layers.Bidirectional(
                rnn_cls(units, return_sequences=True, name=f"rnn{i}_{cell}", **kw),
                merge_mode="concat",
                name=f"rnn{i}",
            )(x)
        else:
            x = rnn_cls(units, return_sequences=True, name=f"rnn{i}", **kw)(x)
    return finish_model(
        inputs, x, num_classes=num_classes, include_top=include_top, pooling=pooling, name=name,
        head_units=head_units, head_dropout=head_dropout,
        classifier_activation=classifier_activation, weights=weights, pool_fn=rnn_pooling,
    )


@register("lstm", layer_groups=LAYER_GROUPS)
def lstm(num_classes: int = 71, input_shape=None, include_top: bool = True,
         pooling: str | None = None, name: str = "lstm", **kwargs):
    """2-layer unidirectional LSTM (256); input_shape defaults to (250, 12)."""
    return rnn1d("lstm", False, num_classes, input_shape, include_top, pooling, name, **kwargs)


@register("lstm_bidir", layer_groups=LAYER_GROUPS)
def lstm_bidir(num_classes: int = 71, input_shape=None, include_top: bool = True,
               pooling: str | None = None, name: str = "lstm_bidir", **kwargs):
    """2-layer bidirectional LSTM (256 per direction); input_shape defaults to (250, 12)."""
    return rnn1d("lstm", True, num_classes, input_shape, include_top, pooling, name, **kwargs)


@register("gru", layer_groups=LAYER_GROUPS)
def gru(num_classes: int = 71, input_shape=None, include_top: bool = True,
        pooling: str | None = None, name: str = "gru", **kwargs):
    """2-layer unidirectional GRU (256, reset_after=True); input_shape defaults to (250, 12)."""
    return rnn1d("gru", False, num_classes, input_shape, include_top, pooling, name, **kwargs)

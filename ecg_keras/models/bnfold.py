"""Inference copies of models: BatchNorm folded into the preceding convolution or dense layer
(:func:`fold_batchnorm`), and 1-D models as 2-D ones over (batch, 1, time, channels) for ONNX
(:func:`as_conv2d`).

At inference a BatchNormalization is the per-channel affine map ``y = (x - mean) * s + beta`` with
``s = gamma / sqrt(variance + epsilon)``. When ``x`` is the output of a linear ``Conv1D`` /
``Conv2D`` / ``Conv3D`` / ``Dense`` layer that feeds nothing but the BN, the map can be absorbed
into that layer: ``kernel' = kernel * s`` (over the output channels) and
``bias' = (bias - mean) * s + beta``. The BN op then disappears from the inference graph (the
Keras model, the SavedModel signatures and the ONNX graph all get one op less per conv->BN pair
and one pass less over the activations).

Only that conv->BN pattern is folded. BatchNorms that normalise another axis than the last,
follow anything else (a concatenation, a ReLU, the head's pooled features) or whose input is also
used elsewhere (a model output, a second consumer) stay. Architectures: every conv->BN pair of
fcn_wang, resnet1d_wang and xresnet1d (stem, blocks and projection shortcuts) and inception1d's
shortcut conv->BN are folded; inception1d's BN after the branch concatenation and the head's
BN -> Dropout -> Dense layers stay.
"""
from __future__ import annotations

from collections import defaultdict

import keras
import numpy as np
from keras import layers

from ecg_keras.models.layers import PointwiseConv1D

#: Layer types whose output channels are the last kernel axis (``Conv1DTranspose`` etc. are not).
FOLDABLE = (layers.Conv1D, PointwiseConv1D, layers.Conv2D, layers.Conv3D, layers.Dense)


def _channels_last_bn(layer, rank: int) -> bool:
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    return axis is not None and axis % rank == rank - 1


def foldable_pairs(model: keras.Model) -> dict[str, str]:
    """``{bn layer name: conv/dense layer name}`` of the pairs :func:`fold_batchnorm` folds."""
    nodes = [n for depth in model._nodes_by_depth.values() for n in depth if n.operation and not n.is_input]
    calls = defaultdict(int)  # nodes per layer in this model (a layer called twice is not folded)
    consumers = defaultdict(int)  # nodes reading each tensor
    for node in nodes:
        calls[id(node.operation)] += 1
        for t in node.input_tensors:
            consumers[id(t)] += 1
    outputs = {id(t) for t in model.outputs}
    pairs = {}
    for node in nodes:
        bn = node.operation
        if not isinstance(bn, layers.BatchNormalization) or calls[id(bn)] != 1 or len(node.input_tensors) != 1:
            continue
        x = node.input_tensors[0]
        if not _channels_last_bn(bn, len(x.shape)) or consumers[id(x)] != 1 or id(x) in outputs:
            continue
        conv = x._keras_history.operation
        if (type(conv) not in FOLDABLE or calls[id(conv)] != 1 or conv.activation is not keras.activations.linear
                or getattr(conv, "quantization_mode", None) or getattr(conv, "lora_enabled", False)):
            continue
        pairs[bn.name] = conv.name
    return pairs


def _folded_layer(conv, bn):
    """A copy of ``conv`` (with a bias) computing ``bn(conv(x))`` at inference."""
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    out = kernel.shape[-1]
    bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else np.zeros(out)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones(out)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros(out)
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    scale = gamma / np.sqrt(np.asarray(bn.moving_variance.numpy(), np.float64) + bn.epsilon)
    config = conv.get_config()
    config["use_bias"] = True
    folded = type(conv).from_config(config)
    folded.build(conv.input.shape)
    folded.kernel.assign((kernel * scale).astype(np.float32))
    folded.bias.assign(((bias - mean) * scale + beta).astype(np.float32))
    return folded


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """An inference copy of ``model`` with every conv->BN pair (:func:`foldable_pairs`) folded.

    The folded convolutions are new layers (same names and configs, ``use_bias=True``); every
    other layer is *shared* with ``model`` (no weight copy), nested functional models are folded
    recursively. The copy computes ``model(x, training=False)`` up to float32 rounding and is for
    inference only: training it would train no BatchNorm, and training ``model`` afterwards does
    not update the folded layers. Models that are not functional (subclassed, Sequential) and
    models without a foldable pair are returned unchanged.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth") \
            or isinstance(model, keras.Sequential):
        return model
    pairs = foldable_pairs(model)
    by_name = {l.name: l for l in model.layers}
    nested = {id(l): (l, fold_batchnorm(l)) for l in model.layers if isinstance(l, keras.Model)}
    replaced = {key: new for key, (old, new) in nested.items() if new is not old}
    if not pairs and not replaced:
        return model
    replaced.update({id(by_name[name]): _folded_layer(by_name[name], by_name[bn]) for bn, name in pairs.items()})
    dropped = {id(by_name[bn]) for bn in pairs}

    def call(layer, *args, **kwargs):
        return args[0] if id(layer) in dropped else layer(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=lambda l: replaced.get(id(l), l), call_function=call)
    if getattr(model, "_jit_compile", None) is not None:  # predict() runs as the original would
        copy.jit_compile = model.jit_compile
    return copy


def _pair(value) -> tuple[int, int]:
    return 1, int(value[0] if isinstance(value, (tuple, list)) else value)


#: Layers that work unchanged on (batch, 1, time, channels) when they act on the last axis.
_LAST_AXIS = (layers.BatchNormalization, layers.Concatenate)
_ANY_RANK = (layers.InputLayer, layers.ReLU, layers.Activation, layers.Add, layers.Dropout, layers.Dense,
             layers.Identity)


def _conv2d_layer(layer):
    """The (1, k) 2-D counterpart of a 1-D layer; the layer itself when it is rank-agnostic; None."""
    cls, config = type(layer), layer.get_config()
    if cls in (layers.Conv1D, PointwiseConv1D) and config["padding"] != "causal":
        config.update(kernel_size=_pair(config["kernel_size"]), strides=_pair(config["strides"]),
                      dilation_rate=_pair(config["dilation_rate"]))
        conv = layers.Conv2D.from_config(config)
        batch, length, channels = layer.input.shape
        conv.build((batch, 1, length, channels))
        conv.kernel.assign(layer.kernel.numpy()[None])
        if layer.use_bias:
            conv.bias.assign(layer.bias.numpy())
        return conv
    if cls is layers.ZeroPadding1D:
        return layers.ZeroPadding2D(((0, 0), tuple(config["padding"])), name=layer.name)
    if cls in (layers.MaxPooling1D, layers.AveragePooling1D):
        pool = layers.MaxPooling2D if cls is layers.MaxPooling1D else layers.AveragePooling2D
        return pool(_pair(config["pool_size"]), strides=_pair(config["strides"]), padding=config["padding"],
                    name=layer.name)
    if cls in (layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D) and not config.get("keepdims"):
        pool = layers.GlobalMaxPooling2D if cls is layers.GlobalMaxPooling1D else layers.GlobalAveragePooling2D
        return pool(name=layer.name)
    if isinstance(layer, layers.BatchNormalization) and config.get("axis") in (-1, [-1]):
        batch_norm = cls.from_config(config)  # a built BN only accepts the rank it was built for
        batch_norm.build((None, 1, *layer.input.shape[1:]) if len(layer.input.shape) == 3 else layer.input.shape)
        batch_norm.set_weights(layer.get_weights())
        return batch_norm
    if isinstance(layer, _LAST_AXIS) and config.get("axis") in (-1, [-1]):
        return layer
    if isinstance(layer, _ANY_RANK) and not isinstance(layer, _LAST_AXIS):
        return layer
    return None


def as_conv2d(model: keras.Model) -> keras.Model | None:
    """``model`` (input (batch, time, channels)) as a model of input (batch, 1, time, channels).

    Conv1D / padding / pooling layers become their 2-D counterparts with (1, k) kernels (same
    weights, same names); rank-agnostic layers are shared. The result computes the same function
    (``as_conv2d(m)(x[:, None]) == m(x)`` up to float32 rounding). Why: TensorFlow runs a Conv1D as
    ExpandDims -> Conv2D -> Squeeze, and tf2onnx converts each with its own Transpose / Unsqueeze /
    Squeeze, which keep ONNX Runtime from chaining the convolutions in its blocked (NCHWc) layout;
    a graph that stays 4-D converts to convolutions ONNX Runtime fuses with their bias, ReLU and
    residual Add, without a layout change between them. None for models with other layers
    (recurrent, custom, time-step selection) or a sequence output.
    """
    if not hasattr(model, "_nodes_by_depth") or isinstance(model, keras.Sequential) or len(model.inputs) != 1:
        return None
    if len(model.input_shape) != 3 or any(len(shape) != 2 for shape in
                                          (model.output_shape if isinstance(model.output_shape, list)
                                           else [model.output_shape])):
        return None
    replaced = {}
    for layer in model.layers:
        new = _conv2d_layer(layer)
        if new is None:
            return None
        replaced[id(layer)] = new

    def call(layer, *args, **kwargs):
        if kwargs.get("mask", False) is None:  # the 2-D global poolings take no mask
            kwargs.pop("mask")
        return layer(*args, **kwargs)

    inputs = keras.Input((1, *model.input_shape[1:]), name=model.inputs[0].name)
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=lambda l: replaced[id(l)],
                                    call_function=call)

"""Inference copies of models with BatchNorm folded into the preceding convolution or dense layer.

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

#: Layer types whose output channels are the last kernel axis (``Conv1DTranspose`` etc. are not).
FOLDABLE = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Dense)


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

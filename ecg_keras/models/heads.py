"""The pooling and classification head of every architecture, and operations on a built model's head.

Layer naming rule (backbone vs head)
------------------------------------
* ``head_*``: the classification head (``head_bn1, head_dropout1, head_dense1, head_relu1,
  head_bn2, head_dropout2, head_logits``) — see :func:`head_layers`.
* ``pool_*`` / ``pool``: weightless pooling; the layer named ``pool`` outputs the pooled backbone
  features (what ``include_top=False`` returns).
* everything else (``stem_*``, ``stageS_blockB_*``, ``blockB_*``, ``rnnN`` ...) is the backbone —
  see :func:`backbone_layers`.

Outputs are logits. For probabilities use :func:`with_sigmoid` (or ``keras.ops.sigmoid`` on the
output). Regression / binary tasks (age, sex, signal quality) use ``num_classes=1``; the training
code picks the activation and loss (and may set ``model.get_layer("head_logits").bias``, e.g. to
the mean age, after building). The layers themselves and their conventions (padding,
initialisation, BatchNorm) are :mod:`ecg_keras.models.layers`.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from ecg_keras.models.layers import batch_norm, kaiming_normal, output_dtype
from ecg_keras.models.weights import check_weights

HEAD_PREFIX = "head_"
POOL_NAME = "pool"
POOLINGS = ("concat", "avg", "max", "sequence")


def concat_pooling(x, pooling: str = "concat"):
    """fastai ``AdaptiveConcatPool1d``: [global max, global avg] (max first, as in the reference).

    ``pooling``: "concat" (default), "avg", "max" or "sequence" (no pooling). The output layer is
    always named ``pool``.
    """
    if pooling == "concat":
        mx = layers.GlobalMaxPooling1D(name="pool_max")(x)
        av = layers.GlobalAveragePooling1D(name="pool_avg")(x)
        return layers.Concatenate(axis=-1, name=POOL_NAME)([mx, av])
    if pooling == "avg":
        return layers.GlobalAveragePooling1D(name=POOL_NAME)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling1D(name=POOL_NAME)(x)
    if pooling == "sequence":
        return layers.Identity(name=POOL_NAME)(x)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def _head_dropouts(head_units: Sequence[int], head_dropout) -> list[float]:
    n = len(head_units) + 1
    if isinstance(head_dropout, (int, float)):
        # fastai create_head: ps=[p] -> [p/2]*(n-1) + [p]
        return [head_dropout / 2] * (n - 1) + [float(head_dropout)]
    ps = [float(p) for p in head_dropout]
    if len(ps) != n:
        raise ValueError(f"head_dropout needs {n} values, got {len(ps)}")
    return ps


def classification_head(
    features,
    num_classes: int,
    head_units: Sequence[int] = (128,),
    head_dropout=0.5,
    classifier_activation=None,
    start: int = 1,
):
    """fastai ``bn_drop_lin`` stack: [BN -> Dropout -> Dense -> ReLU]* -> BN -> Dropout -> Dense.

    With the defaults: BN -> Dropout 0.25 -> Dense 128 -> ReLU -> BN -> Dropout 0.5 ->
    Dense(num_classes) named ``head_logits`` (logits unless ``classifier_activation`` is given).
    """
    ps = _head_dropouts(head_units, head_dropout)
    x = features
    for i, (units, p) in enumerate(zip(list(head_units) + [num_classes], ps), start=start):
        x = batch_norm(f"{HEAD_PREFIX}bn{i}")(x)
        if p > 0:
            x = layers.Dropout(p, name=f"{HEAD_PREFIX}dropout{i}")(x)
        last = i == start + len(head_units)
        x = layers.Dense(
            units,
            kernel_initializer=kaiming_normal(),
            name=f"{HEAD_PREFIX}logits" if last else f"{HEAD_PREFIX}dense{i}",
            dtype=output_dtype() if last else None,
        )(x)
        if not last:
            x = layers.ReLU(name=f"{HEAD_PREFIX}relu{i}")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, name=f"{HEAD_PREFIX}activation")(x)
    return x


def finish_model(
    inputs,
    backbone_out,
    *,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    name: str,
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    weights=None,
    pool_fn=concat_pooling,
) -> keras.Model:
    """Pooling + head + weights loading shared by every builder (keras.applications style)."""
    check_weights(weights)
    pooling = pooling or "concat"
    if include_top and pooling == "sequence":
        raise ValueError("pooling='sequence' is only valid with include_top=False")
    feats = pool_fn(backbone_out, pooling)
    out = feats
    if include_top:
        out = classification_head(
            feats, num_classes, head_units, head_dropout, classifier_activation
        )
    model = keras.Model(inputs, out, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


# ---------------------------------------------------------------- helpers on built models
def model_input(model: keras.Model):
    """The model's input tensor (a single tensor for single-input models, so that calling the
    derived model with a bare array does not warn about the input structure)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def head_layers(model: keras.Model) -> list[layers.Layer]:
    """The head's layers (names starting with ``head_``), in graph order."""
    return [l for l in model.layers if l.name.startswith(HEAD_PREFIX)]


def backbone_layers(model: keras.Model) -> list[layers.Layer]:
    """Every layer that is neither the input, the pooling nor the head (graph order)."""
    return [
        l
        for l in model.layers
        if not l.name.startswith(HEAD_PREFIX)
        and not isinstance(l, keras.layers.InputLayer)
        and l.name != POOL_NAME
        and not l.name.startswith("pool_")
    ]


def backbone(model: keras.Model, name: str | None = None) -> keras.Model:
    """The pooled feature extractor of a built model (shares its layers and weights)."""
    return keras.Model(
        model_input(model), model.get_layer(POOL_NAME).output, name=name or f"{model.name}_backbone"
    )


def replace_head(
    model: keras.Model,
    num_classes: int,
    *,
    reinit: str = "logits",
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    name: str | None = None,
) -> keras.Model:
    """A new model with a freshly initialised output for ``num_classes``; backbone layers shared.

    ``reinit="logits"`` (reference finetuning: only the last Linear is replaced; the hidden head
    layers keep their trained weights) or ``"head"`` (the whole head is rebuilt on ``pool``).
    The returned model shares layer objects (hence weights) with ``model``.
    """
    if reinit == "head":
        feats = model.get_layer(POOL_NAME).output
        out = classification_head(
            feats, num_classes, head_units, head_dropout, classifier_activation
        )
    elif reinit == "logits":
        x = model.get_layer(f"{HEAD_PREFIX}logits").input
        out = layers.Dense(
            num_classes, kernel_initializer=kaiming_normal(), name=f"{HEAD_PREFIX}logits",
            dtype=output_dtype(),
        )(x)
        if classifier_activation is not None:
            out = layers.Activation(classifier_activation, name=f"{HEAD_PREFIX}activation")(out)
    else:
        raise ValueError("reinit must be 'logits' or 'head'")
    return keras.Model(model_input(model), out, name=name or model.name)


def with_activation(model: keras.Model, activation="sigmoid", name: str | None = None):
    """Wrap a logits model so that it outputs ``activation(logits)`` (layer ``probabilities``)."""
    out = layers.Activation(activation, name="probabilities")(model.outputs[0])
    return keras.Model(model_input(model), out, name=name or f"{model.name}_{activation}")


def with_sigmoid(model: keras.Model, name: str | None = None) -> keras.Model:
    """Probabilities for the multi-label tasks: ``sigmoid(logits)`` as one Keras model."""
    return with_activation(model, "sigmoid", name=name)


probabilities = with_sigmoid

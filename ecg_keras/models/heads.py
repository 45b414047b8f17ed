"""Building blocks shared by every architecture: PyTorch-faithful conv/BN layers, pooling, the head.

Conventions (all architectures)
-------------------------------
* Input ``(batch, time, 12)`` (channels last). The input layer is named ``ecg``.
* Convolutions followed by batch norm are bias-free; ``BatchNormalization(momentum=0.9,
  epsilon=1e-5)`` equals PyTorch's ``BatchNorm1d`` (momentum 0.1, eps 1e-5).
* Conv and dense kernels use :func:`kaiming_normal` = ``torch.nn.init.kaiming_normal_`` as the
  reference code applies it (fan_in, gain sqrt(2), *untruncated* normal); biases are zero, BN
  gamma 1 and beta 0 (the reference's ``weight_init`` is applied to every model after building).
* Padding reproduces PyTorch's ``padding=(k-1)//2`` exactly: ``"same"`` where that is identical
  (stride 1, odd kernel), otherwise an explicit ``ZeroPadding1D`` + ``"valid"`` convolution, so the
  output length and the sampling positions equal PyTorch's for every input length.

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
the mean age, after building).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import keras
from keras import layers

BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5
HEAD_PREFIX = "head_"
POOL_NAME = "pool"
INPUT_NAME = "ecg"
POOLINGS = ("concat", "avg", "max", "sequence")


def kaiming_normal(seed=None) -> keras.initializers.Initializer:
    """``torch.nn.init.kaiming_normal_`` (a=0, fan_in): N(0, 2/fan_in), untruncated.

    ``keras.initializers.HeNormal`` has the same variance but draws from a truncated normal; the
    untruncated variant matches the reference exactly. Conv1D fan_in = kernel_size * in_channels,
    as in PyTorch.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal", seed=seed
    )


@keras.saving.register_keras_serializable(package="ecg_keras")
class FusedBatchNormalization(layers.BatchNormalization):
    """``BatchNormalization`` whose training pass is TF's fused kernel (forward and gradient).

    Same weights, config, moving-average update (biased batch variance, as Keras) and inference
    path as Keras's layer, so saved weights, ``isinstance`` checks and exports are unchanged. In
    training, batch statistics and normalisation are one ``FusedBatchNormV3`` (gradient:
    ``FusedBatchNormGradV3``) instead of ~15 element-wise and reduction ops: with oneDNN ~5-20 %
    faster training steps for xresnet1d101 and inception1d (docs/RESULTS.md section 8.6). Anything
    the fused kernel does not cover (other backends, masks, synchronised or renormalised
    statistics, rank != 3, normalising another axis than the last, float16/bfloat16) takes
    Keras's own code.
    """

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.synchronized
                and not getattr(self, "renorm", False)  # Keras 3.12 (Python 3.10's last) has no renorm
                and self.scale and self.center and len(inputs.shape) == 3
                and self.axis % 3 == 2 and keras.backend.standardize_dtype(inputs.dtype) == "float32")

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            tf.expand_dims(inputs, 1), self.gamma, self.beta, epsilon=self.epsilon, is_training=True,
            data_format="NHWC")
        # the kernel returns the unbiased (n / (n - 1)) variance; Keras averages the biased one
        n = tf.cast(tf.shape(inputs)[0] * tf.shape(inputs)[1], variance.dtype)
        variance = variance * ((n - 1.0) / tf.maximum(n, 1.0))
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + tf.stop_gradient(mean) * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + tf.stop_gradient(variance) * (1.0 - m))
        return tf.squeeze(y, 1)


@keras.saving.register_keras_serializable(package="ecg_keras")
class PointwiseConv1D(layers.Conv1D):
    """``Conv1D`` of kernel size 1 whose training pass is one matmul over ``(batch * time, channels)``.

    Same weights (kernel ``(1, in, out)``), config and inference path as Keras's layer, so saved
    weights, BN folding and exports are unchanged. On the short sequences of xresnet1d's
    bottlenecks oneDNN's convolution gradients take several times the forward pass; ``MatMul``
    and its two gradient matmuls do the same arithmetic faster (docs/RESULTS.md section 8.9).
    Strided, dilated or grouped convolutions and other backends take Keras's own code.
    """

    use_matmul = True  # False: Keras's convolution in training too (benchmarks.ab's ``conv`` variant)

    def _matmul_ok(self) -> bool:
        return (self.use_matmul and keras.backend.backend() == "tensorflow" and self.kernel_size == (1,)
                and self.strides == (1,) and self.dilation_rate == (1,) and self.groups == 1
                and self.padding in ("valid", "same"))

    def call(self, inputs, training=None):
        if not (training and self._matmul_ok()):
            return super().call(inputs)
        import tensorflow as tf

        kernel = tf.cast(tf.reshape(self.kernel, (-1, self.filters)), inputs.dtype)  # (1, in, out) -> (in, out)
        shape = tf.concat([tf.shape(inputs)[:-1], [self.filters]], 0)
        y = tf.reshape(tf.matmul(tf.reshape(inputs, (-1, inputs.shape[-1])), kernel), shape)
        y.set_shape(inputs.shape[:-1].concatenate([self.filters]))
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return y if self.activation is None else self.activation(y)


def batch_norm(name: str, gamma_zero: bool = False) -> layers.BatchNormalization:
    return FusedBatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if gamma_zero else "ones",
        name=name,
    )


def conv1d(
    x,
    filters: int,
    kernel_size: int,
    name: str,
    strides: int = 1,
    padding: int | None = None,
    use_bias: bool = False,
):
    """``nn.Conv1d(..., padding=(k-1)//2)`` with PyTorch's output length and alignment.

    The padding layer (when needed) is named ``name + "_pad"``.
    """
    pad = (kernel_size - 1) // 2 if padding is None else padding
    if strides == 1 and kernel_size % 2 == 1 and 2 * pad == kernel_size - 1:
        mode = "same" if pad else "valid"
    else:
        if pad:
            x = layers.ZeroPadding1D(pad, name=name + "_pad")(x)
        mode = "valid"
    conv = PointwiseConv1D if kernel_size == 1 and strides == 1 else layers.Conv1D
    return conv(
        filters,
        kernel_size,
        strides=strides,
        padding=mode,
        use_bias=use_bias,
        kernel_initializer=kaiming_normal(),
        name=name,
    )(x)


def max_pool_after_relu(x, pool_size: int, strides: int, padding: int, name: str):
    """``nn.MaxPool1d(pool_size, strides, padding)`` for NON-NEGATIVE inputs (after ReLU).

    PyTorch pads with -inf; for inputs >= 0 zero padding gives identical maxima, and an explicit
    pad keeps PyTorch's window positions (Keras ``"same"`` shifts them for even lengths).
    """
    if padding:
        x = layers.ZeroPadding1D(padding, name=name + "_pad")(x)
    return layers.MaxPooling1D(pool_size, strides=strides, padding="valid", name=name)(x)


@keras.saving.register_keras_serializable(package="ecg_keras")
class TimeStep(layers.Layer):
    """Select one time step: ``x[:, index, :]`` (used for the RNN 'last step' pooling)."""

    def __init__(self, index: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, x):
        return x[:, self.index, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}


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


def output_dtype():
    """The output layer's dtype: float32 under a mixed-precision policy (logits, loss and
    probabilities stay float32), else None (the global policy, i.e. float32)."""
    return "float32" if keras.config.dtype_policy().name != "float32" else None


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


def invalid_weights(weights, choices: Sequence[str], hint: str = "") -> ValueError:
    """keras.applications' error for a ``weights`` argument that is none of ``choices``."""
    listed = ", ".join(choices[:-1]) + ("," if len(choices) > 2 else "") + f" or {choices[-1]}"
    return ValueError(f"The `weights` argument should be either {listed}.{hint} Received: weights={weights!r}")


#: |weight| beyond this is not a trained network (a damaged or hostile file).
MAX_ABS_WEIGHT = 1e6


def check_loaded_weights(model, where) -> None:
    """ValueError naming ``where`` and the variable if a loaded model's weights are not finite, exceed
    :data:`MAX_ABS_WEIGHT` or hold negative BatchNorm variances (every load path: runs, releases,
    ``pretrained()``, ``--init-from``; from-torch checks the same before building the run)."""
    import numpy as np

    for var in model.weights:
        value = np.asarray(var)
        if value.dtype.kind not in "fc" or not value.size:
            continue
        if not np.isfinite(value).all():
            raise ValueError(f"{where}: weight {var.path} holds {int((~np.isfinite(value)).sum())} NaN/Inf value(s); "
                             "the model file is damaged")
        peak = float(np.abs(value).max())
        if peak > MAX_ABS_WEIGHT:
            raise ValueError(f"{where}: weight {var.path} reaches {peak:.3g} (> {MAX_ABS_WEIGHT:g}): not trained "
                             "weights")
        if var.path.endswith("moving_variance") and (value < 0).any():
            raise ValueError(f"{where}: weight {var.path} has negative BatchNorm variances")


def check_weights(weights) -> None:
    """A builder's ``weights``, checked as keras.applications does: None or an existing file.

    Released weights, named by their training data (e.g. "ptbxl"), come through
    :func:`ecg_keras.pretrained`, which knows their classes and standardiser.
    """
    if weights is None or (isinstance(weights, (str, os.PathLike)) and Path(weights).is_file()):
        return
    raise invalid_weights(weights, ["`None` (random initialization)", "the path to the weights file to be loaded"],
                          " Released weights (e.g. weights='ptbxl') come from ecg_keras.pretrained(arch, task, weights=...).")


def signal_input(input_shape, default=(None, 12)):
    shape = tuple(default if input_shape is None else input_shape)
    if len(shape) != 2:
        raise ValueError(f"input_shape must be (time, leads), got {shape}")
    return keras.Input(shape=shape, name=INPUT_NAME)


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

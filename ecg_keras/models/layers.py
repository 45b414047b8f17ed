"""PyTorch-faithful layers shared by every architecture: convolution, batch norm, pooling, input.

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

The pooling and classification head, and the layer naming rule, are :mod:`ecg_keras.models.heads`.
"""
from __future__ import annotations

import keras
from keras import layers

BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5
INPUT_NAME = "ecg"


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
    ``FusedBatchNormGradV3``) instead of ~15 element-wise and reduction ops, which trains faster
    with oneDNN (measured in docs/RESULTS.md, section 8.6). Anything
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


def output_dtype():
    """The output layer's dtype: float32 under a mixed-precision policy (logits, loss and
    probabilities stay float32), else None (the global policy, i.e. float32)."""
    return "float32" if keras.config.dtype_policy().name != "float32" else None


def signal_input(input_shape, default=(None, 12)):
    shape = tuple(default if input_shape is None else input_shape)
    if len(shape) != 2:
        raise ValueError(f"input_shape must be (time, leads), got {shape}")
    return keras.Input(shape=shape, name=INPUT_NAME)

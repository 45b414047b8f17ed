"""fcn_wang: the fully convolutional network of Wang et al. (2017), reference ``basic_conv1d.fcn_wang``.

Backbone: Conv(128, k8)-BN-ReLU, Conv(256, k5)-BN-ReLU, Conv(128, k3)-BN-ReLU, stride 1, PyTorch
padding (k-1)//2 — so the k8 layer shortens the sequence by one sample, exactly as in PyTorch.
Layer names: ``block{1,2,3}_conv``, ``_bn``, ``_relu`` (``block1_conv_pad`` for the explicit pad).
"""
from __future__ import annotations

from ecg_keras.models._registry import register
from ecg_keras.models.heads import finish_model
from ecg_keras.models.layers import batch_norm, conv1d, signal_input
from keras import layers

LAYER_GROUPS = (("block1_", "block2_"), ("block3_",))  # reference get_layer_groups: split at self[2]


@register("fcn_wang", layer_groups=LAYER_GROUPS)
def fcn_wang(
    num_classes: int = 71,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "fcn_wang",
    *,
    filters=(128, 256, 128),
    kernel_sizes=(8, 5, 3),
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    weights=None,
):
    """Build fcn_wang. ``input_shape`` defaults to ``(None, 12)`` (any length >= 8)."""
    inputs = signal_input(input_shape)
    x = inputs
    for i, (f, k) in enumerate(zip(filters, kernel_sizes), start=1):
        x = conv1d(x, f, k, name=f"block{i}_conv")
        x = batch_norm(f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
    return finish_model(
        inputs, x, num_classes=num_classes, include_top=include_top, pooling=pooling, name=name,
        head_units=head_units, head_dropout=head_dropout,
        classifier_activation=classifier_activation, weights=weights,
    )

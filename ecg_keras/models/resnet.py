"""resnet1d_wang: the 1-D ResNet of Wang et al. (2017), reference ``resnet1d.resnet1d_wang``.

Stem Conv(128, k7)-BN-ReLU (stride 1, no pooling); three stages of one basic block each
(128 channels, kernels [5, 3], strides 1, 2, 2); projection shortcut 1x1 conv (stride) + BN where
the shape changes. Names: ``stem_conv``, ``stem_bn``, ``stem_relu``,
``stage{S}_block{B}_conv{1,2}``, ``_bn{1,2}``, ``_relu1``, ``_shortcut_conv``, ``_shortcut_bn``,
``_add``, ``_out``.
"""
from __future__ import annotations

from keras import layers

from ecg_keras.models._registry import register
from ecg_keras.models.heads import finish_model
from ecg_keras.models.layers import batch_norm, conv1d, signal_input

LAYER_GROUPS = (("stem_", "stage"),)  # reference get_layer_groups: (head, head) -> backbone | head


def basic_block(x, filters: int, kernel_sizes, stride: int, name: str):
    """torchvision-style BasicBlock1d: conv-BN-ReLU-conv-BN (+ shortcut) -> ReLU."""
    in_ch = x.shape[-1]
    shortcut = x
    y = conv1d(x, filters, kernel_sizes[0], strides=stride, name=f"{name}_conv1")
    y = batch_norm(f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = conv1d(y, filters, kernel_sizes[1], name=f"{name}_conv2")
    y = batch_norm(f"{name}_bn2")(y)
    if stride != 1 or in_ch != filters:
        shortcut = conv1d(x, filters, 1, strides=stride, padding=0, name=f"{name}_shortcut_conv")
        shortcut = batch_norm(f"{name}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


@register("resnet1d_wang", layer_groups=LAYER_GROUPS)
def resnet1d_wang(
    num_classes: int = 71,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "resnet1d_wang",
    *,
    filters: int = 128,
    blocks=(1, 1, 1),
    kernel_size: int = 5,
    kernel_size_stem: int = 7,
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    weights=None,
):
    """Build resnet1d_wang; block kernels are ``[kernel_size, kernel_size // 2 + 1]`` = [5, 3].

    As in the reference ``_make_layer``, only the first block of a stage gets these kernels and
    the stride; further blocks (none with the default ``blocks=(1, 1, 1)``) use [3, 3].
    """
    inputs = signal_input(input_shape)
    x = conv1d(inputs, filters, kernel_size_stem, name="stem_conv")
    x = batch_norm("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, n_blocks in enumerate(blocks, start=1):
        for b in range(1, n_blocks + 1):
            first = b == 1
            x = basic_block(
                x,
                filters,
                (kernel_size, kernel_size // 2 + 1) if first else (3, 3),
                stride=(1 if s == 1 else 2) if first else 1,
                name=f"stage{s}_block{b}",
            )
    return finish_model(
        inputs, x, num_classes=num_classes, include_top=include_top, pooling=pooling, name=name,
        head_units=head_units, head_dropout=head_dropout,
        classifier_activation=classifier_activation, weights=weights,
    )

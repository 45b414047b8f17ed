"""inception1d: InceptionTime-style network, reference ``inception1d.Inception1d``.

Six inception blocks. Each block: bottleneck 1x1 conv (32) -> three convs (32 filters, kernels
39, 19, 9 derived from the base kernel 40 as k-1 for even k of [40, 20, 10]); in parallel
MaxPool(3, stride 1, pad 1) -> 1x1 conv (32); concat (128 channels) -> BN -> ReLU. Every third
block a residual shortcut: ReLU(block_out + BN(1x1 conv(block_in_of_the_triple))).
All convs are bias-free (as in the reference). ``MaxPooling1D(3, 1, "same")`` equals PyTorch's
-inf padded max-pool for stride 1.

Names: ``block{d}_bottleneck``, ``block{d}_conv_k{39,19,9}``, ``block{d}_maxpool``,
``block{d}_conv_pool``, ``block{d}_concat``, ``block{d}_bn``, ``block{d}_relu``,
``shortcut{r}_conv``, ``shortcut{r}_bn``, ``shortcut{r}_add``, ``shortcut{r}_relu``.
"""
from __future__ import annotations

from keras import layers

from ecg_keras.models._registry import register
from ecg_keras.models.heads import finish_model
from ecg_keras.models.layers import batch_norm, conv1d, signal_input

# reference get_layer_groups: (im[:3], sk[:1]) | (im[3:], sk[1:]) | head
LAYER_GROUPS = (
    ("block1_", "block2_", "block3_", "shortcut1_"),
    ("block",  "shortcut"),
)


def inception_kernel_sizes(kernel_size: int = 40) -> list[int]:
    return [k - 1 if k % 2 == 0 else k for k in (kernel_size, kernel_size // 2, kernel_size // 4)]


def inception_block(x, kss, nb_filters: int, bottleneck_size: int, name: str):
    bottled = conv1d(x, bottleneck_size, 1, name=f"{name}_bottleneck") if bottleneck_size > 0 else x
    branches = [conv1d(bottled, nb_filters, k, name=f"{name}_conv_k{k}") for k in kss]
    p = layers.MaxPooling1D(3, strides=1, padding="same", name=f"{name}_maxpool")(x)
    branches.append(conv1d(p, nb_filters, 1, name=f"{name}_conv_pool"))
    y = layers.Concatenate(axis=-1, name=f"{name}_concat")(branches)
    y = batch_norm(f"{name}_bn")(y)
    return layers.ReLU(name=f"{name}_relu")(y)


@register("inception1d", layer_groups=LAYER_GROUPS)
def inception1d(
    num_classes: int = 71,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "inception1d",
    *,
    kernel_size: int = 40,
    depth: int = 6,
    bottleneck_size: int = 32,
    nb_filters: int = 32,
    use_residual: bool = True,
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    weights=None,
):
    """Build inception1d; ``input_shape`` defaults to ``(None, 12)``."""
    if depth % 3:
        raise ValueError("depth must be a multiple of 3")
    kss = inception_kernel_sizes(kernel_size)
    n_out = (len(kss) + 1) * nb_filters
    inputs = signal_input(input_shape)
    x = res_in = inputs
    for d in range(depth):
        x = inception_block(x, kss, nb_filters, bottleneck_size, name=f"block{d + 1}")
        if use_residual and d % 3 == 2:
            r = d // 3 + 1
            sc = conv1d(res_in, n_out, 1, name=f"shortcut{r}_conv")
            sc = batch_norm(f"shortcut{r}_bn")(sc)
            x = layers.Add(name=f"shortcut{r}_add")([x, sc])
            x = layers.ReLU(name=f"shortcut{r}_relu")(x)
            res_in = x
    return finish_model(
        inputs, x, num_classes=num_classes, include_top=include_top, pooling=pooling, name=name,
        head_units=head_units, head_dropout=head_dropout,
        classifier_activation=classifier_activation, weights=weights,
    )

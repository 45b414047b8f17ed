"""xresnet1d{18,34,50,101,152}: fastai's XResNet ("bag of tricks") in 1-D, reference ``xresnet1d``.

* Stem: three ConvLayers (conv-BN-ReLU) with 32 (stride 2), 32, 64 channels and kernel 5, then
  ``MaxPool1d(3, stride 2, padding 1)``.
* Four stages of width 64 (x expansion), strides 1, 2, 2, 2; blocks [2,2,2,2] / [3,4,6,3]
  (basic, expansion 1) or [3,4,6,3] / [3,4,23,3] / [3,8,36,3] (bottleneck, expansion 4),
  conv kernel 5 (the bottleneck's middle conv carries the stride).
* Shortcut: ``AvgPool1d(2, ceil_mode=True)`` where the stride is 2, then 1x1 conv + BN where the
  channels change (for expansion 1 only the pool, since every stage has 64 channels).
  ``AveragePooling1D(2, padding="same")`` is exactly ceil mode (Keras/TF average pooling does not
  count padded positions, PyTorch divides the partial last window by its valid size).

Initialisation: the reference creates the last BN of every block with gamma 0 but then applies
``weight_init`` to the whole model before training, resetting every BN gamma to 1; gamma=1 is
therefore the default here (``zero_init_residual=True`` gives fastai's original zero gamma).

Names: ``stem_conv{1,2,3}``, ``stem_bn{i}``, ``stem_relu{i}``, ``stem_pool`` (+``_pad``),
``stage{S}_block{B}_conv{i}``, ``_bn{i}``, ``_relu{i}``, ``_shortcut_pool``, ``_shortcut_conv``,
``_shortcut_bn``, ``_add``, ``_out``.
"""
from __future__ import annotations

from keras import layers

from ecg_keras.models._registry import register
from ecg_keras.models.heads import finish_model
from ecg_keras.models.layers import batch_norm, conv1d, max_pool_after_relu, signal_input

# reference get_layer_groups: split at self[3] (the stem max-pool) and at the head
LAYER_GROUPS = (("stem_conv", "stem_bn", "stem_relu"), ("stem_pool", "stage"))

CONFIGS = {
    "xresnet1d18": (1, (2, 2, 2, 2)),
    "xresnet1d34": (1, (3, 4, 6, 3)),
    "xresnet1d50": (4, (3, 4, 6, 3)),
    "xresnet1d101": (4, (3, 4, 23, 3)),
    "xresnet1d152": (4, (3, 8, 36, 3)),
}


def conv_layer(x, filters, kernel_size, name, idx, stride=1, relu=True, gamma_zero=False):
    """fastai ConvLayer (bn_1st): conv (bias-free) -> BN -> [ReLU]."""
    x = conv1d(x, filters, kernel_size, strides=stride, name=f"{name}_conv{idx}")
    x = batch_norm(f"{name}_bn{idx}", gamma_zero=gamma_zero)(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu{idx}")(x)
    return x


def res_block(x, expansion, nf, stride, kernel_size, name, zero_init_residual=False):
    """fastai ResBlock: convpath + idpath -> ReLU. ``nf`` before expansion."""
    ni = x.shape[-1]
    nout = nf * expansion
    if expansion == 1:
        y = conv_layer(x, nf, kernel_size, name, 1, stride=stride)
        y = conv_layer(y, nout, kernel_size, name, 2, relu=False, gamma_zero=zero_init_residual)
    else:
        y = conv_layer(x, nf, 1, name, 1)
        y = conv_layer(y, nf, kernel_size, name, 2, stride=stride)
        y = conv_layer(y, nout, 1, name, 3, relu=False, gamma_zero=zero_init_residual)
    idp = x
    if stride != 1:  # pool_first=True
        idp = layers.AveragePooling1D(2, strides=2, padding="same", name=f"{name}_shortcut_pool")(idp)
    if ni != nout:
        idp = conv1d(idp, nout, 1, name=f"{name}_shortcut_conv")
        idp = batch_norm(f"{name}_shortcut_bn")(idp)
    y = layers.Add(name=f"{name}_add")([y, idp])
    return layers.ReLU(name=f"{name}_out")(y)


def xresnet1d(
    expansion: int,
    blocks,
    num_classes: int = 71,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "xresnet1d",
    *,
    kernel_size: int = 5,
    kernel_size_stem: int = 5,
    stem_filters=(32, 32, 64),
    width: int = 64,
    zero_init_residual: bool = False,
    head_units=(128,),
    head_dropout=0.5,
    classifier_activation=None,
    weights=None,
):
    """Family builder (keras.applications' ``ResNet(stack_fn, ...)`` analogue)."""
    inputs = signal_input(input_shape)
    x = inputs
    for i, f in enumerate(stem_filters, start=1):
        x = conv_layer(x, f, kernel_size_stem, "stem", i, stride=2 if i == 1 else 1)
    x = max_pool_after_relu(x, 3, 2, 1, name="stem_pool")
    for s, n_blocks in enumerate(blocks, start=1):
        for b in range(1, n_blocks + 1):
            x = res_block(
                x,
                expansion,
                width,
                stride=(1 if s == 1 else 2) if b == 1 else 1,
                kernel_size=kernel_size,
                name=f"stage{s}_block{b}",
                zero_init_residual=zero_init_residual,
            )
    return finish_model(
        inputs, x, num_classes=num_classes, include_top=include_top, pooling=pooling, name=name,
        head_units=head_units, head_dropout=head_dropout,
        classifier_activation=classifier_activation, weights=weights,
    )


def _make(arch: str):
    expansion, blocks = CONFIGS[arch]

    def build(num_classes: int = 71, input_shape=None, include_top: bool = True,
              pooling: str | None = None, name: str = arch, **kwargs):
        return xresnet1d(expansion, blocks, num_classes, input_shape, include_top, pooling,
                         name, **kwargs)

    build.__name__ = build.__qualname__ = arch
    build.__doc__ = (
        f"Build {arch} (expansion {expansion}, blocks {list(blocks)}); input_shape defaults to "
        "(None, 12). Extra keyword arguments: see :func:`xresnet1d`."
    )
    return register(arch, layer_groups=LAYER_GROUPS)(build)


xresnet1d18 = _make("xresnet1d18")
xresnet1d34 = _make("xresnet1d34")
xresnet1d50 = _make("xresnet1d50")
xresnet1d101 = _make("xresnet1d101")
xresnet1d152 = _make("xresnet1d152")

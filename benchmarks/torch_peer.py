"""PyTorch peer measurement: the benchmark's reference architectures, timed in plain PyTorch on CPU.

What this is
------------
An optional, standalone *peer measurement tool*. It re-implements, in PyTorch, the five PTB-XL
reference models that ``benchmarks.run`` compares against (``fcn_wang``, ``resnet1d_wang``,
``xresnet1d101``, ``inception1d``, ``lstm``; also the other ``xresnet1d*`` depths, ``lstm_bidir``
and ``gru``), following the reference code of Strodthoff et al. (GitHub
helme/ecg_ptbxl_benchmarking, ``code/models/basic_conv1d.py``, ``resnet1d.py``, ``xresnet1d.py``,
``inception1d.py``, ``rnn1d.py``, instantiated as in ``fastai_model.py``: ``kernel_size=5``,
``lin_ftrs_head=[128]``, ``ps_head=0.5``, ``weight_init`` applied after building), and measures
their throughput on the current machine so that the "PyTorch peer" figures quoted in
``benchmarks.run.PEER`` can be re-measured rather than taken on trust.

It is NOT part of the ecg_keras package: nothing imports it, the tests do not run it, and torch is
not a dependency of the project. It needs PyTorch in a separate environment, e.g. (this machine
has the wheel on disk)::

    python3.11 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy

What is measured (float32, random data, ``torch.set_num_threads(--threads)``, default 2)
----------------------------------------------------------------------------------------
* ``params``: trainable parameters at 71 classes, asserted against the parameter-count table
  of docs/PROTOCOL.md (for the LSTMs PyTorch has two bias vectors per gate set, Keras
  one: the Keras-equivalent count, 4*units fewer per layer and direction, is printed and
  checked too).
* ``train``: windows/s at batch 128 (``--batch-size``) of one full training step on random
  inputs ``(batch, 12, 250)`` and random 0/1 targets of 71 classes: ``model.train()``,
  ``BCEWithLogitsLoss``, ``torch.optim.AdamW(lr=1e-2, weight_decay=1e-2)``,
  ``zero_grad`` / forward / ``backward`` / ``step``. ``--warmup`` untimed steps, then timed steps
  for about ``--seconds`` seconds; windows/s is reported from the median step time and from the
  total time. No data pipeline, no one-cycle schedule, no gradient clipping (the reference clips
  RNN gradients at 0.25: ``--rnn-clip 0.25`` adds it).
* ``infer``: windows/s of ``model.eval()`` forward passes under ``torch.inference_mode()`` on
  batches of 64 windows (``--infer-batch``), same timing scheme (plain per-window logits: no
  sigmoid, no test-time augmentation).
* ``matmul``: GFLOP/s of a 2048x2048 float32 ``torch.matmul`` (best of 5), the machine's peak
  reference for these threads.

Usage::

    /tmp/torchvenv/bin/python benchmarks/torch_peer.py                      # five models, 15 s each
    /tmp/torchvenv/bin/python benchmarks/torch_peer.py --archs fcn_wang,lstm --seconds 30 \\
        --output /tmp/torch_peer.json
    /tmp/torchvenv/bin/python benchmarks/torch_peer.py --check              # params + shapes only

Run it on an otherwise idle machine (the load average before/after is recorded in the JSON).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 71
INPUT_CHANNELS = 12
WINDOW = 250
DEFAULT_ARCHS = ("fcn_wang", "resnet1d_wang", "xresnet1d101", "inception1d", "lstm")

#: trainable parameters at 71 classes (12 leads), docs/PROTOCOL.md. For the LSTMs the
#: table gives the Keras count; PyTorch has an extra bias vector (4*units) per layer and direction.
PROTOCOL_PARAMS = {
    "fcn_wang": 318_279,
    "resnet1d_wang": 481_863,
    "xresnet1d18": 373_447,
    "xresnet1d34": 703_175,
    "xresnet1d50": 962_503,
    "xresnet1d101": 1_880_775,
    "xresnet1d152": 2_799_047,
    "inception1d": 516_167,
    "lstm": 910_151,        # Keras; PyTorch = + 2 layers x 1 direction x 4*256
    "lstm_bidir": 2_335_047,  # Keras; PyTorch = + 2 layers x 2 directions x 4*256
    "gru": 711_495,         # reset_after GRU = PyTorch
}
#: extra PyTorch bias parameters relative to the Keras count in the table
TORCH_EXTRA_BIAS = {"lstm": 2 * 1 * 4 * 256, "lstm_bidir": 2 * 2 * 4 * 256}

#: the figures quoted in the performance issue (benchmarks.run.PEER), windows/s (low, high)
ISSUE_FIGURES = {
    "fcn_wang": {"train": (267, 283), "infer": (614, 750)},
    "resnet1d_wang": {"train": (282, 282), "infer": (587, 587)},
    "xresnet1d101": {"train": (280, 280), "infer": (1059, 1059)},
    "inception1d": {"train": (64, 64), "infer": (135, 135)},
    "lstm": {"train": (22, 22), "infer": (92, 92)},
}


# ============================================================================ shared pieces
class Flatten(nn.Module):
    """fastai v1 ``Flatten``: ``x.view(x.size(0), -1)``."""

    def forward(self, x):
        return x.view(x.size(0), -1)


class AdaptiveConcatPool1d(nn.Module):
    """basic_conv1d.AdaptiveConcatPool1d: cat([max, avg]) (max first)."""

    def __init__(self, sz: int = 1):
        super().__init__()
        self.ap, self.mp = nn.AdaptiveAvgPool1d(sz), nn.AdaptiveMaxPool1d(sz)

    def forward(self, x):
        return torch.cat([self.mp(x), self.ap(x)], 1)


def bn_drop_lin(n_in: int, n_out: int, bn: bool = True, p: float = 0.0, actn=None) -> list:
    """fastai v1 ``bn_drop_lin``: [BatchNorm1d(n_in)] + [Dropout(p)] + Linear(n_in, n_out) + [actn]."""
    layers = [nn.BatchNorm1d(n_in)] if bn else []
    if p != 0:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(n_in, n_out))
    if actn is not None:
        layers.append(actn)
    return layers


def _head_spec(nf_in: int, nc: int, lin_ftrs, ps):
    lin = [nf_in, nc] if lin_ftrs is None else [nf_in, *lin_ftrs, nc]
    ps = list(ps) if isinstance(ps, (list, tuple)) else [ps]
    if len(ps) == 1:
        ps = [ps[0] / 2] * (len(lin) - 2) + ps
    # the reference repeats ONE ReLU instance ([nn.ReLU(inplace=True)] * n)
    relu = nn.ReLU(inplace=True)
    actns = [relu] * (len(lin) - 2) + [None]
    return lin, ps, actns


def create_head1d(nf: int, nc: int, lin_ftrs=(128,), ps=0.5, bn_final: bool = False, bn: bool = True,
                  concat_pooling: bool = True) -> nn.Sequential:
    """basic_conv1d.create_head1d (act "relu"): concat-pool, Flatten, bn_drop_lin stack."""
    lin, ps, actns = _head_spec(2 * nf if concat_pooling else nf, nc, lin_ftrs, ps)
    layers = [AdaptiveConcatPool1d() if concat_pooling else nn.MaxPool1d(2), Flatten()]
    for ni, no, p, actn in zip(lin[:-1], lin[1:], ps, actns):
        layers += bn_drop_lin(ni, no, bn, p, actn)
    if bn_final:
        layers.append(nn.BatchNorm1d(lin[-1], momentum=0.01))
    return nn.Sequential(*layers)


def weight_init(m: nn.Module) -> None:
    """basic_conv1d.weight_init, applied to every model by fastai_model.fit before training."""
    if isinstance(m, (nn.Conv1d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    if isinstance(m, nn.BatchNorm1d):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)


# ============================================================================ fcn_wang
def _conv1d_bn_act(ni: int, nf: int, ks: int) -> nn.Sequential:
    """basic_conv1d._conv1d(bn=True, act="relu", stride 1): conv (no bias, pad (k-1)//2) -> BN -> ReLU."""
    return nn.Sequential(nn.Conv1d(ni, nf, ks, stride=1, padding=(ks - 1) // 2, bias=False),
                         nn.BatchNorm1d(nf), nn.ReLU(True))


class FCNWang(nn.Sequential):
    """basic_conv1d.fcn_wang: filters [128, 256, 128], kernels [8, 5, 3], stride 1, no pooling, head.

    Kernel 8 with padding 3 shortens the sequence by one sample (250 -> 249), as in the reference.
    """

    def __init__(self, num_classes=NUM_CLASSES, input_channels=INPUT_CHANNELS, lin_ftrs_head=(128,), ps_head=0.5):
        filters, kss = [128, 256, 128], [8, 5, 3]
        layers = [nn.Sequential(_conv1d_bn_act(input_channels if i == 0 else filters[i - 1], filters[i], kss[i]))
                  for i in range(len(filters))]
        layers.append(create_head1d(filters[-1], num_classes, lin_ftrs_head, ps_head))
        super().__init__(*layers)


# ============================================================================ resnet1d_wang
class BasicBlock1d(nn.Module):
    """resnet1d.BasicBlock1d (kernel_size int k -> [k, k//2+1])."""

    def __init__(self, inplanes, planes, stride=1, kernel_size=(3, 3), downsample=None):
        super().__init__()
        if isinstance(kernel_size, int):
            kernel_size = [kernel_size, kernel_size // 2 + 1]
        k1, k2 = kernel_size
        self.conv1 = nn.Conv1d(inplanes, planes, k1, stride=stride, padding=(k1 - 1) // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv1d(planes, planes, k2, stride=1, padding=(k2 - 1) // 2, bias=False)
        self.bn2 = nn.BatchNorm1d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return self.relu(out)


class ResNet1dWang(nn.Sequential):
    """resnet1d.resnet1d_wang as built by fastai_model (kernel_size=5): ResNet1d(BasicBlock1d, [1, 1, 1],
    kernel_size=5, kernel_size_stem=7, stride_stem=1, pooling_stem=False, inplanes=128,
    fix_feature_dim=True), stage strides 1, 2, 2, projection shortcut 1x1 conv + BN."""

    def __init__(self, num_classes=NUM_CLASSES, input_channels=INPUT_CHANNELS, kernel_size=5, kernel_size_stem=7,
                 inplanes=128, blocks=(1, 1, 1), lin_ftrs_head=(128,), ps_head=0.5):
        self.inplanes = inplanes
        layers = [nn.Conv1d(input_channels, inplanes, kernel_size_stem, stride=1,
                            padding=(kernel_size_stem - 1) // 2, bias=False),
                  nn.BatchNorm1d(inplanes), nn.ReLU(inplace=True)]
        for i, n in enumerate(blocks):
            layers.append(self._make_layer(inplanes, n, stride=1 if i == 0 else 2, kernel_size=kernel_size))
        layers.append(create_head1d(inplanes, num_classes, lin_ftrs_head, ps_head))
        super().__init__(*layers)

    def _make_layer(self, planes, blocks, stride=1, kernel_size=3):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv1d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm1d(planes))
        layers = [BasicBlock1d(self.inplanes, planes, stride, kernel_size, downsample)]
        self.inplanes = planes
        layers += [BasicBlock1d(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


# ============================================================================ xresnet1d
def _xbn(nf: int, zero: bool = False) -> nn.BatchNorm1d:
    """xresnet1d.BatchNorm (fastai _get_norm): bias 1e-3, weight 0 (BatchZero) or 1 (later re-initialised)."""
    bn = nn.BatchNorm1d(nf)
    bn.bias.data.fill_(1e-3)
    bn.weight.data.fill_(0.0 if zero else 1.0)
    return bn


class ConvLayer(nn.Sequential):
    """xresnet1d.ConvLayer (ndim 1, bn_1st): conv (bias-free, pad (k-1)//2, kaiming) -> BN -> [ReLU]."""

    def __init__(self, ni, nf, ks=3, stride=1, act=True, zero_bn=False):
        conv = nn.Conv1d(ni, nf, kernel_size=ks, stride=stride, padding=(ks - 1) // 2, bias=False)
        nn.init.kaiming_normal_(conv.weight)
        layers = [conv, _xbn(nf, zero_bn)]
        if act:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """xresnet1d.ResBlock (no SE / self-attention, groups 1): convpath + idpath -> ReLU.

    idpath: AvgPool1d(2, ceil_mode=True) if stride != 1 (pool first), then 1x1 ConvLayer (no act)
    if the channel count changes.
    """

    def __init__(self, expansion, ni, nf, stride=1, kernel_size=3):
        super().__init__()
        nh1 = nh2 = nf
        nf, ni = nf * expansion, ni * expansion
        if expansion == 1:
            layers = [ConvLayer(ni, nh2, kernel_size, stride=stride),
                      ConvLayer(nh2, nf, kernel_size, act=False, zero_bn=True)]
        else:
            layers = [ConvLayer(ni, nh1, 1),
                      ConvLayer(nh1, nh2, kernel_size, stride=stride),
                      ConvLayer(nh2, nf, 1, act=False, zero_bn=True)]
        self.convs = nn.Sequential(*layers)
        self.convpath = nn.Sequential(self.convs)
        idpath = []
        if ni != nf:
            idpath.append(ConvLayer(ni, nf, 1, act=False))
        if stride != 1:
            idpath.insert(0, nn.AvgPool1d(2, ceil_mode=True))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.convpath(x) + self.idpath(x))


def init_cnn(m: nn.Module) -> None:
    """xresnet1d.init_cnn: every bias (BN included) 0, kaiming_normal_ on conv / linear weights."""
    if getattr(m, "bias", None) is not None:
        nn.init.constant_(m.bias, 0)
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight)
    for c in m.children():
        init_cnn(c)


XRESNET_CONFIGS = {
    "xresnet1d18": (1, (2, 2, 2, 2)),
    "xresnet1d34": (1, (3, 4, 6, 3)),
    "xresnet1d50": (4, (3, 4, 6, 3)),
    "xresnet1d101": (4, (3, 4, 23, 3)),
    "xresnet1d152": (4, (3, 8, 36, 3)),
}


class XResNet1d(nn.Sequential):
    """xresnet1d.XResNet1d as built by fastai_model (kernel_size=5, kernel_size_stem=5,
    stem_szs (32, 32, 64), block widths 64 (x expansion), stage strides 1, 2, 2, 2)."""

    def __init__(self, expansion, layers, num_classes=NUM_CLASSES, input_channels=INPUT_CHANNELS,
                 stem_szs=(32, 32, 64), kernel_size=5, kernel_size_stem=5, lin_ftrs_head=(128,), ps_head=0.5):
        szs = [input_channels, *stem_szs]
        stem = [ConvLayer(szs[i], szs[i + 1], ks=kernel_size_stem, stride=2 if i == 0 else 1) for i in range(3)]
        block_szs = [64 // expansion] + [64, 64, 64, 64] + [32] * (len(layers) - 4)
        blocks = [nn.Sequential(*[ResBlock(expansion, block_szs[i] if j == 0 else block_szs[i + 1], block_szs[i + 1],
                                           stride=(1 if i == 0 else 2) if j == 0 else 1, kernel_size=kernel_size)
                                  for j in range(n)])
                  for i, n in enumerate(layers)]
        head = create_head1d(block_szs[-1] * expansion, num_classes, lin_ftrs_head, ps_head)
        super().__init__(*stem, nn.MaxPool1d(kernel_size=3, stride=2, padding=1), *blocks, head)
        init_cnn(self)


# ============================================================================ inception1d
def _conv_nb(ni, nf, ks=3, stride=1):
    return nn.Conv1d(ni, nf, kernel_size=ks, stride=stride, padding=(ks - 1) // 2, bias=False)


class InceptionBlock1d(nn.Module):
    """inception1d.InceptionBlock1d: bottleneck 1x1 -> convs (kss); MaxPool(3,1,1) -> 1x1; cat -> BN -> ReLU."""

    def __init__(self, ni, nb_filters, kss, stride=1, bottleneck_size=32):
        super().__init__()
        self.bottleneck = _conv_nb(ni, bottleneck_size, 1, stride) if bottleneck_size > 0 else None
        self.convs = nn.ModuleList([_conv_nb(bottleneck_size if bottleneck_size > 0 else ni, nb_filters, ks)
                                    for ks in kss])
        self.conv_bottle = nn.Sequential(nn.MaxPool1d(3, stride, padding=1), _conv_nb(ni, nb_filters, 1))
        self.bn_relu = nn.Sequential(nn.BatchNorm1d((len(kss) + 1) * nb_filters), nn.ReLU())

    def forward(self, x):
        bottled = self.bottleneck(x) if self.bottleneck is not None else x
        return self.bn_relu(torch.cat([c(bottled) for c in self.convs] + [self.conv_bottle(x)], dim=1))


class Shortcut1d(nn.Module):
    """inception1d.Shortcut1d: ReLU(out + BN(1x1 conv(inp)))."""

    def __init__(self, ni, nf):
        super().__init__()
        self.act_fn = nn.ReLU(True)
        self.conv = _conv_nb(ni, nf, 1)
        self.bn = nn.BatchNorm1d(nf)

    def forward(self, inp, out):
        return self.act_fn(out + self.bn(self.conv(inp)))


class InceptionBackbone(nn.Module):
    def __init__(self, input_channels, kss, depth, bottleneck_size, nb_filters, use_residual):
        super().__init__()
        assert depth % 3 == 0
        self.depth, self.use_residual = depth, use_residual
        n_ks = len(kss) + 1
        self.im = nn.ModuleList([InceptionBlock1d(input_channels if d == 0 else n_ks * nb_filters, nb_filters, kss,
                                                  bottleneck_size=bottleneck_size) for d in range(depth)])
        self.sk = nn.ModuleList([Shortcut1d(input_channels if d == 0 else n_ks * nb_filters, n_ks * nb_filters)
                                 for d in range(depth // 3)])

    def forward(self, x):
        input_res = x
        for d in range(self.depth):
            x = self.im[d](x)
            if self.use_residual and d % 3 == 2:
                x = self.sk[d // 3](input_res, x)
                input_res = x.clone()  # as in the reference
        return x


class Inception1d(nn.Module):
    """inception1d.Inception1d as built by fastai_model (kernel_size = 8*5 = 40 -> kernels 39, 19, 9;
    depth 6, bottleneck 32, 32 filters, residual)."""

    def __init__(self, num_classes=NUM_CLASSES, input_channels=INPUT_CHANNELS, kernel_size=40, depth=6,
                 bottleneck_size=32, nb_filters=32, use_residual=True, lin_ftrs_head=(128,), ps_head=0.5):
        super().__init__()
        kss = [k - 1 if k % 2 == 0 else k for k in (kernel_size, kernel_size // 2, kernel_size // 4)]
        n_ks = len(kss) + 1
        self.layers = nn.Sequential(
            InceptionBackbone(input_channels, kss, depth, bottleneck_size, nb_filters, use_residual),
            create_head1d(n_ks * nb_filters, num_classes, lin_ftrs_head, ps_head))

    def forward(self, x):
        return self.layers(x)


# ============================================================================ rnn1d
class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class AdaptiveConcatPoolRNN(nn.Module):
    """rnn1d.AdaptiveConcatPoolRNN: cat([avg, max, last step]) over time (bs, ch, ts) -> (bs, 3*ch).

    For bidirectional RNNs the reference slices ``x[:, :channels, -1]`` with the FULL channel
    count (the backward slice is empty); kept as is.
    """

    def __init__(self, bidirectional: bool):
        super().__init__()
        self.bidirectional = bidirectional

    def forward(self, x):
        t1 = F.adaptive_avg_pool1d(x, 1)
        t2 = F.adaptive_max_pool1d(x, 1)
        if not self.bidirectional:
            t3 = x[:, :, -1]
        else:
            channels = x.size()[1]
            t3 = torch.cat([x[:, :channels, -1], x[:, channels:, 0]], 1)
        return torch.cat([t1.squeeze(-1), t2.squeeze(-1), t3], 1)


class RNN1d(nn.Sequential):
    """rnn1d.RNN1d (hidden 256, 2 layers, time-major nn.LSTM / nn.GRU, default PyTorch init), head
    AdaptiveConcatPoolRNN -> bn_drop_lin stack (no Flatten)."""

    def __init__(self, input_channels=INPUT_CHANNELS, num_classes=NUM_CLASSES, lstm=True, hidden_dim=256,
                 num_layers=2, bidirectional=False, ps_head=0.5, lin_ftrs_head=(128,), bn=True):
        rnn_cls = nn.LSTM if lstm else nn.GRU
        layers = [Lambda(lambda x: x.transpose(1, 2)),
                  Lambda(lambda x: x.transpose(0, 1)),
                  rnn_cls(input_size=input_channels, hidden_size=hidden_dim, num_layers=num_layers,
                          bidirectional=bidirectional),
                  Lambda(lambda x: x[0].transpose(0, 1)),
                  Lambda(lambda x: x.transpose(1, 2))]
        nf = 3 * hidden_dim if not bidirectional else 6 * hidden_dim
        lin, ps, actns = _head_spec(nf, num_classes, lin_ftrs_head, ps_head)
        head = [AdaptiveConcatPoolRNN(bidirectional)]
        for ni, no, p, actn in zip(lin[:-1], lin[1:], ps, actns):
            head += bn_drop_lin(ni, no, bn, p, actn)
        layers.append(nn.Sequential(*head))
        super().__init__(*layers)


# ============================================================================ registry
def build(arch: str, num_classes: int = NUM_CLASSES) -> nn.Module:
    if arch == "fcn_wang":
        m = FCNWang(num_classes)
    elif arch == "resnet1d_wang":
        m = ResNet1dWang(num_classes)
    elif arch in XRESNET_CONFIGS:
        m = XResNet1d(*XRESNET_CONFIGS[arch], num_classes=num_classes)
    elif arch == "inception1d":
        m = Inception1d(num_classes)
    elif arch == "lstm":
        m = RNN1d(num_classes=num_classes, lstm=True, bidirectional=False)
    elif arch == "lstm_bidir":
        m = RNN1d(num_classes=num_classes, lstm=True, bidirectional=True)
    elif arch == "gru":
        m = RNN1d(num_classes=num_classes, lstm=False, bidirectional=False)
    else:
        raise ValueError(f"unknown arch {arch!r}; choose from {sorted(PROTOCOL_PARAMS)}")
    m.apply(weight_init)  # fastai_model.fit: learn.model.apply(weight_init)
    return m


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def check_params(arch: str, n: int) -> dict:
    expected_torch = PROTOCOL_PARAMS[arch] + TORCH_EXTRA_BIAS.get(arch, 0)
    keras_equiv = n - TORCH_EXTRA_BIAS.get(arch, 0)
    assert n == expected_torch, f"{arch}: {n} trainable parameters, expected {expected_torch} (docs/PROTOCOL.md)"
    return {"params": n, "params_keras_equivalent": keras_equiv, "params_protocol": PROTOCOL_PARAMS[arch]}


# ============================================================================ timing
def _timed(step, warmup: int, seconds: float, min_steps: int) -> dict:
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - t0
    times = []
    start, cpu0 = time.perf_counter(), time.process_time()
    while True:
        a = time.perf_counter()
        step()
        b = time.perf_counter()
        times.append(b - a)
        if b - start >= seconds and len(times) >= min_steps:
            break
    total = time.perf_counter() - start
    return {"warmup_s": warm, "steps": len(times), "total_s": total, "step_s": times,
            "cpu_s": time.process_time() - cpu0}


def measure_train(arch: str, batch: int, seconds: float, warmup: int, min_steps: int, rnn_clip: float) -> dict:
    torch.manual_seed(0)
    model = build(arch)
    model.train()
    x = torch.randn(batch, INPUT_CHANNELS, WINDOW)
    y = torch.randint(0, 2, (batch, NUM_CLASSES)).float()
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    clip = rnn_clip if (rnn_clip > 0 and arch in ("lstm", "lstm_bidir", "gru")) else 0.0

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    r = _timed(step, warmup, seconds, min_steps)
    return _summarise(r, batch, extra={"grad_clip": clip or None})


def measure_infer(arch: str, batch: int, seconds: float, warmup: int, min_steps: int) -> dict:
    torch.manual_seed(0)
    model = build(arch)
    model.eval()
    x = torch.randn(batch, INPUT_CHANNELS, WINDOW)

    def step():
        with torch.inference_mode():
            model(x)

    r = _timed(step, warmup, seconds, min_steps)
    return _summarise(r, batch)


def _summarise(r: dict, batch: int, extra: dict | None = None) -> dict:
    med = statistics.median(r["step_s"])
    out = {
        "batch_size": batch,
        "steps": r["steps"],
        "warmup_s": round(r["warmup_s"], 3),
        "total_s": round(r["total_s"], 3),
        "median_step_s": round(med, 5),
        "min_step_s": round(min(r["step_s"]), 5),
        "windows_per_s_median": round(batch / med, 1),
        "windows_per_s_total": round(r["steps"] * batch / r["total_s"], 1),
        "cpu_ms_per_step": round(1e3 * r["cpu_s"] / r["steps"], 1),  # process user + sys, all threads
        "step_s": [round(t, 5) for t in r["step_s"]],
    }
    if extra:
        out.update({k: v for k, v in extra.items() if v is not None})
    return out


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    torch.matmul(a, b)  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


#: the shapes of benchmarks/kernels.py (length, in channels, out channels, kernel size), batch 128
KERNEL_SHAPES = ((250, 128, 128, 5), (250, 128, 128, 3), (250, 12, 128, 8), (250, 128, 256, 5), (125, 64, 64, 5),
                 (63, 128, 128, 5), (250, 32, 32, 39), (250, 32, 32, 19), (250, 32, 32, 9), (250, 128, 32, 1))


def conv_kernels(batch: int = 128, repeats: int = 5) -> list[dict]:
    """GFLOP/s of one conv1d forward + input and weight gradients ("same" padding), best of ``repeats``."""
    rows = []
    for length, cin, cout, k in KERNEL_SHAPES:
        x = torch.randn(batch, cin, length, requires_grad=True)
        w = (torch.randn(cout, cin, k) * 0.05).requires_grad_()

        def step():
            y = F.conv1d(x, w, padding=(k - 1) // 2) if k % 2 else F.conv1d(F.pad(x, ((k - 1) // 2, k // 2)), w)
            torch.autograd.grad((y * y).sum() * 1e-6, [x, w])

        step()
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
        flops = 3.0 * 2.0 * batch * length * cin * cout * k
        rows.append({"shape": [length, cin, cout, k], "ms": round(1e3 * best, 1), "gflops": round(flops / best / 1e9, 1)})
    return rows


# ============================================================================ CLI
def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _fmt_issue(arch: str, kind: str) -> str:
    f = ISSUE_FIGURES.get(arch, {}).get(kind)
    if not f:
        return "-"
    return f"{f[0]}" if f[0] == f[1] else f"{f[0]}-{f[1]}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default=",".join(DEFAULT_ARCHS),
                   help=f"comma-separated; default {','.join(DEFAULT_ARCHS)}; also {','.join(a for a in PROTOCOL_PARAMS if a not in DEFAULT_ARCHS)}")
    p.add_argument("--seconds", type=float, default=15.0, help="timed seconds per measurement (train and infer each)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--batch-size", type=int, default=128, help="training batch")
    p.add_argument("--infer-batch", type=int, default=64, help="inference batch (windows)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--min-steps", type=int, default=3, help="at least this many timed steps")
    p.add_argument("--rnn-clip", type=float, default=0.0,
                   help="gradient-norm clipping for the RNNs (reference: 0.25; default off = plain AdamW step)")
    p.add_argument("--no-matmul", action="store_true", help="skip the matmul peak measurement")
    p.add_argument("--check", action="store_true", help="only build the models, check parameters and output shapes")
    p.add_argument("--kernels", action="store_true",
                   help="only time single conv1d layers (the shapes of benchmarks/kernels.py) and the matmul")
    p.add_argument("--output", help="write the results as JSON to this file")
    a = p.parse_args(argv)
    if a.kernels:
        torch.set_num_threads(a.threads)
        print(f"torch.matmul 2048x2048 float32: {matmul_gflops():.1f} GFLOP/s")
        print("length  cin  cout   k   ms (fwd+bwd, batch 128)   GFLOP/s")
        for r in conv_kernels():
            length, cin, cout, k = r["shape"]
            print(f"{length:6d} {cin:4d} {cout:5d} {k:3d}   {r['ms']:10.1f}               {r['gflops']:7.1f}")
        return 0

    archs = [s.strip() for s in a.archs.split(",") if s.strip()]
    for arch in archs:
        if arch not in PROTOCOL_PARAMS:
            p.error(f"unknown arch {arch!r}; choose from {', '.join(PROTOCOL_PARAMS)}")
    torch.set_num_threads(a.threads)
    meta = {
        "tool": "benchmarks/torch_peer.py",
        "timestamp": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "dtype": "float32",
        "window": [INPUT_CHANNELS, WINDOW],
        "num_classes": NUM_CLASSES,
        "optimizer": "torch.optim.AdamW(lr=1e-2, weight_decay=1e-2)",
        "loss": "BCEWithLogitsLoss",
        "settings": {k: getattr(a, k) for k in ("seconds", "threads", "batch_size", "infer_batch", "warmup",
                                                 "min_steps", "rnn_clip", "check")},
        "loadavg_before": _loadavg(),
    }
    print(f"torch {meta['torch']}  threads {meta['num_threads']} (interop {meta['num_interop_threads']})  "
          f"cpu {meta['cpu']} x{meta['cpu_count']}  loadavg {meta['loadavg_before']}", flush=True)

    results: dict = {"meta": meta, "models": {}}
    if not a.check and not a.no_matmul:
        results["matmul_gflops_before"] = round(matmul_gflops(), 1)
        print(f"matmul 2048x2048 float32: {results['matmul_gflops_before']:.1f} GFLOP/s (best of 5)", flush=True)

    for arch in archs:
        torch.manual_seed(0)
        m = build(arch)
        info = check_params(arch, count_params(m))
        m.eval()
        with torch.inference_mode():
            out = m(torch.randn(2, INPUT_CHANNELS, WINDOW))
        assert tuple(out.shape) == (2, NUM_CLASSES), (arch, tuple(out.shape))
        info["output_shape"] = [None, NUM_CLASSES]
        del m
        print(f"{arch:14s} params {info['params']:>9,d} (Keras-equivalent {info['params_keras_equivalent']:,d}, "
              f"PROTOCOL {info['params_protocol']:,d}: OK)  output {tuple(out.shape)}", flush=True)
        if not a.check:
            info["train"] = measure_train(arch, a.batch_size, a.seconds, a.warmup, a.min_steps, a.rnn_clip)
            print(f"  train {info['train']['windows_per_s_median']:8.1f} windows/s (median step)  "
                  f"{info['train']['windows_per_s_total']:8.1f} (total), {info['train']['steps']} steps", flush=True)
            info["infer"] = measure_infer(arch, a.infer_batch, a.seconds, a.warmup, a.min_steps)
            print(f"  infer {info['infer']['windows_per_s_median']:8.1f} windows/s (median step)  "
                  f"{info['infer']['windows_per_s_total']:8.1f} (total), {info['infer']['steps']} steps", flush=True)
        results["models"][arch] = info

    if not a.check and not a.no_matmul:
        results["matmul_gflops_after"] = round(matmul_gflops(), 1)
    meta["loadavg_after"] = _loadavg()

    if not a.check:
        print()
        print(f"PyTorch {meta['torch']} CPU, {meta['num_threads']} threads, float32, 12 x {WINDOW} windows, "
              f"{NUM_CLASSES} classes; windows/s (median step | total); issue = figure quoted in the issue")
        hdr = (f"{'arch':14s} {'params':>10s} | {'train b' + str(a.batch_size):>17s} {'issue':>9s} | "
               f"{'infer b' + str(a.infer_batch):>17s} {'issue':>9s}")
        print(hdr)
        print("-" * len(hdr))
        for arch, r in results["models"].items():
            t, i = r["train"], r["infer"]
            print(f"{arch:14s} {r['params']:>10,d} | {t['windows_per_s_median']:7.1f} | {t['windows_per_s_total']:7.1f} "
                  f"{_fmt_issue(arch, 'train'):>9s} | {i['windows_per_s_median']:7.1f} | {i['windows_per_s_total']:7.1f} "
                  f"{_fmt_issue(arch, 'infer'):>9s}")
        if "matmul_gflops_before" in results:
            print(f"matmul 2048x2048 float32 GFLOP/s (best of 5): before {results['matmul_gflops_before']:.1f}, "
                  f"after {results['matmul_gflops_after']:.1f}")
        print(f"loadavg before {meta['loadavg_before']}, after {meta['loadavg_after']}")

    if a.output:
        d = os.path.dirname(os.path.abspath(a.output))
        os.makedirs(d, exist_ok=True)
        with open(a.output, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        print(f"wrote {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The PyTorch -> Keras weight mapping of :mod:`ecg_keras.export.from_torch`: per architecture, the
PyTorch module of every weighted Keras layer (:func:`plan`), the xresnet aliases, and the checked,
all-or-nothing copy of the tensors into the model (:func:`assign`)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ecg_keras.export.torch_checkpoint import ConversionError

ARCHS = ("fcn_wang", "resnet1d_wang", "xresnet1d18", "xresnet1d34", "xresnet1d50", "xresnet1d101",
         "xresnet1d152", "inception1d", "lstm", "lstm_bidir", "gru")
_MAX_LISTED = 12


# --------------------------------------------------------------------------- the mapping
@dataclass(frozen=True)
class Entry:
    """One Keras layer and the PyTorch module whose tensors it takes."""

    layer: str  # Keras layer name
    role: str  # conv | bn | dense | rnn
    prefix: str  # PyTorch module path ("3.0.convs.1.0"); for rnn the module holding weight_ih_l*
    index: int = 0  # rnn: layer number (weight_ih_l{index})


def _head(model, start: str, offset: int) -> list[Entry]:
    """create_head1d / the RNN head: [pool, (Flatten)] + [BN, Dropout, Linear, ReLU] * n + [BN, Dropout, Linear]."""
    out, i = [], offset
    names = [l.name for l in model.layers if l.name.startswith("head_")]
    k = 1
    while f"head_bn{k}" in names:
        out.append(Entry(f"head_bn{k}", "bn", f"{start}.{i}"))
        i += 2 if f"head_dropout{k}" in names else 1
        last = f"head_dense{k}" not in names
        out.append(Entry("head_logits" if last else f"head_dense{k}", "dense", f"{start}.{i}"))
        i += 1 if last else 2
        k += 1
    return out


def plan(arch: str, model) -> list[Entry]:
    """Keras layer -> PyTorch module for every weighted layer of ``model`` (built by ``models.get(arch)``)."""
    names = [l.name for l in model.layers]
    entries: list[Entry] = []

    def add(name, role, prefix, index=0):
        entries.append(Entry(name, role, prefix, index))

    if arch == "fcn_wang":  # basic_conv1d: Sequential(Sequential(_conv1d=[conv, bn, relu])) per layer, head
        n = 0
        for name in names:
            m = re.fullmatch(r"block(\d+)_(conv|bn)", name)
            if m:
                b = int(m[1])
                add(name, m[2], f"{b - 1}.0.{0 if m[2] == 'conv' else 1}")
                n = max(n, b)
        entries += _head(model, str(n), 2)
    elif arch == "resnet1d_wang":  # ResNet1d: conv, bn, relu, stages (BasicBlock1d), head
        n = 0
        for name in names:
            if name in ("stem_conv", "stem_bn"):
                add(name, name[5:], "0" if name == "stem_conv" else "1")
            elif m := re.fullmatch(r"stage(\d+)_block(\d+)_(conv|bn)(\d)", name):
                add(name, m[3], f"{2 + int(m[1])}.{int(m[2]) - 1}.{m[3]}{m[4]}")
                n = max(n, int(m[1]))
            elif m := re.fullmatch(r"stage(\d+)_block(\d+)_shortcut_(conv|bn)", name):
                add(name, m[3], f"{2 + int(m[1])}.{int(m[2]) - 1}.downsample.{0 if m[3] == 'conv' else 1}")
        entries += _head(model, str(3 + n), 2)
    elif arch.startswith("xresnet1d"):  # XResNet1d: 3 ConvLayers, MaxPool, stages (ResBlock), head
        n = 0
        for name in names:
            if m := re.fullmatch(r"stem_(conv|bn)(\d)", name):
                add(name, m[1], f"{int(m[2]) - 1}.{0 if m[1] == 'conv' else 1}")
            elif m := re.fullmatch(r"(stage(\d+)_block(\d+))_(conv|bn)(\d)", name):
                add(name, m[4], f"{3 + int(m[2])}.{int(m[3]) - 1}.convs.{int(m[5]) - 1}.{0 if m[4] == 'conv' else 1}")
                n = max(n, int(m[2]))
            elif m := re.fullmatch(r"(stage(\d+)_block(\d+))_shortcut_(conv|bn)", name):
                pos = 1 if f"{m[1]}_shortcut_pool" in names else 0  # idpath = [AvgPool (stride 2)], ConvLayer
                add(name, m[4], f"{3 + int(m[2])}.{int(m[3]) - 1}.idpath.{pos}.{0 if m[4] == 'conv' else 1}")
        entries += _head(model, str(4 + n), 2)
    elif arch == "inception1d":  # Inception1d.layers = [InceptionBackbone(im, sk), head]
        kss = sorted({int(m[1]) for x in names if (m := re.fullmatch(r"block\d+_conv_k(\d+)", x))}, reverse=True)
        for name in names:
            if m := re.fullmatch(r"block(\d+)_(bottleneck|conv_k(\d+)|conv_pool|bn)", name):
                im = f"layers.0.im.{int(m[1]) - 1}"
                part = m[2]
                if part == "bottleneck":
                    add(name, "conv", f"{im}.bottleneck")
                elif part == "conv_pool":
                    add(name, "conv", f"{im}.conv_bottle.1")
                elif part == "bn":
                    add(name, "bn", f"{im}.bn_relu.0")
                else:
                    add(name, "conv", f"{im}.convs.{kss.index(int(m[3]))}")
            elif m := re.fullmatch(r"shortcut(\d+)_(conv|bn)", name):
                add(name, m[2], f"layers.0.sk.{int(m[1]) - 1}.{m[2]}")
        entries += _head(model, "layers.1", 2)
    elif arch in ("lstm", "lstm_bidir", "gru"):  # RNN1d: Lambda, Lambda, nn.LSTM/GRU, Lambda, Lambda, head
        for name in names:
            if m := re.fullmatch(r"rnn(\d+)", name):
                add(name, "rnn", "2", int(m[1]) - 1)
        entries += _head(model, "5", 1)
    else:
        raise ConversionError(f"unknown architecture {arch!r}; one of {', '.join(ARCHS)}")
    mapped = {e.layer for e in entries}
    unmapped = [l.name for l in model.layers if l.weights and l.name not in mapped]
    if unmapped:  # a Keras layer the plan does not know: a bug here, never silently left at its init
        raise ConversionError(f"{arch}: no PyTorch module for Keras layer(s) {', '.join(unmapped)}")
    return entries


def aliases(arch: str, keys) -> dict[str, str]:
    """Alias key -> canonical key: xresnet ResBlock registers ``convs`` again as ``convpath.0``."""
    if not arch.startswith("xresnet1d"):
        return {}
    out = {}
    for k in keys:
        m = re.fullmatch(r"(\d+\.\d+)\.convpath\.0\.(.+)", k)
        if m:
            out[k] = f"{m[1]}.convs.{m[2]}"
    return out


def _rnn_parts(cell: str, kernel, recurrent, bias) -> tuple:
    """PyTorch (W_ih, W_hh, b_ih, b_hh) -> Keras (kernel, recurrent_kernel, bias) for one direction."""
    if cell == "lstm":  # same gate order (i, f, g/c, o); Keras has one bias = b_ih + b_hh
        return kernel.T, recurrent.T, bias[0] + bias[1]
    u = kernel.shape[0] // 3  # GRU: PyTorch (r, z, n) -> Keras (z, r, h); reset_after bias (2, 3u)
    order = np.concatenate([np.arange(u, 2 * u), np.arange(0, u), np.arange(2 * u, 3 * u)])
    return kernel[order].T, recurrent[order].T, np.stack([bias[0][order], bias[1][order]])


def _expected(entry: Entry, layer) -> list[tuple[str, tuple, object]]:
    """[(torch key, torch shape, keras variable or None)] needed by ``entry``."""
    p = entry.prefix
    if entry.role == "conv":
        k, cin, cout = layer.kernel.shape
        out = [(f"{p}.weight", (cout, cin, k))]
        if layer.use_bias:
            out.append((f"{p}.bias", (cout,)))
        return out
    if entry.role == "dense":
        cin, cout = layer.kernel.shape
        return [(f"{p}.weight", (cout, cin)), (f"{p}.bias", (cout,))]
    if entry.role == "bn":
        c = layer.gamma.shape[0]
        return [(f"{p}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")]
    if entry.role == "rnn":
        fwd = getattr(layer, "forward_layer", layer)
        units, cin = fwd.cell.units, fwd.cell.kernel.shape[0]
        g = fwd.cell.kernel.shape[1] // units
        sfx = [""] + (["_reverse"] if hasattr(layer, "backward_layer") else [])
        return [(f"{p}.{n}_l{entry.index}{s}", shp) for s in sfx
                for n, shp in (("weight_ih", (g * units, cin)), ("weight_hh", (g * units, units)),
                               ("bias_ih", (g * units,)), ("bias_hh", (g * units,)))]
    raise AssertionError(entry.role)


def _fmt(items) -> str:
    items = list(items)
    text = "; ".join(items[:_MAX_LISTED])
    return text + (f"; ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def assign(arch: str, model, state: dict[str, np.ndarray]) -> dict:
    """Copy ``state`` into ``model`` (every weight, by name); raise ConversionError naming any problem.

    Nothing is assigned unless the whole checkpoint fits. Keys, shapes and dtypes are checked
    first (for an ``.npz`` from the headers alone,
    :func:`ecg_keras.export.torch_checkpoint.read_npz_headers`), then the values are
    read and checked: finite, within +-``models.weights.MAX_ABS_WEIGHT``, BatchNorm variances >= 0. Returns
    counts for the provenance.
    """
    from ecg_keras.models.weights import MAX_ABS_WEIGHT

    state = dict(state)
    problems: list[str] = []
    alias_map = aliases(arch, state)
    pairs = []
    for alias, canon in alias_map.items():
        value = state.pop(alias)
        if canon not in state:
            state[canon] = value  # only the alias was saved: use it
        elif tuple(state[canon].shape) != tuple(value.shape):
            problems.append(f"tensor {alias!r} must alias {canon!r} (the reference registers xresnet block "
                            "convolutions twice) but has another shape")
        else:
            pairs.append((alias, canon, value))  # values compared once keys and shapes fit
    entries = plan(arch, model)
    layers = {l.name: l for l in model.layers}
    consumed: set[str] = set()
    wanted: dict[str, Entry] = {}
    for e in entries:
        for key, shape in _expected(e, layers[e.layer]):
            consumed.add(key)
            if key not in state:
                problems.append(f"missing tensor {key!r} (Keras layer {e.layer}, {e.role}, shape {shape})")
            elif tuple(state[key].shape) != tuple(shape):
                problems.append(f"tensor {key!r} has shape {tuple(state[key].shape)}, expected {tuple(shape)} "
                                f"(Keras layer {e.layer}, {e.role})")
            elif np.dtype(state[key].dtype).kind != "f":
                problems.append(f"tensor {key!r} has dtype {state[key].dtype}, expected floating point "
                                f"(Keras layer {e.layer}, {e.role})")
            else:
                wanted[key] = e
        if e.role == "bn":
            consumed.add(f"{e.prefix}.num_batches_tracked")  # optional bookkeeping, no weight
    unexpected = sorted(k for k in state if k not in consumed)
    problems += [f"unexpected tensor {k!r} {tuple(state[k].shape)} (no Keras layer of {arch} takes it)"
                 for k in unexpected]
    if problems:
        raise ConversionError(f"checkpoint does not fit {arch} ({len(problems)} problem(s)): {_fmt(problems)}")
    n_alias = 0
    for alias, canon, value in pairs:
        if np.array_equal(np.asarray(state[canon]), np.asarray(value)):
            n_alias += 1
        else:
            problems.append(f"tensor {alias!r} must alias {canon!r} (the reference registers xresnet block "
                            "convolutions twice) but holds different values")
    values: dict[str, np.ndarray] = {}
    for key, e in wanted.items():
        raw = np.asarray(state[key])
        bad = int((~np.isfinite(raw)).sum())
        if bad:
            problems.append(f"tensor {key!r} holds {bad} NaN/Inf value(s) (Keras layer {e.layer}, {e.role})")
        elif raw.size and float(np.abs(raw).max()) > MAX_ABS_WEIGHT:
            problems.append(f"tensor {key!r} reaches {float(np.abs(raw).max()):.3g} (> {MAX_ABS_WEIGHT:g}): not "
                            f"trained weights (Keras layer {e.layer}, {e.role})")
        elif key.endswith(".running_var") and (raw < 0).any():
            problems.append(f"tensor {key!r} has negative BatchNorm variances (Keras layer {e.layer})")
        values[key] = raw.astype(np.float32)
    if problems:
        raise ConversionError(f"checkpoint weights of {arch} refused ({len(problems)} problem(s)): {_fmt(problems)}")

    pending: list[tuple[object, np.ndarray]] = []
    for e in entries:
        layer, p = layers[e.layer], e.prefix
        if e.role == "conv":
            pending.append((layer.kernel, values[f"{p}.weight"].transpose(2, 1, 0)))
            if layer.use_bias:
                pending.append((layer.bias, values[f"{p}.bias"]))
        elif e.role == "dense":
            pending += [(layer.kernel, values[f"{p}.weight"].T), (layer.bias, values[f"{p}.bias"])]
        elif e.role == "bn":
            pending += [(layer.gamma, values[f"{p}.weight"]), (layer.beta, values[f"{p}.bias"]),
                        (layer.moving_mean, values[f"{p}.running_mean"]),
                        (layer.moving_variance, values[f"{p}.running_var"])]
        else:
            directions = [("", getattr(layer, "forward_layer", layer))]
            if hasattr(layer, "backward_layer"):
                directions.append(("_reverse", layer.backward_layer))
            for sfx, sub in directions:
                cell = sub.cell
                get = lambda n: values[f"{p}.{n}_l{e.index}{sfx}"]  # noqa: E731
                kind = "gru" if "GRU" in type(cell).__name__ else "lstm"
                k, r, b = _rnn_parts(kind, get("weight_ih"), get("weight_hh"), (get("bias_ih"), get("bias_hh")))
                pending += [(cell.kernel, k), (cell.recurrent_kernel, r), (cell.bias, b)]
    covered = {id(v) for v, _ in pending}
    left = [v.path for v in model.weights if id(v) not in covered]
    if left:
        raise ConversionError(f"{arch}: Keras weights without a PyTorch tensor: {_fmt(left)}")
    for var, value in pending:
        if tuple(var.shape) != value.shape:
            raise ConversionError(f"{var.path}: shape {tuple(var.shape)} != converted {value.shape}")
        var.assign(value)
    return {"tensors": len(consumed & set(state)), "aliases": n_alias}

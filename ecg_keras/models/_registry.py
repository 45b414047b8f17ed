"""The architecture registry (timm-style): ``register``, ``get``, ``list_models``, ``layer_groups``."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

import keras

from ecg_keras.archs import unknown
from ecg_keras.models.heads import HEAD_PREFIX
from ecg_keras.models.layers import INPUT_NAME


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., keras.Model]
    layer_groups: tuple  # backbone groups as tuples of layer-name prefixes; the head is appended


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, layer_groups: tuple = ()):
    """Decorator: put a builder ``f(num_classes, input_shape, include_top, pooling, name, ...)``
    in the registry under ``name``. ``layer_groups`` lists, per backbone layer group (the
    reference's ``get_layer_groups`` split), the layer-name prefixes of that group."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, fn, tuple(layer_groups))
        return fn

    return deco


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered architectures, optionally filtered by a glob ``pattern``."""
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get(name: str, num_classes: int = 71, **kwargs) -> keras.Model:
    """Build architecture ``name``: ``get("xresnet1d101", num_classes=5, input_shape=(None, 12))``.

    Keyword arguments are those of the builder (``input_shape``, ``include_top``, ``pooling``,
    ``name``, ``classifier_activation``, ``weights``, family-specific options). ``name``
    defaults to the architecture name.
    """
    try:
        entry = _REGISTRY[name]
    except KeyError:
        raise ValueError(unknown("model", name, list_models())) from None
    kwargs.setdefault("name", name)
    return entry.builder(num_classes=num_classes, **kwargs)


def layer_groups(model: keras.Model, arch: str | None = None) -> list[list[keras.layers.Layer]]:
    """Layer groups for gradual unfreezing / discriminative learning rates, as in the reference.

    Returns ``[group0, ..., head]`` (lists of layers, weightless layers included). ``arch``
    defaults to ``model.name`` (pass it when the model was built with a custom name). The last
    group is the head (``head_*`` layers); pooling layers are left out.
    """
    arch = arch or model.name
    if arch not in _REGISTRY:
        raise ValueError(f"unknown architecture {arch!r}; pass arch=<registered name>")
    specs = _REGISTRY[arch].layer_groups or (("",),)
    groups: list[list] = [[] for _ in specs] + [[]]
    for layer in model.layers:
        n = layer.name
        if n == INPUT_NAME or n == "pool" or n.startswith("pool_"):
            continue
        if n.startswith(HEAD_PREFIX):
            groups[-1].append(layer)
            continue
        idx = next((i for i, pre in enumerate(specs) if n.startswith(tuple(pre))), 0)
        groups[idx].append(layer)
    return groups

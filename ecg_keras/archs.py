"""The names of the registered architectures, importable without TensorFlow.

Command lines check ``--arch`` against :data:`ARCH_NAMES` while parsing their arguments, before
Keras starts; ``tests/test_api.py`` checks that the package's own builders register exactly these
names. A user's own :func:`ecg_keras.models.register` builder is used from Python
(``models.get``, ``TrainConfig``), not from the command line.
"""
from __future__ import annotations

import difflib
from typing import Iterable

ARCH_NAMES = ("fcn_wang", "gru", "inception1d", "lstm", "lstm_bidir", "resnet1d_wang", "xresnet1d101",
              "xresnet1d152", "xresnet1d18", "xresnet1d34", "xresnet1d50")


def unknown(what: str, value: str, choices: Iterable[str]) -> str:
    """"unknown architecture 'fcn_wnag'; did you mean 'fcn_wang'? (choose from ...)"."""
    choices = list(choices)
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {value!r}{hint} (choose from {', '.join(choices)})"


def check(what: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else ValueError with :func:`unknown`'s message."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(unknown(what, value, choices))
    return value

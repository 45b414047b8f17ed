"""``ecg-keras COMMAND ...`` (= ``python -m ecg_keras COMMAND ...``): one entry point for the tools.

Each subcommand is the ``main(argv)`` of a module, imported only when that command runs, so
``ecg-keras --help`` is instant and a command's flags and help are exactly those of the module
(``ecg-keras train`` = ``python train.py``, ``ecg-keras export`` = ``python -m export``).
A new command is one line in :data:`COMMANDS`.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

#: command -> ("module:function" taking argv and returning an exit code, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ecg_keras.training.cli:main", "train a benchmark model (same as `python train.py`)"),
    "evaluate": ("ecg_keras.evaluation.cli:main", "metrics, bootstrap CIs, tables, insights (same as `python evaluate.py`)"),
    "export": ("ecg_keras.cli.export:main", "SavedModel / ONNX export and model releases (same as `python -m export`)"),
    "data": ("ecg_keras.datasets.__main__:main", "download, generate or summarise datasets (same as `python -m ecg_keras.datasets`)"),
    "predict": ("ecg_keras.predict:main", "probabilities for your own ECG records (WFDB, .mat, .npy, .csv), with plots"),
    "reproduce": ("ecg_keras.cli.reproduce:main", "train, evaluate and release the benchmark grid (Table II)"),
}

PROG = "ecg-keras"


def usage() -> str:
    from ecg_keras.version import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} [-h] [--version] COMMAND [ARGS ...]", "",
             f"ecg_keras {__version__}: the PTB-XL ECG benchmark in TensorFlow/Keras.", "", "commands:"]
    lines += [f"  {name:<{width}}  {description}" for name, (_, description) in COMMANDS.items()]
    lines += ["", f"`{PROG} COMMAND --help` lists a command's options."]
    return "\n".join(lines)


def resolve(command: str):
    """The ``main`` function registered for ``command`` (imported now)."""
    module, _, function = COMMANDS[command][0].partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from ecg_keras.version import __version__

        print(f"ecg_keras {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"{usage()}\n\n{PROG}: error: unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return resolve(argv[0])(argv[1:]) or 0

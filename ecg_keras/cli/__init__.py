"""``ecg-keras COMMAND ...`` (= ``python -m ecg_keras COMMAND ...``): one entry point for the tools.

Every argument parser of the package lives in this package, one module per command; each
command is the ``main(argv)`` of its module, imported only when that command runs, so
``ecg-keras --help`` is instant. A new command is one line in :data:`COMMANDS`. Every command
runs through :func:`command`: the exit codes of :mod:`ecg_keras.errors` for all of them.
"""
from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Callable, Sequence

from ecg_keras.errors import EXIT_FAILURE, EXIT_OK, exit_code


#: command -> ("module:function" taking argv and returning an exit code, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ecg_keras.cli.train:main", "train a benchmark model, finetune one or sweep training sizes"),
    "evaluate": ("ecg_keras.cli.evaluate:main", "metrics, bootstrap CIs, tables, insights"),
    "export": ("ecg_keras.cli.export:main", "SavedModel / ONNX / LiteRT export, PyTorch import and model releases"),
    "data": ("ecg_keras.cli.data:main", "download, generate or summarise datasets"),
    "predict": ("ecg_keras.cli.predict:main", "probabilities for your own ECG records (WFDB, DICOM, HL7 aECG, SCP, EDF, ...), with plots"),
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


def command(main: Callable) -> Callable:
    """``main(argv) -> int`` under the one exit-code convention (:func:`ecg_keras.errors.exit_code`).

    An expected error ends in one ``error: ...`` line on stderr (no traceback) and its exit code;
    argparse's own exits (usage 2, ``--help`` 0) pass through; anything else is a bug and raises.
    """
    if getattr(main, "is_command", False):
        return main

    @functools.wraps(main)
    def run(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv) or EXIT_OK
        except SystemExit as stop:
            if isinstance(stop.code, str):  # raise SystemExit("error: ...")
                print(stop.code, file=sys.stderr)
                return EXIT_FAILURE
            raise
        except Exception as error:
            code = exit_code(error)
            if code is None:
                raise
            print(f"error: {error}", file=sys.stderr)
            return code

    run.is_command = True
    return run


def resolve(name: str) -> Callable:
    """The ``main`` function registered for the command ``name`` (imported now), under :func:`command`."""
    module, _, function = COMMANDS[name][0].partition(":")
    return command(getattr(importlib.import_module(module), function))


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

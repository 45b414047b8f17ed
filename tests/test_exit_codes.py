"""docs/CLI.md's exit-code table, for every command: 2 for a usage error, 1 for a data error and for
a run failure, each with one ``error:`` line and no traceback.

The commands run in-process through ``ecg_keras.cli.resolve(name)(argv)`` (the console script's
path; a subprocess costs a TensorFlow import each); one subprocess checks ``python -m ecg_keras``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecg_keras import errors
from ecg_keras.cli import command, resolve

from conftest import SYNTHETIC_RECORDS

USAGE, FAILURE = errors.EXIT_USAGE, errors.EXIT_FAILURE


def run(capsys, name: str, *argv) -> tuple[int, str]:
    """Exit code and stderr of ``ecg-keras NAME ARGV`` (argparse's own usage errors raise SystemExit)."""
    try:
        code = resolve(name)([str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def one_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err


@pytest.fixture
def bad_run(tmp_path) -> Path:
    (tmp_path / "bad_run").mkdir()
    (tmp_path / "bad_run" / "config.json").write_text("{not json")
    return tmp_path / "bad_run"


# --------------------------------------------------------------------------- the convention itself
def test_every_argument_parser_lives_in_cli():
    """Library modules keep the functions; the modules of ``ecg_keras/cli`` parse and call them."""
    import ast

    import ecg_keras

    root = Path(ecg_keras.__file__).parent
    parsing = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        if "argparse" in names:
            parsing.add(path.relative_to(root).as_posix())
    outside = {p for p in parsing if not p.startswith("cli/")}
    assert not outside, outside
    assert {"cli/train.py", "cli/evaluate.py", "cli/export.py", "cli/data.py", "cli/predict.py", "cli/reproduce.py"} <= parsing


def test_every_package_error_has_the_one_base_and_keeps_its_builtin_base():
    from ecg_keras import files, net, paths, presets, predict, runs, zoo
    from ecg_keras.cli.insights import InsightsError
    from ecg_keras.datasets.base import DataError
    from ecg_keras.datasets.cache import CacheWriteError
    from ecg_keras.evaluation.runs import EvaluationError
    from ecg_keras.export.files import ExportError
    from ecg_keras.export.from_torch import ConversionError
    from ecg_keras.training.data import MissingDataset
    from ecg_keras.training.callbacks import NonFiniteError
    from ecg_keras.training.grid.plan import ReproduceError
    from ecg_keras.training.rundir import RunLockedError

    builtin = {paths.UnsafePathError: ValueError, InsightsError: ValueError, EvaluationError: ValueError,
               NonFiniteError: RuntimeError, MissingDataset: ValueError, RunLockedError: RuntimeError,
               ReproduceError: ValueError, presets.PresetError: ValueError, ConversionError: ValueError,
               ExportError: RuntimeError, zoo.ManifestError: ValueError, runs.RunError: ValueError,
               runs.RunFileMissing: FileNotFoundError, DataError: ValueError, CacheWriteError: Exception,
               files.UnsafeFileError: FileExistsError, predict.ModelError: Exception, net.ChecksumError: ValueError,
               net.DownloadError: OSError}
    for cls, base in builtin.items():
        assert issubclass(cls, errors.ECGKerasError) and issubclass(cls, base), cls
        assert errors.exit_code(cls("x")) == (USAGE if cls is ReproduceError else FAILURE), cls
    assert errors.exit_code(errors.UsageError("x")) == USAGE
    assert errors.exit_code(KeyError("x")) is None  # a bug: raised, with its traceback


def test_the_wrapper_maps_errors_and_lets_bugs_and_argparse_through(capsys):
    @command
    def main(argv):
        raise {"usage": errors.UsageError("--x must be > 0"), "data": errors.ECGKerasError("f.csv is damaged"),
               "disk": OSError(28, "No space left on device"), "bug": KeyError("k"),
               "argparse": SystemExit(2), "message": SystemExit("error: said")}[argv[0]]

    assert main(["usage"]) == USAGE and capsys.readouterr().err == "error: --x must be > 0\n"
    assert main(["data"]) == FAILURE and capsys.readouterr().err == "error: f.csv is damaged\n"
    assert main(["disk"]) == FAILURE and "No space left" in capsys.readouterr().err
    assert main(["message"]) == FAILURE and capsys.readouterr().err == "error: said\n"
    with pytest.raises(KeyError):
        main(["bug"])
    with pytest.raises(SystemExit) as stop:
        main(["argparse"])
    assert stop.value.code == USAGE
    assert command(main) is main  # applied once


# --------------------------------------------------------------------------- per command
def test_train(capsys, tmp_path, data_env):
    base = ["--dataset", "synthetic", "--task", "rhythm", "--arch", "fcn_wang", "--epochs", "1", "--quiet"]
    code, err = run(capsys, "train", *base, "--augment", "mixup", "--output", tmp_path / "a")
    assert code == USAGE
    one_error(err, "mixup")
    code, err = run(capsys, "train", *base, "--phase-epochs", "1,1", "--output", tmp_path / "a")
    assert code == USAGE
    one_error(err, "--phase-epochs needs --init-from")
    assert run(capsys, "train", *base, "--no-such-flag")[0] == USAGE
    code, err = run(capsys, "train", *base[2:], "--dataset", "ptbxl", "--data-dir", tmp_path, "--output", tmp_path / "b")
    assert code == FAILURE  # data error: no PTB-XL there
    one_error(err, str(tmp_path))
    (tmp_path / "file").write_text("x")
    code, err = run(capsys, "train", *base, "--output", tmp_path / "file")
    assert code == FAILURE  # run failure: the run directory is a file
    one_error(err, "file")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_evaluate(capsys, tmp_path, bad_run):
    code, err = run(capsys, "evaluate", "--y-true", tmp_path / "y.npy")
    assert code == USAGE and "--y-true and --y-pred go together" in err
    code, err = run(capsys, "evaluate", bad_run, "--out", tmp_path / "ev")
    assert code == FAILURE  # data error: a damaged run
    one_error(err, "bad_run")
    y = np.zeros((20, 2))
    y[::2, 0] = y[1::2, 1] = 1
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", np.full((20, 2), 0.5))
    (tmp_path / "out.json").mkdir()
    code, err = run(capsys, "evaluate", "--y-true", tmp_path / "y.npy", "--y-pred", tmp_path / "p.npy", "--bootstrap",
                    "5", "--json", tmp_path / "out.json")
    assert code == FAILURE  # run failure: the output is a directory
    one_error(err, "out.json")
    code, err = run(capsys, "evaluate", "hierarchy", bad_run, "--out", tmp_path / "h")
    assert code == FAILURE
    one_error(err, "bad_run")


def test_export(capsys, tmp_path, bad_run, trained_run):
    code, err = run(capsys, "export", "litert", trained_run, "--out", tmp_path / "m.tflite", "--quantize", "int8")
    assert code == USAGE
    one_error(err, "--calibration")
    code, err = run(capsys, "export", "from-torch", tmp_path / "c.npz", "--arch", "fcn_wang", "--task", "all",
                    "--out", tmp_path / "ft")
    assert code == USAGE
    one_error(err, "--standardizer")
    assert run(capsys, "export", "onnx", trained_run)[0] == USAGE  # --out missing: argparse
    code, err = run(capsys, "export", "onnx", bad_run, "--out", tmp_path / "m.onnx")
    assert code == FAILURE  # data error
    one_error(err, "bad_run")
    (tmp_path / "old.onnx").write_bytes(b"keep")
    code, err = run(capsys, "export", "onnx", trained_run, "--out", tmp_path / "old.onnx")
    assert code == FAILURE  # run failure: the output exists
    one_error(err, "old.onnx", "--overwrite")
    assert (tmp_path / "old.onnx").read_bytes() == b"keep" and not (tmp_path / "m.onnx").exists()


def test_data(capsys, tmp_path):
    code, err = run(capsys, "data", "download", "ptbxl", "--dest", tmp_path / "d", "--hash", "no-equals-sign")
    assert code == USAGE and "--hash expects FILE=SHA256" in err
    (tmp_path / "empty").mkdir()
    code, err = run(capsys, "data", "summary", tmp_path / "empty")
    assert code == FAILURE  # data error
    one_error(err, "empty")
    code, err = run(capsys, "data", "download", "ptbxl", "--dest", tmp_path / "d", "--base-url", "http://127.0.0.1:9")
    assert code == FAILURE  # run failure: the server cannot be reached
    one_error(err, "127.0.0.1:9")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_predict(capsys, tmp_path, trained_run):
    record = tmp_path / "r.npy"
    np.save(record, np.sin(np.arange(1000) / 9.0)[:, None] * np.linspace(0.5, 1.5, 12))
    code, err = run(capsys, "predict", trained_run, record, "--fs", "100", "--top", "0")
    assert code == USAGE
    one_error(err, "--top")
    code, err = run(capsys, "predict", tmp_path / "no-model", record, "--fs", "100")
    assert code == FAILURE  # data error: the model
    one_error(err, "no-model")
    bad = tmp_path / "nan.npy"
    np.save(bad, np.full((1000, 12), np.nan))
    code, err = run(capsys, "predict", trained_run, bad, "--fs", "100", "--no-progress")
    assert code == FAILURE  # data error: an invalid record
    one_error(err, "nan")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "r.png").write_bytes(b"old")
    code, err = run(capsys, "predict", trained_run, record, "--fs", "100", "--plot", tmp_path / "plots",
                    "--no-progress")
    assert code == FAILURE  # run failure: an output in the way
    one_error(err, "r.png", "--overwrite")
    assert (tmp_path / "plots" / "r.png").read_bytes() == b"old"


def test_reproduce(capsys, tmp_path, data_env):
    code, err = run(capsys, "reproduce", "--tasks", "nosuch", "--out", tmp_path / "a")
    assert code == USAGE
    one_error(err, "nosuch")
    code, err = run(capsys, "reproduce", "--data-dir", tmp_path / "missing", "--out", tmp_path / "b", "--tasks",
                    "rhythm", "--archs", "fcn_wang", "--epochs", "1", "--seeds", "0")
    assert code == FAILURE  # data error
    one_error(err, "missing")
    (tmp_path / "file").write_text("x")
    code, err = run(capsys, "reproduce", "--dataset", "synthetic", "--synthetic-records", SYNTHETIC_RECORDS, "--out",
                    tmp_path / "file", "--tasks", "rhythm", "--archs", "fcn_wang", "--epochs", "1", "--seeds", "0")
    assert code == FAILURE  # run failure: the output folder is a file
    one_error(err, "file")
    assert not (tmp_path / "a").exists()


def test_console_entry_point(tmp_path):
    """``python -m ecg_keras`` (= the ``ecg-keras`` console script) exits with the table's codes."""
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "ecg_keras", "data", "summary", str(tmp_path / "empty")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == FAILURE and proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
    unknown = subprocess.run([sys.executable, "-m", "ecg_keras", "nosuch"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == USAGE and "unknown command 'nosuch'" in unknown.stderr

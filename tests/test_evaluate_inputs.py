"""evaluate.py and the metrics refuse unusable input with a clear message (issues #16, #19):
no traceback, a non-zero exit, the file (and row) named."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecg_keras.evaluation import metrics as M
from ecg_keras.cli.evaluate import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random((40, 3)) < 0.4).astype(int)
    y[0], y[1] = 1, 0  # every class has positives and negatives
    p = np.clip(0.3 * y + 0.7 * rng.random(y.shape), 0, 1)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", p)
    return tmp_path, y, p


def evaluate(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_nan_predictions_name_the_file_and_row(arrays, capsys):
    tmp, y, p = arrays
    p[7, 2] = np.nan
    p[9, 0] = np.nan
    np.save(tmp / "nan.npy", p)
    code, err = evaluate(capsys, "--y-true", tmp / "y.npy", "--y-pred", tmp / "nan.npy", "--bootstrap", 5)
    assert code == 1
    assert f"--y-pred {tmp / 'nan.npy'}: non-finite prediction nan at row 7, column 2; 2 row(s) affected" in err
    np.save(tmp / "inf.npy", np.full_like(p, np.inf))
    code, err = evaluate(capsys, "--y-true", tmp / "y.npy", "--y-pred", tmp / "inf.npy", "--bootstrap", 5)
    assert code == 1 and "non-finite prediction inf at row 0, column 0; 40 row(s) affected" in err


@pytest.mark.parametrize("case, message", [
    ("empty_npy", r"--y-pred: .*p.npy is empty \(0 bytes\)"),
    ("npz", r"--y-pred: .*p.npy is an .npz archive; give a single .npy array"),
    ("string_labels", r"--y-true: .*y.npy holds <U1 values; expected numbers"),
    ("labels_not_01", r"--y-true .*y.npy: labels must be 0 or 1, found 2 at row 3, column 1"),
    ("outside_01", r"--y-pred .*p.npy: predictions must be probabilities in \[0, 1\], found 1.5 at row 4, column 0"),
    ("missing_ids", r"--bootstrap-ids: .*nope.npy does not exist"),
    ("empty_ids", r"--bootstrap-ids: .*ids.npy is empty \(0 bytes\)"),
    ("bootstrap_0", r"--bootstrap must be at least 1, got 0"),
])
def test_raw_mode_input_errors(arrays, capsys, case, message):
    import re

    tmp, y, p = arrays
    extra = ["--bootstrap", "5"]
    if case == "empty_npy":
        (tmp / "p.npy").write_bytes(b"")
    elif case == "npz":
        with open(tmp / "p.npy", "wb") as f:
            np.savez(f, p=p)
    elif case == "string_labels":
        np.save(tmp / "y.npy", np.where(y > 0, "y", "n"))
    elif case == "labels_not_01":
        y[3, 1] = 2
        np.save(tmp / "y.npy", y)
    elif case == "outside_01":
        p[4, 0] = 1.5
        np.save(tmp / "p.npy", p)
    elif case == "missing_ids":
        extra = ["--bootstrap-ids", tmp / "nope.npy"]
    elif case == "empty_ids":
        (tmp / "ids.npy").write_bytes(b"")
        extra = ["--bootstrap-ids", tmp / "ids.npy"]
    elif case == "bootstrap_0":
        extra = ["--bootstrap", "0"]
    if case == "bootstrap_0":
        with pytest.raises(SystemExit) as exc:  # argparse usage error: exit 2, no traceback
            main(["--y-true", str(tmp / "y.npy"), "--y-pred", str(tmp / "p.npy"), *map(str, extra)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
    else:
        code, err = evaluate(capsys, "--y-true", tmp / "y.npy", "--y-pred", tmp / "p.npy", *extra)
        assert code == 1
    assert re.search(message, err), err


def test_run_dir_with_all_nan_predictions_exits_nonzero_naming_the_file(tmp_path):
    """Subprocess: a diverged run (every prediction NaN) is not scored."""
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": "rhythm", "dataset": "synthetic"}))
    (run / "classes.json").write_text(json.dumps(["a", "b"]))
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    np.savez(run / "predictions" / "test.npz", ids=np.arange(4), y_true=y, y_pred=np.full_like(y, np.nan))
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), str(run), "--out", str(tmp_path / "ev"),
                           "--bootstrap", "5", "--no-plots"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    where = run / "predictions" / "test.npz"
    assert f"{where} (y_pred): non-finite prediction nan at row 0 (record id 0)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "ev" / "metrics.json").exists()


def test_run_dir_with_a_zero_byte_predictions_file(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": "x", "task": "rhythm", "dataset": "d"}))
    (run / "classes.json").write_text(json.dumps(["a"]))
    (run / "predictions" / "test.npz").write_bytes(b"")
    code, err = evaluate(capsys, run, "--out", tmp_path / "ev", "--no-plots")
    assert code == 1 and f"{run / 'predictions' / 'test.npz'}: not a readable predictions .npz" in err


@pytest.mark.parametrize("fn", [M.macro_auc, M.per_class_auc, M.fmax, M.fmax_curve, M.challenge_metrics,
                                M.find_optimal_thresholds, M.mae, M.r2, M.accuracy, M.auc])
def test_every_metric_refuses_non_finite_input(fn):
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [np.nan, 0.7], [0.1, 0.3]])
    with pytest.raises(ValueError, match=r"non-finite value\(s\) \(first nan at index \[2, 0\]\)"):
        fn(y, p)
    with pytest.raises(ValueError, match=r"y_true contains 1 non-finite"):
        fn(np.where(p > 2, 0, y).astype(float) + np.array([[0, 0], [0, 0], [0, 0], [0, np.inf]]), np.nan_to_num(p))
    with pytest.raises(ValueError, match="non-finite"):
        M.apply_thresholds(p, 0.5)

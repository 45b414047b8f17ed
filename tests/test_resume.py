"""Kill-and-resume: a run SIGKILLed after an epoch's checkpoint and resumed with --resume ends
with the same predictions as an uninterrupted run (real subprocesses, real SIGKILL)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 4  # own runs, not conftest's trained_run: a kill needs epochs to come after the first checkpoint


def _cmd(data_dir, output, *extra):
    return [sys.executable, str(REPO / "train.py"), "--task", "rhythm", "--dataset", "synthetic", "--data-dir",
            str(data_dir), "--arch", "fcn_wang", "--epochs", str(EPOCHS), "--batch-size", "16", "--seed", "3",
            "--output", str(output), "--quiet", *extra]


def _env(tmp):
    return {**os.environ, "PYTHONPATH": str(REPO), "ECG_KERAS_DATA": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": ""}


def _latest_epoch(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.timeout(600)
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, synthetic_data, monkeypatch):
    env = _env(tmp_path)
    ref, run = tmp_path / "ref", tmp_path / "killed"
    # the uninterrupted reference runs in this process (saves a TensorFlow start-up)
    from ecg_keras.training import TrainConfig, train

    monkeypatch.setenv("ECG_KERAS_DATA", str(tmp_path))
    train(TrainConfig(task="rhythm", dataset="synthetic", data_dir=str(synthetic_data), arch="fcn_wang",
                      epochs=EPOCHS, batch_size=16, seed=3, output=str(ref), verbose=0))
    assert (ref / "COMPLETE").exists()

    proc = subprocess.Popen(_cmd(synthetic_data, run), env=env)
    deadline = time.time() + 400
    while _latest_epoch(run) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _latest_epoch(run)
    assert proc.returncode == -signal.SIGKILL
    assert 1 <= killed_at < EPOCHS, f"the run was not killed mid-training (checkpoint epoch {killed_at})"
    # a killed run never looks complete
    assert not (run / "COMPLETE").exists()
    assert not (run / "metrics.json").exists() and not (run / "model.keras").exists()
    subprocess.run(_cmd(synthetic_data, run, "--resume"), env=env, check=True, timeout=500)
    assert (run / "COMPLETE").exists()
    for part in ("val", "test"):
        a, b = np.load(ref / "predictions" / f"{part}.npz"), np.load(run / "predictions" / f"{part}.npz")
        np.testing.assert_array_equal(a["ids"], b["ids"])
        np.testing.assert_allclose(b["y_pred"], a["y_pred"], atol=1e-6, rtol=0)
    m_ref, m_run = json.loads((ref / "metrics.json").read_text()), json.loads((run / "metrics.json").read_text())
    assert m_run["test"]["macro_auc"] == pytest.approx(m_ref["test"]["macro_auc"], abs=1e-6)
    h_ref = np.genfromtxt(ref / "history.csv", delimiter=",", names=True)
    h_run = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(h_run["epoch"], np.arange(1, EPOCHS + 1))
    np.testing.assert_allclose(h_run["loss"], h_ref["loss"], rtol=1e-5)
    np.testing.assert_allclose(h_run["lr"], h_ref["lr"], rtol=1e-12)

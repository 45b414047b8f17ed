"""``keras.saving.load_model`` on a saved ecg_keras model needs nothing but ``import ecg_keras`` (issue #19).

Keras resolves a custom class ("ecg_keras>FusedBatchNormalization") only from its registry; it
imports the ``module`` recorded in the file for Keras's own packages only. ``import ecg_keras``
registers our classes as soon as Keras is imported (before or after ecg_keras), without importing
Keras itself, so ``import ecg_keras`` stays cheap for numpy-only tools such as evaluate.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecg_keras import models

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model = models.get("fcn_wang", num_classes=2)
    assert any(type(layer).__name__ == "FusedBatchNormalization" for layer in model.layers)
    model.save(path)
    return path


def run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)


def test_import_ecg_keras_alone_is_enough_to_load_a_saved_model(saved):
    code = (f"import ecg_keras, keras\nm = keras.saving.load_model({str(saved)!r}, compile=False)\n"
            "print(sorted({type(l).__name__ for l in m.layers if 'Normalization' in type(l).__name__}))\n"
            f"import keras as k2\nprint(k2.saving.load_model({str(saved)!r}).name)")  # compile=True too
    proc = run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["['FusedBatchNormalization']", "fcn_wang"]
    # Keras imported first, then ecg_keras
    proc = run(f"import keras, ecg_keras\nkeras.saving.load_model({str(saved)!r}, compile=False)")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_import_ecg_keras_does_not_import_keras():
    proc = run("import sys, ecg_keras, ecg_keras.cli.evaluate\nprint('keras' in sys.modules)")
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr

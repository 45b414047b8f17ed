"""``ecg-keras train --window SECONDS``: a run trained on 10-s windows (one per synthetic record)
records its window, and predict, evaluate, release, finetuning and --resume all use it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import TRAINED_RUN_CONFIG
from ptbxl_fixture import record_signal, write_record

from ecg_keras.artefact import read_manifest
from ecg_keras.cli import evaluate as evaluate_cli
from ecg_keras.cli import export as export_cli
from ecg_keras.cli import predict as predict_cli
from ecg_keras.cli import train as train_cli
from ecg_keras.preprocessing import WINDOW_SECONDS, window_length
from ecg_keras.runs import resolve
from ecg_keras.standardize import Standardizer
from ecg_keras.training import TrainConfig, finetune

SECONDS, RATE = 10.0, 100
WINDOW = 1000  # samples: a whole synthetic record


@pytest.fixture(scope="module")
def long_run(data_env, tmp_path_factory) -> Path:
    """fcn_wang on the synthetic rhythm task, 1 epoch on 10-s windows, through the command line."""
    out = tmp_path_factory.mktemp("window") / "run"
    assert train_cli.main(["--task", "rhythm", "--dataset", "synthetic", "--arch", "fcn_wang", "--epochs", "1",
                           "--batch-size", "16", "--window", "10", "--output", str(out), "--quiet"]) == 0
    return out


def test_window_length_and_bad_windows_are_usage_errors(capsys):
    assert window_length(100) == 250 and window_length(500, 10) == 5000 and window_length(100, 2.55) == 255
    assert TrainConfig().window_seconds == WINDOW_SECONDS == 2.5
    assert TrainConfig(window_seconds=10, sampling_rate=500).window == 5000
    for bad in ("0", "-5", "2.555", "nan", "inf", "0.001"):
        assert train_cli.main(["--window", bad, "--output", "unused"]) == 2, bad
        assert "error: --window: a window of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # not a number: argparse's usage error
        train_cli.main(["--window", "ten"])
    assert stop.value.code == 2


def test_the_run_trains_and_records_its_window(long_run):
    config = json.loads((long_run / "config.json").read_text())
    assert config["window_seconds"] == SECONDS and config["window"] == WINDOW
    run = resolve(long_run)
    assert run.window == WINDOW and run.model.input_shape == (None, WINDOW, 12)
    assert run.preprocessing["window"] == WINDOW and run.preprocessing["stride"] == WINDOW // 2
    assert TrainConfig.from_dict(config).window == WINDOW
    # a run directory written before the option (no window fields) reads back as the benchmark's 2.5 s
    old = {k: v for k, v in config.items() if k not in ("window", "window_seconds")}
    (long_run.parent / "old").mkdir(exist_ok=True)
    (long_run.parent / "old" / "config.json").write_text(json.dumps(old))
    assert resolve(long_run.parent / "old").window == 250 and TrainConfig.from_dict(old).window == 250


def test_predict_and_evaluate_use_one_window_per_10s_record(long_run, tmp_path, capsys):
    run = resolve(long_run)
    model, std = run.model, Standardizer.from_dict(run.preprocessing["standardizer"])
    ten, twenty = record_signal(1, RATE)[:WINDOW], record_signal(2, RATE, duration=20)
    np.save(tmp_path / "ten.npy", ten)
    np.save(tmp_path / "twenty.npy", twenty)
    out = tmp_path / "p.csv"
    code = predict_cli.main([str(long_run), str(tmp_path / "ten.npy"), str(tmp_path / "twenty.npy"),
                             "--fs", str(RATE), "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(out)[list(run.classes)].to_numpy()

    def probs(windows):
        return keras.ops.convert_to_numpy(keras.ops.sigmoid(model(std.transform(np.stack(windows)))))

    # the 10-s record is one window; the 20-s one three (stride half a window), max-aggregated
    np.testing.assert_allclose(rows[0], probs([ten])[0], atol=1e-5)
    np.testing.assert_allclose(rows[1], probs([twenty[s:s + WINDOW] for s in (0, 500, 1000)]).max(0), atol=1e-5)
    # the run's own test predictions: one whole-record window per 10-s synthetic record
    stored = np.load(long_run / "predictions" / "test.npz")
    from ecg_keras.datasets import load_ptbxl, make_task, split

    td = split(make_task(load_ptbxl(run.config["data_path"], RATE), "rhythm")).test
    np.testing.assert_allclose(stored["y_pred"], probs([np.asarray(x)[:WINDOW] for x in td.signals]), atol=1e-5)
    # on a real-format labelled folder (LUDB layout, 500 Hz): resampled, predicted, scored
    folder = tmp_path / "ludb-like"
    for i in range(1, 5):
        write_record(folder / "data" / str(i), record_signal(i, 500), 500)
    pd.DataFrame({"ID": range(1, 5), "Sex": "F", "Age": 50, "Rhythms": ["Sinus rhythm", "Sinus bradycardia",
                  "Sinus rhythm", "Atrial fibrillation"]}).to_csv(folder / "ludb.csv", index=False)
    assert evaluate_cli.main([str(long_run), "--dataset", str(folder), "--out", str(tmp_path / "ev"),
                              "--bootstrap", "20"]) == 0
    assert json.loads((tmp_path / "ev" / "validation_ludb-like.json").read_text())["classes"]["SR"]["n_positive"] == 2


def test_release_manifest_and_card_carry_the_window(long_run, tmp_path):
    models = tmp_path / "models"
    assert export_cli.main(["release", str(long_run), "--name", "rhythm-10s", "--models-dir", str(models)]) == 0
    (entry,) = read_manifest(models)
    assert entry["window"] == WINDOW and entry["sampling_rate"] == RATE
    assert f"window {WINDOW} samples (10 s)" in (models / "rhythm-10s.md").read_text()
    assert resolve(models).window == WINDOW


def test_resume_refuses_another_window(long_run, trained_run, tmp_path, capsys):
    args = ["--task", "rhythm", "--dataset", "synthetic", "--arch", "fcn_wang", "--quiet", "--resume"]
    assert train_cli.main([*args, "--output", str(long_run), "--window", "5"]) == 1
    assert "--window 5.0 (the run has 10.0)" in capsys.readouterr().err
    assert train_cli.main([*args, "--output", str(long_run), "--window", "10"]) == 0  # complete: nothing to do
    # a run that predates the option was trained on 2.5 s
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    config = json.loads((old / "config.json").read_text())
    del config["window_seconds"]
    (old / "config.json").write_text(json.dumps(config))
    assert train_cli.main([*args, "--output", str(old), "--window", "10"]) == 1
    assert "--window 10.0 (the run has 2.5)" in capsys.readouterr().err
    assert train_cli.main([*args, "--output", str(old), "--window", "2.5"]) == 0


def test_finetuning_keeps_the_source_window(long_run, data_env, tmp_path):
    base = {k: v for k, v in TRAINED_RUN_CONFIG.items() if k not in ("epochs", "arch")}
    with pytest.raises(ValueError, match=r"10-s windows \(1000 samples\); finetune with --window 10 \(got 2.5\)"):
        finetune(TrainConfig(**base, output=str(tmp_path / "ft-bad")), long_run, phase_epochs=(1, 0))
    assert not (tmp_path / "ft-bad").exists()
    out = finetune(TrainConfig(**base, window_seconds=SECONDS, output=str(tmp_path / "ft")), long_run,
                   phase_epochs=(1, 0))
    assert resolve(out).window == WINDOW and resolve(out).model.input_shape == (None, WINDOW, 12)


def test_predict_notes_a_record_shorter_than_the_window(long_run, tmp_path, capsys):
    np.save(tmp_path / "six.npy", record_signal(1, RATE)[:600])
    np.save(tmp_path / "ten.npy", record_signal(1, RATE)[:WINDOW])
    code = predict_cli.main([str(long_run), str(tmp_path / "six.npy"), str(tmp_path / "ten.npy"), "--fs", str(RATE),
                             "--leads", "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6", "--out", str(tmp_path / "p.csv"),
                             "--no-progress"])
    out = capsys.readouterr()
    assert code == 0, out.err
    text = out.out + out.err
    assert "six.npy: 6 s, shorter than the model's 10-s window: zero-padded to it" in text
    assert "ten.npy: 10 s, shorter" not in text and pd.read_csv(tmp_path / "p.csv")["valid"].all()
    import ecg_keras  # the Python API keeps the same notes per record

    frame = ecg_keras.load(str(long_run)).predict([record_signal(1, RATE)[:600], record_signal(1, RATE)[:WINDOW]],
                                                  fs=RATE, names=["six", "ten"])
    assert frame.attrs["notes"] == {"six": ["six: 6 s, shorter than the model's 10-s window: zero-padded to it"]}

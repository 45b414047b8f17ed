"""train(config): the run directory, reproducibility, age/sex/quality tasks, CLI, experiments."""
import json
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import TRAINED_RUN_CONFIG

from ecg_keras.datasets.synthetic import RHYTHM_MIX
from ecg_keras.standardize import Standardizer
from ecg_keras.training import TrainConfig, train
from ecg_keras.cli import train as cli
from ecg_keras.training.rundir import RunDir

BASE = TRAINED_RUN_CONFIG  # the session's trained_run (conftest): rhythm, fcn_wang, 2 epochs, seed 0


def test_run_directory_holds_everything_needed_later(trained_run, data_env):
    run = RunDir(trained_run)
    assert run.is_complete()
    config = json.loads(run.config.read_text())
    for key in ("arch", "task", "dataset", "seed", "sampling_rate", "epochs", "batch_size", "lr", "wd"):
        assert key in config
    assert config["lr"] == 1e-2 and config["synthetic"] is True and config["data_path"] == str(data_env)
    assert {"tensorflow", "keras", "python"} <= set(config["versions"])
    folds = pd.read_csv(data_env / "ptbxl_database.csv")["strat_fold"]
    assert config["data_fingerprint"]["train"]["n_records"] == int((folds <= 8).sum())  # folds 1-8
    classes = json.loads(run.classes.read_text())
    assert classes == sorted(RHYTHM_MIX)  # the synthetic generator's rhythms
    std = Standardizer.load(run.standardizer)
    hist = pd.read_csv(run.history_csv)
    assert list(hist.columns[:4]) == ["epoch", "loss", "val_loss", "val_macro_auc"]
    assert {"lr", "beta_1", "time_s"} <= set(hist.columns) and hist["epoch"].tolist() == [1, 2]
    assert run.history_png.stat().st_size > 1000
    metrics = json.loads(run.metrics.read_text())
    assert 0.0 <= metrics["val"]["macro_auc"] <= 1.0 and 0.0 <= metrics["test"]["macro_auc"] <= 1.0
    assert (run.checkpoints / "latest.json").exists()
    test = np.load(run.predictions / "test.npz")
    n_test = int((folds == 10).sum())  # the generator's fold 10
    assert test["y_pred"].shape == test["y_true"].shape == (n_test, len(RHYTHM_MIX)) and len(test["ids"]) == n_test
    assert ((test["y_pred"] >= 0) & (test["y_pred"] <= 1)).all()
    # the saved model + standardiser reproduce the stored predictions (logits -> sigmoid -> max)
    from ecg_keras.datasets import load_ptbxl, make_task, split
    from ecg_keras.windows import predict_records

    model = keras.models.load_model(run.model)
    td = split(make_task(load_ptbxl(config["data_path"], 100), "rhythm")).test
    np.testing.assert_array_equal(td.ids, test["ids"])
    again = predict_records(model, td.signals, standardizer=std, how="max")
    np.testing.assert_allclose(again, test["y_pred"], atol=1e-6)


def test_same_seed_gives_same_predictions(trained_run, data_env, tmp_path):
    """A second run of trained_run's config, in this process, predicts the same."""
    second = train(TrainConfig(**BASE, output=str(tmp_path / "again")))
    for part in ("val", "test"):
        a, b = np.load(trained_run / "predictions" / f"{part}.npz"), np.load(second / "predictions" / f"{part}.npz")
        np.testing.assert_allclose(a["y_pred"], b["y_pred"], atol=1e-6, rtol=0)


def test_existing_run_is_not_overwritten_and_complete_run_resumes_as_noop(trained_run, data_env, tmp_path):
    rhythm_run = Path(shutil.copytree(trained_run, tmp_path / "rhythm"))
    with pytest.raises(FileExistsError, match="--resume"):
        train(TrainConfig(**BASE, output=str(rhythm_run)))
    before = (rhythm_run / "COMPLETE").read_text()
    assert train(TrainConfig(**BASE, output=str(rhythm_run), resume=True)) == rhythm_run
    assert (rhythm_run / "COMPLETE").read_text() == before


@pytest.mark.parametrize("task, kind, how, keys", [
    ("age", "regression", "mean", {"mae", "r2"}),
    ("sex", "binary", "mean", {"auc", "accuracy"}),
    ("quality", "binary", "max", {"auc", "accuracy"}),
])
def test_age_sex_quality_tasks(data_env, tmp_path, task, kind, how, keys):
    run = train(TrainConfig(**{**BASE, "task": task, "epochs": 1}, output=str(tmp_path / task)))
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == kind and config["aggregation"] == how
    metrics = json.loads((run / "metrics.json").read_text())
    assert keys <= set(metrics["test"])
    test = np.load(run / "predictions" / "test.npz")
    assert test["y_pred"].shape == (len(test["ids"]), 1)
    if task == "age":  # raw years: the output starts at the training mean age
        assert 20 < float(test["y_pred"].mean()) < 100
        assert metrics["test"]["mae"] < 40
    else:
        assert ((test["y_pred"] >= 0) & (test["y_pred"] <= 1)).all()


def test_missing_ptbxl_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECG_KERAS_DATA", str(tmp_path / "empty"))
    code = cli.main(["--task", "rhythm", "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert "PTB-XL was not found" in err and "ecg-keras data download ptbxl" in err
    assert "--dataset synthetic" in err and "SYNTHETIC" in err


def test_cli_arguments_map_to_config():
    cfg, given = cli.config_from_args(cli.parser().parse_args(
        ["--task", "age", "--arch", "lstm", "--epochs", "3", "--no-jit", "--distribute", "mirrored"]))
    assert (cfg.task, cfg.arch, cfg.epochs, cfg.jit, cfg.distribute) == ("age", "lstm", 3, False, "mirrored")
    resolved = cfg.resolved()
    assert resolved.lr == 1e-3 and resolved.clipnorm == 0.25  # RNN defaults
    assert TrainConfig(arch="xresnet1d101").resolved().lr == 1e-2
    assert {"task", "arch", "epochs", "jit", "distribute"} == given
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--task", "nonsense"])


def test_experiment_writes_comparison_table(data_env, tmp_path):
    from ecg_keras.training.experiment import run_experiment

    base = TrainConfig(**{**BASE, "epochs": 1}, output=str(tmp_path))
    md = run_experiment("cmp", base, ["fcn_wang", "resnet1d_wang"], log=lambda *a: None)
    table = pd.read_csv(tmp_path / "cmp" / "results.csv")
    assert table["arch"].tolist() == ["fcn_wang", "resnet1d_wang"]
    assert {"params", "val_macro_auc", "test_macro_auc", "train_s"} <= set(table.columns)
    # docs/PROTOCOL.md's 5-class counts, plus 128 weights + 1 bias of the head per further synthetic rhythm
    assert table["params"].tolist() == [309765 + 129 * (len(RHYTHM_MIX) - 5), 473349 + 129 * (len(RHYTHM_MIX) - 5)]
    assert "| arch |" in md and (tmp_path / "cmp" / "results.md").exists()
    assert all(RunDir(tmp_path / "cmp" / a).is_complete() for a in table["arch"])


def test_train_step_throughput_times_steps_only():
    from ecg_keras.training.throughput import train_step_throughput

    t0 = time.perf_counter()
    r = train_step_throughput("fcn_wang", jit=False, batch_size=4, steps=3, warmup=1)
    wall = time.perf_counter() - t0
    assert r["steps"] == 3 and r["params"] == 318_279
    # the timed seconds exclude model building, tracing (the warm-up fit) and fit()'s set-up/tear-down
    assert 0 < r["seconds"] < 0.5 * wall


def test_jit_with_op_determinism_is_refused():
    """Keras compiles without XLA under TF op determinism, so --jit alone would be silently ignored."""
    with pytest.raises(ValueError, match="--jit needs --no-deterministic"):
        TrainConfig(task="rhythm", arch="fcn_wang", jit=True)
    assert TrainConfig(task="rhythm", arch="fcn_wang", jit=True, deterministic=False).resolved().jit is True

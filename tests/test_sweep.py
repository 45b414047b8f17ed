"""Training-size sweep: nested stratified subsets, orchestration, paired bootstrap scoring, outputs."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_keras.datasets.base import Splits, TaskData
from ecg_keras.training import TrainConfig
from ecg_keras.training import sweeps as sw
from ecg_keras.training.rundir import RunDir


def _task(n, folds, seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    y = np.zeros((n, n_classes), np.float32)
    y[np.arange(n), rng.integers(0, n_classes, n)] = 1
    y[: n_classes, :] = np.eye(n_classes)
    signals = rng.normal(size=(n, 300, 12)).astype(np.float32)
    return TaskData("rhythm", [f"c{i}" for i in range(n_classes)], signals, y, np.arange(n), np.asarray(folds),
                    100, pd.DataFrame(index=np.arange(n)), "multilabel")


def test_train_subsets_are_nested_stratified_and_sized():
    folds = np.repeat(np.arange(1, 9), 16)  # 8 training folds of 16 records
    train = _task(len(folds), folds)
    subsets = {s: set(sw.train_subset(train, s).ids.tolist()) for s in sw.TRAIN_SIZES}
    assert [len(subsets[s]) for s in sw.TRAIN_SIZES] == [2, 4, 8, 16, 32, 64, 128]
    for small, big in zip(sw.TRAIN_SIZES, sw.TRAIN_SIZES[1:]):
        assert subsets[small] <= subsets[big]
    assert subsets[1] == set(np.flatnonzero(folds == 1).tolist())
    assert subsets == {s: set(sw.train_subset(train, s).ids.tolist()) for s in sw.TRAIN_SIZES}  # deterministic
    with pytest.raises(ValueError):
        sw.train_subset(train, 0.3)
    with pytest.raises(ValueError):
        sw.train_subset(train, 9)
    assert sw.size_label(0.125) == "1-8folds" and sw.size_label(4) == "4folds"


def _fake_run(run_dir: Path, splits: Splits, quality: float, seed: int):
    """What train()/finetune() leave behind, with predictions of a given quality (0 = noise, 1 = perfect)."""
    rng = np.random.default_rng(seed)
    run = RunDir(run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.config.write_text(json.dumps({"task": "rhythm", "arch": "fcn_wang", "seed": seed}))
    run.classes.write_text(json.dumps(splits.test.classes))
    run.predictions.mkdir(exist_ok=True)
    for part in ("val", "test"):
        td = getattr(splits, part)
        pred = quality * td.y + (1 - quality) * rng.random(td.y.shape)
        np.savez(run.predictions / f"{part}.npz", ids=td.ids, y_true=td.y, y_pred=pred.astype(np.float32))
    run.mark_complete()


def test_sweep_orchestrates_runs_and_writes_table_and_figure(tmp_path, monkeypatch):
    folds = np.concatenate([np.repeat(np.arange(1, 9), 8), np.full(12, 9), np.full(12, 10)])
    td = _task(len(folds), folds)
    splits = Splits(td.subset(folds <= 8), td.subset(folds == 9), td.subset(folds == 10))
    calls = []

    def fake_finetune(cfg, init_from, phase_epochs, *, splits, **kw):
        calls.append(("finetuned", len(splits.train), cfg.seed, tuple(phase_epochs), init_from))
        _fake_run(Path(cfg.output), splits, 0.3 + 0.05 * np.log2(len(splits.train)), cfg.seed)
        return Path(cfg.output)

    def fake_train(cfg, splits, **kw):
        calls.append(("scratch", len(splits.train), cfg.seed, cfg.epochs, None))
        _fake_run(Path(cfg.output), splits, 0.02 * np.log2(len(splits.train)), cfg.seed + 100)
        return Path(cfg.output)

    monkeypatch.setattr(sw, "finetune", fake_finetune)
    monkeypatch.setattr("ecg_keras.training.loop.train", fake_train)
    cfg = TrainConfig(task="rhythm", dataset="fake", arch="fcn_wang", epochs=4, verbose=0)
    out = sw.sweep(cfg, "SOURCE", sizes=(1 / 2, 1, 8), phase_epochs=(2, 2), seeds=[0, 1], splits=splits,
                   output=tmp_path / "sweep", n_bootstrap=50, log=lambda *a: None)
    assert len(calls) == 3 * 2 * 2
    assert sorted({c[1] for c in calls}) == [4, 8, 64]
    assert {c[3] for c in calls if c[0] == "finetuned"} == {(2, 2)} and {c[3] for c in calls if c[0] == "scratch"} == {4}
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 6 and set(table["mode"]) == {"finetuned", "scratch"} and (table["seeds"] == 2).all()
    assert ((table["lower"] <= table["macro_auc"] + 1e-9) & (table["macro_auc"] <= table["upper"] + 1e-9)).all()
    ft = table[table["mode"] == "finetuned"].set_index("n_train")
    assert (ft["diff"] > 0).all() and ft["macro_auc"].is_monotonic_increasing
    md = (out / "results.md").read_text()
    assert "finetuned - scratch" in md and "| 1/2 | 4 |" in md
    assert (out / "sweep.png").stat().st_size > 5000 and np.load(out / "bootstrap_indices.npy").shape == (50, 12)
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["eval_parts"] == ["test"] and meta["n_eval_records"] == 12 and len(meta["runs"]) == 12
    # complete runs are reused: a second call trains nothing; pooled val+test scoring re-scores
    calls.clear()
    out2 = sw.sweep(cfg, "SOURCE", sizes=(1 / 2, 1, 8), phase_epochs=(2, 2), seeds=[0, 1], splits=splits,
                    output=tmp_path / "sweep", eval_parts=("val", "test"), n_bootstrap=20, log=lambda *a: None)
    assert calls == [] and json.loads((out2 / "sweep.json").read_text())["n_eval_records"] == 24


def test_scratch_only_sweep_without_init_from(tmp_path, monkeypatch):
    folds = np.concatenate([np.repeat(np.arange(1, 9), 4), np.full(8, 9), np.full(8, 10)])
    td = _task(len(folds), folds, seed=1)
    splits = Splits(td.subset(folds <= 8), td.subset(folds == 9), td.subset(folds == 10))
    monkeypatch.setattr("ecg_keras.training.loop.train",
                        lambda cfg, splits, **kw: _fake_run(Path(cfg.output), splits, 0.5, cfg.seed))
    out = sw.sweep(TrainConfig(task="rhythm", dataset="fake", arch="fcn_wang", verbose=0), None, sizes=(1, 2),
                   splits=splits, output=tmp_path / "s", n_bootstrap=10, log=lambda *a: None)
    table = pd.read_csv(out / "results.csv")
    assert set(table["mode"]) == {"scratch"} and "diff" not in table.columns


def test_ludb_rhythm_task_merges_rare_classes(shared_data):
    from ecg_keras.training.transfer import ludb_rhythm_task

    td = ludb_rhythm_task(shared_data / "ludb-1.0.1", sampling_rate=100)
    assert td.classes == ["Atrial fibrillation/flutter", "Sinus arrhythmia", "Sinus bradycardia", "Sinus rhythm"]
    assert len(td) == 196 and np.asarray(td.signals).shape[1:] == (1000, 12)
    assert td.y.sum(0).tolist() == [18, 10, 25, 143]
    assert sorted(set(td.folds.tolist())) == list(range(1, 11))
    test = td.y[td.folds == 10]
    assert (test.sum(0) >= 1).all()  # every class has a positive in the test fold

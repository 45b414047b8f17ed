"""finetune(): new head, head-only phase 1 (backbone unchanged), phase 2 with discriminative lrs."""
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from ecg_keras import models
from ecg_keras.training import TrainConfig
from ecg_keras.cli.train import add_transfer_arguments, run_from_args
from ecg_keras.training.transfer import discriminative_lrs, finetune
from ecg_keras.training.schedule import DiscriminativeAdamW, OneCycleAdamW
from ecg_keras.training.rundir import RunDir

BASE = dict(dataset="synthetic", arch="fcn_wang", batch_size=16, seed=0, verbose=0)


# every test finetunes on the session's synthetic data (conftest.data_env); the source model is the
# session's trained_run (rhythm, fcn_wang), which is only read
pytestmark = pytest.mark.usefixtures("data_env")


def _by_layer(model):
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


@pytest.fixture(scope="module")
def finetuned(trained_run, data_env, tmp_path_factory):
    """superdiagnostic, 1 + 1 epochs, under --distribute mirrored (one local CPU: one replica; the
    other finetunings of this module run without a strategy)."""
    snaps = {}

    def on_phase_end(phase, model):
        snaps[phase] = _by_layer(model)
        opt = model.optimizer
        snaps[f"mult{phase}"] = {v.path: m for v, m in zip(model.trainable_variables, opt.variable_multipliers)}
        snaps[f"groups{phase}"] = [[layer.name for layer in g] for g in models.layer_groups(model, "fcn_wang")]

    out = tmp_path_factory.mktemp("ft") / "superdiag"
    run = finetune(TrainConfig(task="superdiagnostic", output=str(out), distribute="mirrored",
                               **{**BASE, "arch": "xresnet1d101"}), trained_run, phase_epochs=(1, 1),
                   on_phase_end=on_phase_end)
    return run, snaps


def test_discriminative_lrs_follow_fastai_even_mults():
    assert np.allclose(discriminative_lrs(1e-2, 3), [1e-5, 1e-4, 1e-3])
    assert np.allclose(discriminative_lrs(1e-2, 2), [1e-5, 1e-3])
    assert np.allclose(discriminative_lrs(1e-2, 1), [1e-3])


def test_optimizer_scales_update_and_weight_decay_per_variable():
    a, b = keras.Variable(np.ones(4, np.float32)), keras.Variable(np.ones(4, np.float32))
    opt = DiscriminativeAdamW(learning_rate=0.1, multipliers={id(b): 0.01}, weight_decay=0.0)
    opt.build([a, b])
    g = np.full(4, 0.3, np.float32)
    opt.apply([g, g], [a, b])
    da, db = 1 - np.array(a), 1 - np.array(b)
    assert np.allclose(da, 0.1, rtol=1e-4) and np.allclose(db, 0.001, rtol=1e-4)
    # multiplier 1 = keras AdamW exactly (decoupled weight decay scaled by the lr)
    c, d = keras.Variable(np.ones(4, np.float32)), keras.Variable(np.ones(4, np.float32))
    mine = DiscriminativeAdamW(learning_rate=0.1, weight_decay=0.05)
    assert isinstance(mine, OneCycleAdamW)
    ref = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.05)
    mine.build([c]), ref.build([d])
    for _ in range(3):
        mine.apply([g], [c]), ref.apply([g], [d])
    assert np.allclose(np.array(c), np.array(d), atol=1e-6)


def test_phase1_trains_only_the_head_and_phase2_everything_with_smaller_lrs(finetuned, trained_run):
    run, snaps = finetuned
    src = _by_layer(keras.saving.load_model(Path(trained_run) / "model.keras", compile=False))
    groups = snaps["groups1"]
    backbone = [n for g in groups[:-1] for n in g if n in src]
    convs = [n for n in backbone if "conv" in n]
    assert convs, backbone
    # phase 1: every non-BatchNorm backbone weight is exactly the source's (BN trains, as fastai train_bn)
    for name in backbone:
        if "_bn" in name:
            continue
        for w0, w1 in zip(src[name], snaps[1][name]):
            np.testing.assert_array_equal(w0, w1, err_msg=name)
    assert not np.allclose(src["head_dense1"][0], snaps[1]["head_dense1"][0])  # the head trained
    assert set(snaps["mult1"].values()) == {1.0}
    # phase 2: the backbone trains too, group g at lr/1000 ... head lr/10 (multipliers relative to the head)
    mult = snaps["mult2"]
    group_of = {name: gi for gi, g in enumerate(groups) for name in g}
    seen = set()
    for path, m in mult.items():
        gi = group_of[path.split("/")[-2]]
        assert m == pytest.approx([0.01, 0.1, 1.0][gi]), (path, m)
        seen.add(gi)
    assert seen == {0, 1, 2}
    changed = {n: np.mean(np.abs(snaps[2][n][0] - snaps[1][n][0])) for n in convs + ["head_dense1"]}
    assert all(v > 0 for v in changed.values()), changed
    assert changed["block1_conv"] < 0.1 * changed["head_dense1"], changed
    final = _by_layer(keras.saving.load_model(Path(run) / "model.keras", compile=False))  # = the trained model
    assert final.keys() == snaps[2].keys()
    for name, ws in final.items():
        for w0, w1 in zip(ws, snaps[2][name]):
            np.testing.assert_array_equal(w0, w1, err_msg=name)


def test_run_directory_records_the_transfer(finetuned, trained_run):
    run, _ = finetuned
    r = RunDir(run)
    assert r.is_complete()
    cfg = json.loads(r.config.read_text())
    assert cfg["init_from"] == str(trained_run) and cfg["arch"] == "fcn_wang" and cfg["epochs"] == 2
    assert cfg["finetune"]["phase_epochs"] == [1, 1] and cfg["finetune"]["standardizer"] == "source"
    assert np.allclose(cfg["finetune"]["lr_groups_phase2"], [1e-5, 1e-4, 1e-3])
    assert json.loads(r.standardizer.read_text()) == json.loads((Path(trained_run) / "standardizer.json").read_text())
    assert json.loads(r.classes.read_text()) == cfg["classes"] and "NORM" in cfg["classes"]
    hist = pd.read_csv(r.history_csv)
    assert hist["epoch"].tolist() == [1, 2] and hist["phase"].tolist() == [1, 2]
    m = json.loads(r.metrics.read_text())
    assert m["epochs_trained"] == 2 and "macro_auc" in m["test"]
    pred = np.load(r.predictions / "test.npz")
    assert pred["y_pred"].shape[1] == len(cfg["classes"])


def test_train_bn_false_freezes_the_whole_backbone(trained_run, tmp_path):
    snaps = {}
    finetune(TrainConfig(task="rhythm", output=str(tmp_path / "ft"), **BASE), trained_run, phase_epochs=(1, 0),
             train_bn=False, on_phase_end=lambda p, m: snaps.update({p: _by_layer(m)}))
    src = _by_layer(keras.saving.load_model(Path(trained_run) / "model.keras", compile=False))
    for name, ws in src.items():
        if not name.startswith("head_"):
            for w0, w1 in zip(ws, snaps[1][name]):
                np.testing.assert_array_equal(w0, w1, err_msg=name)  # incl. BN moving statistics


def test_finetune_from_a_release_directory(trained_run, tmp_path):
    """--init-from a release (here its directory; a name works the same): read by ecg_keras.runs.resolve."""
    from ecg_keras.export import release_run

    entry = release_run(trained_run, "src-rhythm", models_directory=tmp_path / "models")
    out = finetune(TrainConfig(task="rhythm", output=str(tmp_path / "ft"), **BASE), tmp_path / "models",
                   phase_epochs=(1, 0))
    cfg = json.loads((Path(out) / "config.json").read_text())
    assert cfg["finetune"]["source"] == {"type": "release", "name": "src-rhythm", "arch": "fcn_wang", "task": "rhythm",
                                         "training_data": "synthetic", "sha256": entry["sha256"]}
    assert cfg["arch"] == "fcn_wang" and RunDir(out).is_complete()


def test_cli_flags_parse_and_reach_finetune(trained_run, tmp_path, monkeypatch):
    from ecg_keras.cli import train as cli
    from ecg_keras.training import transfer as ft

    p = add_transfer_arguments(cli.parser())
    ns = p.parse_args(["--task", "rhythm", "--dataset", "synthetic", "--init-from", str(trained_run),
                       "--phase-epochs", "2,3", "--output", str(tmp_path / "x"), "--quiet"])
    seen = {}
    monkeypatch.setattr(ft, "finetune", lambda cfg, init, phases, **kw: seen.update(cfg=cfg, init=init, phases=phases))
    assert run_from_args(ns) == 0
    assert seen["init"] == str(trained_run) and seen["phases"] == (2, 3) and seen["cfg"].task == "rhythm"
    plain = p.parse_args(["--task", "rhythm"])
    assert run_from_args(plain) is None and not hasattr(plain, "init_from")
    cli.config_from_args(plain)  # the namespace is clean for the normal training path
    with pytest.raises(SystemExit):
        p.parse_args(["--phase-epochs", "30"])


def test_finetune_accepts_distribute(finetuned, trained_run, tmp_path):
    """--distribute mirrored (one local CPU here: one replica; the ``finetuned`` run) finetunes to a
    complete run (its dropout masks are drawn differently under a strategy, so it is not compared
    with the one-device run); two workers on two processes: tests/test_distribute.py's slow test."""
    run, _ = finetuned
    assert RunDir(run).is_complete()
    cfg = json.loads((Path(run) / "config.json").read_text())
    assert cfg["distribute"] == "mirrored" and cfg["replicas"] == 1
    hist = pd.read_csv(Path(run) / "history.csv")
    assert hist["phase"].tolist() == [1, 2] and np.isfinite(hist[["loss", "val_loss"]].to_numpy()).all()
    with pytest.raises(ValueError, match="float32"):
        finetune(TrainConfig(task="rhythm", output=str(tmp_path / "bf16"), precision="mixed_bfloat16", **BASE),
                 trained_run, phase_epochs=(1, 0))


def test_sweep_cli_passes_distribute(trained_run, tmp_path, monkeypatch):
    from ecg_keras.cli import train as cli
    from ecg_keras.training import sweeps

    ns = add_transfer_arguments(cli.parser()).parse_args(
        ["--task", "rhythm", "--dataset", "synthetic", "--init-from", str(trained_run), "--sweep-train-size", "1",
         "--distribute", "mirrored", "--output", str(tmp_path / "s"), "--quiet"])
    seen = {}
    monkeypatch.setattr(sweeps, "sweep", lambda cfg, init, **kw: seen.update(cfg=cfg) or tmp_path / "s")
    assert run_from_args(ns) == 0
    assert seen["cfg"].distribute == "mirrored"


def test_finetune_takes_the_run_lock_and_a_failed_start_leaves_nothing(trained_run, tmp_path):
    from ecg_keras.training import rundir as rd

    out = tmp_path / "ft"
    with rd.claim(rd.RunDir(out), resume=False):
        with pytest.raises(rd.RunLockedError, match="being written by pid"):
            finetune(TrainConfig(task="rhythm", output=str(out), **BASE), trained_run, phase_epochs=(1, 0))
    assert not out.exists()

    def fail(self, epoch, logs=None):
        raise RuntimeError("interrupted")

    with pytest.MonkeyPatch.context() as mp:  # dies in its first epoch, before any checkpoint
        mp.setattr(rd.Checkpointer, "on_epoch_end", fail)
        with pytest.raises(RuntimeError, match="interrupted"):
            finetune(TrainConfig(task="rhythm", output=str(out), **BASE), trained_run, phase_epochs=(1, 0))
    assert not out.exists()  # nothing to resume from: the same command simply runs again
    assert (finetune(TrainConfig(task="rhythm", output=str(out), **BASE), trained_run, phase_epochs=(1, 0))
            / "COMPLETE").exists()


RESUME_CFG = dict(task="rhythm", **BASE)


@pytest.fixture(scope="module")
def uninterrupted(trained_run, data_env, tmp_path_factory):
    """The uninterrupted 2 + 2 epoch finetuning every resumed one must end like (one per module)."""
    return finetune(TrainConfig(output=str(tmp_path_factory.mktemp("ft") / "whole"), **RESUME_CFG), trained_run,
                    phase_epochs=(2, 2))


def test_finetuning_resumes_in_either_phase_like_an_uninterrupted_run(trained_run, uninterrupted, tmp_path):
    """The process dies right after the checkpoint of epoch 1 (of 2 + 2: in phase 1); ``--resume``
    continues from there and dies after epoch 2 (between the phases), is resumed and dies after
    epoch 3 (in phase 2); the last ``--resume`` ends with the uninterrupted run's predictions."""
    from ecg_keras.training import rundir as rd

    cfg, whole = RESUME_CFG, uninterrupted
    save = rd.Checkpointer.on_epoch_end
    out = tmp_path / "resumed"
    for killed_after in (1, 2, 3):
        def dies(self, epoch, logs=None, killed_after=killed_after):
            save(self, epoch, logs)
            if epoch + 1 == killed_after:
                raise KeyboardInterrupt("killed")

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(rd.Checkpointer, "on_epoch_end", dies)
            with pytest.raises(KeyboardInterrupt):
                finetune(TrainConfig(output=str(out), resume=killed_after > 1, **cfg), trained_run,
                         phase_epochs=(2, 2))
        assert not (out / "COMPLETE").exists(), killed_after
        assert json.loads((out / "checkpoints" / "latest.json").read_text())["epoch"] == killed_after
    finetune(TrainConfig(output=str(out), resume=True, **cfg), trained_run, phase_epochs=(2, 2))
    assert (out / "COMPLETE").exists()
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4] and history["phase"].tolist() == [1, 1, 2, 2]
    for part in ("val", "test"):
        a, b = np.load(whole / "predictions" / f"{part}.npz"), np.load(out / "predictions" / f"{part}.npz")
        np.testing.assert_allclose(b["y_pred"], a["y_pred"], atol=1e-5, rtol=0)

"""Run-directory safety (issue 19): divergence never ends COMPLETE, one writer per run directory,
failed starts leave nothing behind, --resume refuses what it cannot continue, flags are checked."""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from ecg_keras.cli import train as cli
from ecg_keras.training import rundir as rd

ARGS = ["--task", "rhythm", "--dataset", "synthetic", "--arch", "fcn_wang", "--batch-size", "16", "--quiet"]


def test_diverged_training_exits_nonzero_and_is_never_complete(data_env, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main([*ARGS, "--epochs", "2", "--lr", "1e6", "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err or "not finite" in err or "non-finite" in err, err
    assert not (out / "COMPLETE").exists() and not (out / "metrics.json").exists()
    latest = out / "checkpoints" / "latest.json"
    if latest.exists():  # only finite epochs are checkpointed: resuming diverges again, never completes
        assert cli.main([*ARGS, "--resume", "--output", str(out)]) == 1
        assert not (out / "COMPLETE").exists()


def test_finite_guard_stops_before_logging_or_checkpointing():
    import numpy as np

    from ecg_keras.training.callbacks import FiniteGuard, NonFiniteError

    FiniteGuard().on_epoch_end(0, {"loss": 0.5, "val_loss": 0.7, "val_macro_auc": np.nan})  # NaN AUC is allowed
    with pytest.raises(NonFiniteError, match="epoch 3: val_loss = nan"):
        FiniteGuard().on_epoch_end(2, {"loss": 0.5, "val_loss": float("nan")})


def test_failed_start_leaves_nothing_and_the_next_command_works(data_env, tmp_path, capsys):
    from ecg_keras.training import TrainConfig, train

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:  # refused while the arguments are parsed (exit 2)
        cli.main([*ARGS, "--epochs", "1", "--arch", "nosuch", "--output", str(out)])
    assert exit_.value.code == 2 and "unknown architecture 'nosuch'" in capsys.readouterr().err
    assert not out.exists()
    bad = TrainConfig(task="rhythm", dataset="synthetic", arch="nosuch", epochs=1, batch_size=16, verbose=0,
                      output=str(out))
    with pytest.raises(ValueError, match="unknown model 'nosuch'"):  # the library refuses it when it starts
        train(bad)
    assert not out.exists()
    out.mkdir()  # an existing empty directory stays, empty
    with pytest.raises(ValueError, match="unknown model 'nosuch'"):
        train(bad)
    assert list(out.iterdir()) == []
    assert cli.main([*ARGS, "--epochs", "1", "--output", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["arch"] == "fcn_wang" and (out / "COMPLETE").exists()
    assert not (out / rd.LOCK).exists()


def test_resume_refuses_what_it_cannot_continue(data_env, tmp_path, capsys):
    assert cli.main([*ARGS, "--resume", "--output", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "missing").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model": "something else"}))
    assert cli.main([*ARGS, "--resume", "--output", str(foreign)]) == 1
    assert "not an ecg_keras training run" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["config.json"]
    (tmp_path / "file").write_text("x")
    assert cli.main([*ARGS, "--epochs", "1", "--output", str(tmp_path / "file")]) == 1
    assert "is a file" in capsys.readouterr().err


def test_resume_with_contradicting_flags_is_an_error(data_env, trained_run, tmp_path, capsys):
    out = Path(shutil.copytree(trained_run, tmp_path / "run"))  # fcn_wang, 2 epochs, ARGS' other flags
    (out / "COMPLETE").unlink()
    assert cli.main([*ARGS, "--epochs", "2", "--arch", "resnet1d_wang", "--resume", "--output", str(out)]) == 1
    assert "--arch 'resnet1d_wang' (the run has 'fcn_wang')" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--lr", "-0.1"), ("--lr", "0"), ("--wd", "-1e-2"), ("--lr", "nan")])
def test_bad_hyperparameters_are_refused(flag, value, tmp_path, capsys):
    assert cli.main([*ARGS, f"{flag}={value}", "--output", str(tmp_path / "run")]) == 2
    assert f"{flag} must be finite" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_lock_refuses_a_second_writer_and_recovers_a_stale_lock(tmp_path):
    run = rd.RunDir(tmp_path / "run")
    with rd.claim(run, resume=False):
        held = json.loads((run / rd.LOCK).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(rd.RunLockedError, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            with rd.claim(run, resume=True):
                pass
        (run / "config.json").write_text("{}")
    assert not (run / rd.LOCK).exists()
    # a lock file left by a killed process on this host: recovered, with a message
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (run / rd.LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "x"}))
    messages = []
    with rd.claim(run, resume=True, log=messages.append):
        pass
    assert messages and f"stale lock of pid {int(dead.stdout)}" in messages[0]
    # one written on another host is respected
    (run / rd.LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(rd.RunLockedError, match="on elsewhere; if no process there"):
        with rd.claim(run, resume=True):
            pass


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = rd.write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_two_processes_on_one_output_exactly_one_succeeds(data_env, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "ECG_KERAS_DATA": str(data_env.parent), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(REPO / "train.py"), *ARGS, "--epochs", "1", "--arch", arch,
                               "--output", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for arch in ("fcn_wang", "resnet1d_wang")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "being written by pid" in loser or "already holds a run" in loser, loser
    import keras

    from ecg_keras import models

    arch = json.loads((out / "config.json").read_text())["arch"]
    model = keras.saving.load_model(out / "model.keras", compile=False)
    assert model.count_params() == models.get(arch, num_classes=model.output_shape[-1]).count_params()
    assert (out / "COMPLETE").exists() and not (out / rd.LOCK).exists()
    survivor = next(i for i, (code, _) in enumerate(results) if code == 0)
    assert arch == ("fcn_wang", "resnet1d_wang")[survivor]

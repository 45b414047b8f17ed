"""Issue 23 item 1: nothing the package writes or locks is opened through a planted final symlink
or onto a non-regular file (ecg_keras.files is the one low-level helper)."""
import os

import numpy as np
import pandas as pd
import pytest

from ecg_keras import files
from ecg_keras.training import rundir as rd


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


def test_run_lock_refuses_a_symlink_and_leaves_its_target(tmp_path, victim):
    run = tmp_path / "run"
    run.mkdir()
    (run / rd.LOCK).symlink_to(victim)
    with pytest.raises(files.UnsafeFileError, match="symbolic link"):
        with rd.RunLock(run):
            pass
    assert victim.read_text() == "precious\n"


def test_run_lock_refuses_a_fifo_without_hanging(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / rd.LOCK)
    with pytest.raises(files.UnsafeFileError, match="not a regular file"):
        with rd.RunLock(run):
            pass


def test_train_cli_with_a_planted_lock_link_is_one_error_line(tmp_path, victim, capsys):
    from ecg_keras.cli import train as cli

    run = tmp_path / "run"
    run.mkdir()
    (run / rd.LOCK).symlink_to(victim)
    code = cli.main(["--task", "rhythm", "--dataset", "synthetic", "--synthetic-records", "200", "--epochs", "1",
                     "--arch", "fcn_wang", "--quiet", "--output", str(run)])
    err = capsys.readouterr().err
    assert code != 0 and "symbolic link" in err and "Traceback" not in err, err
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("writer", [
    lambda p: rd.write_json(p, {"a": 1}),
    lambda p: rd.write_npz(p, x=np.zeros(3)),
    lambda p: files.write_text(p, "x"),
    lambda p: files.write_plain(p, "x"),
    lambda p: files.open_append(p),
])
def test_writers_refuse_a_planted_link(tmp_path, victim, writer):
    target = tmp_path / "out.file"
    target.symlink_to(victim)
    with pytest.raises(files.UnsafeFileError):
        writer(target)
    assert victim.read_text() == "precious\n" and target.is_symlink()


def test_atomic_write_replaces_a_regular_file_and_refuses_a_directory(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    files.write_text(target, "new")
    assert target.read_text() == "new"
    (tmp_path / "d").mkdir()
    with pytest.raises(files.UnsafeFileError, match="directory"):
        files.write_text(tmp_path / "d", "x")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_evaluation_tables_and_plots_do_not_follow_links(tmp_path, victim):
    from ecg_keras.evaluation import plots

    (tmp_path / "t.csv").symlink_to(victim)
    with pytest.raises(files.UnsafeFileError):  # how evaluation writes its tables
        with files.atomic_path(tmp_path / "t.csv") as tmp:
            pd.DataFrame({"a": [1]}).to_csv(tmp)
    (tmp_path / "h.png").symlink_to(victim)
    with pytest.raises(files.UnsafeFileError):
        plots.plot_history(pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}),
                           tmp_path / "h.png")
    assert victim.read_text() == "precious\n"


def test_cache_files_are_created_exclusively(tmp_path, victim):
    from ecg_keras.datasets import cache

    (tmp_path / "lengths.npy").symlink_to(victim)
    with pytest.raises(cache.CacheWriteError):
        cache._save_npy(tmp_path / "lengths.npy", np.zeros(3))
    assert victim.read_text() == "precious\n"

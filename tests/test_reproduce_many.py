"""Several ``reproduce`` processes on one ``--out`` divide the grid: each run is trained by one
process (its log says which), a process killed mid-run leaves its run to another, which resumes it,
and the table equals a single process's."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecg_keras.training import grid as rp

REPO = Path(__file__).resolve().parents[1]
TASKS, ARCHS = ["superdiagnostic", "rhythm"], ["naive", "fcn_wang", "wavelet_nn"]
OPTIONS = ["--dataset", "synthetic", "--tasks", ",".join(TASKS), "--archs", ",".join(ARCHS), "--seeds", "0",
           "--epochs", "1", "--batch-size", "32", "--bootstrap", "20", "--estimate-steps", "0", "--no-release",
           "--poll-seconds", "0.3"]
FINISHED = re.compile(r"^----- (\S+): (trained|resumed|failed) by pid (\d+) on ", re.M)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

    return Path(generate_synthetic_ptbxl(tmp_path_factory.mktemp("synth") / "ptbxl", n_records=100, seed=0,
                                         sampling_rates=(100,), progress=False))


def _lock_pid(run: Path) -> int | None:
    try:
        return json.loads((run / ".lock").read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


@pytest.mark.timeout(900)
def test_three_processes_divide_the_grid_and_take_over_a_killed_run(data_dir, tmp_path):
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "ecg_keras", "reproduce", "--data-dir", str(data_dir), "--out", str(out),
               *OPTIONS]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    by_pid = {p.pid: p for p in procs}
    networks = [rp.RunSpec(t, "fcn_wang", 0).path(out) for t in TASKS]
    killed = victim = None
    try:
        deadline = time.monotonic() + 300
        while killed is None:  # kill the first process seen training a network run (config written, lock held)
            for run in networks:
                pid = _lock_pid(run)
                if pid in by_pid and (run / "config.json").exists() and not (run / "COMPLETE").exists():
                    os.kill(pid, signal.SIGKILL)
                    killed, victim = pid, run
                    break
            assert time.monotonic() < deadline, "no network run was seen in training"
            assert any(p.poll() is None for p in procs), "every process ended before a run could be killed"
            time.sleep(0.02)
        outputs = {p.pid: p.communicate(timeout=400)[0] for p in procs}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert by_pid[killed].returncode == -signal.SIGKILL
    for pid, p in by_pid.items():
        if pid != killed:
            assert p.returncode == 0, outputs[pid][-3000:]
    specs = rp.grid(TASKS, ARCHS, [0])
    assert all((s.path(out) / "COMPLETE").exists() for s in specs)

    finishers = {}
    for s in specs:
        log = (out / "logs" / f"{s.name}.log").read_text()
        done = FINISHED.findall(log)
        assert len(done) == 1 and done[0][0] == s.name and done[0][1] != "failed", log[-2000:]  # trained once
        finishers[s.name] = int(done[0][2])
    victim_name = next(s.name for s in specs if s.path(out) == victim)
    victim_log = (out / "logs" / f"{victim_name}.log").read_text()
    assert f"(pid {killed} on " in victim_log  # the killed process had started it ...
    assert finishers[victim_name] != killed  # ... and another one finished it
    assert FINISHED.findall(victim_log)[0][1] == "resumed"
    assert set(finishers.values()) <= set(by_pid)
    # the table was written once, by the process that saw the grid complete first
    writers = [pid for pid, text in outputs.items() if "Wrote " in text]
    assert len(writers) == 1, {pid: text[-500:] for pid, text in outputs.items()}

    single = tmp_path / "single"
    outcome = rp.reproduce(str(data_dir), single, tasks=TASKS, archs=ARCHS, seeds=[0], epochs=1, dataset="synthetic",
                           batch_size=32, n_bootstrap=20, estimate_steps=0, release=False, stream=io.StringIO())
    assert outcome.ok
    assert (out / "table.md").read_text() == (single / "table.md").read_text()
    assert (out / "table.csv").read_text() == (single / "table.csv").read_text()


def test_collect_writes_the_table_of_the_complete_runs_only(data_dir, tmp_path):
    out = tmp_path / "partial"
    kwargs = dict(tasks=["rhythm"], archs=["naive"], seeds=[0], epochs=1, dataset="synthetic", batch_size=32,
                  n_bootstrap=20, estimate_steps=0, release=False)
    console = io.StringIO()
    outcome = rp.reproduce(str(data_dir), out, collect_only=True, stream=console, **kwargs)
    assert [r["status"] for r in outcome.runs] == ["missing"]
    assert "not complete (left out): rhythm-naive-seed0" in (out / "table.md").read_text()
    assert not (rp.RunSpec("rhythm", "naive", 0).path(out) / "COMPLETE").exists()
    rp.reproduce(str(data_dir), out, stream=io.StringIO(), **kwargs)
    assert "left out" not in (out / "table.md").read_text()
    again = io.StringIO()
    rp.reproduce(str(data_dir), out, stream=again, **kwargs)  # same runs, same settings: not written twice
    assert "up to date" in again.getvalue()


def test_a_run_killed_between_its_first_files_is_resumed_complete(trained_run, data_env, tmp_path):
    """A process killed after config.json but before classes.json/standardizer.json (the window a
    taking-over process can meet): resuming writes them and the run ends as the uninterrupted one."""
    import numpy as np

    from ecg_keras.training import TrainConfig, train

    run = tmp_path / "half"
    run.mkdir()
    (run / "config.json").write_text((trained_run / "config.json").read_text())
    train(TrainConfig(output=str(run), resume=True, verbose=0))
    assert (run / "COMPLETE").exists()
    assert (run / "classes.json").read_text() == (trained_run / "classes.json").read_text()
    assert (run / "standardizer.json").read_text() == (trained_run / "standardizer.json").read_text()
    for part in ("val", "test"):
        np.testing.assert_allclose(np.load(run / "predictions" / f"{part}.npz")["y_pred"],
                                   np.load(trained_run / "predictions" / f"{part}.npz")["y_pred"], atol=1e-6)

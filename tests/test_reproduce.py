"""``reproduce``: the benchmark grid on a tiny synthetic set (2 tasks, fcn_wang + naive, 1 seed, 1 epoch):
table, figures and release appear, the release verifies and loads, a second invocation trains
nothing, and a run killed mid-grid ends with the same table as an uninterrupted invocation."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecg_keras.cli import reproduce as reproduce_cli
from ecg_keras.training import grid as rp

REPO = Path(__file__).resolve().parents[1]
TASKS, ARCHS = ["superdiagnostic", "rhythm"], ["naive", "fcn_wang"]
OPTIONS = ["--dataset", "synthetic", "--tasks", ",".join(TASKS), "--archs", ",".join(ARCHS), "--seeds", "0",
           "--epochs", "1", "--batch-size", "32", "--bootstrap", "20", "--estimate-steps", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

    return Path(generate_synthetic_ptbxl(tmp_path_factory.mktemp("synth") / "ptbxl", n_records=100, seed=0,
                                         sampling_rates=(100,), progress=False))


def _kwargs(data_dir, **extra) -> dict:
    return dict(tasks=TASKS, archs=ARCHS, seeds=[0], epochs=1, dataset="synthetic", batch_size=32, n_bootstrap=20,
                estimate_steps=1, **extra)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    import io

    out = tmp_path_factory.mktemp("repro") / "out"
    console = io.StringIO()
    outcome = rp.reproduce(str(data_dir), out, stream=console, **_kwargs(data_dir))
    return out, outcome, console.getvalue()


def test_dry_run_prints_the_estimate_and_writes_nothing(data_dir, tmp_path, capsys):
    out = tmp_path / "dry"
    assert reproduce_cli.main(["--data-dir", str(data_dir), "--out", str(out), *OPTIONS, "--archs", "naive,wavelet_nn",
                    "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "Grid: 4 runs, 4 still to do, 0 network epochs to train (1 per run)." in text
    assert not out.exists()


def test_grid_writes_table_figures_and_a_loadable_release(uninterrupted):
    from ecg_keras import pretrained
    from ecg_keras.zoo import sha256

    out, outcome, console = uninterrupted
    assert outcome.ok, outcome.failures
    assert [r["status"] for r in outcome.runs] == ["trained"] * 4
    assert "[2/4] superdiagnostic / fcn_wang / seed 0" in console and "epoch 1/1 done" in console
    est = outcome.estimate  # measured before training: runs, epochs, time per step of fcn_wang
    assert (est["runs_total"], est["runs_todo"], est["epochs_todo"]) == (4, 4, 2)
    assert est["exact_counts"] and est["step_seconds"]["fcn_wang"] > 0
    assert "Estimate before starting" in console and "fcn_wang" in console and "s/step" in console
    assert sorted(p.name for p in (out / "logs").iterdir()) == sorted(f"{t}-{a}-seed0.log" for t in TASKS for a in ARCHS)
    # the table: SYNTHETIC, and the paper column says its numbers are PTB-XL's
    md = (out / "table.md").read_text()
    assert "SYNTHETIC DATA" in md and "paper (PTB-XL)" in md and "for **PTB-XL**" in md
    assert "| fcn_wang | 0 |" in md and "| naive | 0 | 0.500(00) | 0.500 | +0.000 |" in md
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["model"] for r in rows][-1] == "naive"
    assert {r["model"]: r["rhythm_paper"] for r in rows} == {"fcn_wang": "0.931", "naive": "0.5"}
    assert {(r["data"], r["paper_data"]) for r in rows} == {("SYNTHETIC", "PTB-XL")}
    assert sorted(p.name for p in (out / "figures").iterdir()) == [f"synthetic_{t}.png" for t in sorted(TASKS)]
    # the release: sha256s of the manifest match the files, and pretrained() loads every model
    release = out / "release"
    entries = json.loads((release / "MANIFEST.json").read_text())["models"]
    assert sorted(e["name"] for e in entries) == sorted(f"synthetic-{t}-fcn_wang" for t in TASKS)
    for e in entries:
        assert sha256(release / e["file"]) == e["sha256"]
        assert sha256(release / e["exports"]["onnx"]["file"]) == e["exports"]["onnx"]["sha256"]
        sm = release / e["exports"]["savedmodel"]["dir"]
        assert (sm / "saved_model.pb").is_file()
        assert {f: sha256(sm / f) for f in e["exports"]["savedmodel"]["files"]} == e["exports"]["savedmodel"]["files"]
        assert (release / e["card"]).read_text().count("SYNTHETIC") >= 1
        model = pretrained(name=e["name"], weights=str(release))
        assert model.ecg_info.name == e["name"] and model.outputs[0].shape[-1] == len(e["classes"])
    for line in (release / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert sha256(release / name) == digest


def test_second_invocation_trains_nothing_and_rewrites_the_same_table(uninterrupted, data_dir):
    import io

    out, _, _ = uninterrupted
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    release_before = {p: p.stat().st_mtime_ns for p in (out / "release").rglob("*.keras")}
    table, csv_text = (out / "table.md").read_text(), (out / "table.csv").read_text()
    (out / "table.md").unlink()
    console = io.StringIO()
    outcome = rp.reproduce(str(data_dir), out, stream=console, **_kwargs(data_dir))
    assert outcome.ok and [r["status"] for r in outcome.runs] == ["complete"] * 4
    assert "nothing to train" in console.getvalue() and "Estimate" not in console.getvalue()
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()} == before
    assert {p: p.stat().st_mtime_ns for p in (out / "release").rglob("*.keras")} == release_before
    assert (out / "table.md").read_text() == table and (out / "table.csv").read_text() == csv_text


def _command(data_dir, out) -> list[str]:
    return [sys.executable, "-m", "ecg_keras", "reproduce", "--data-dir", str(data_dir), "--out", str(out),
            *OPTIONS, "--no-release"]


def test_killed_grid_resumes_and_ends_with_the_same_table(uninterrupted, data_dir, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    second = rp.RunSpec("superdiagnostic", "fcn_wang", 0).path(out)
    proc = subprocess.Popen(_command(data_dir, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (second / "config.json").exists():  # the second run of the grid has started training
            assert proc.poll() is None, "reproduce ended before the second run started"
            assert time.monotonic() < deadline, "the second run did not start in time"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (second / "COMPLETE").exists() and not (out / "table.md").exists()
    done = subprocess.run(_command(data_dir, out), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    status = {r["run"]: r["status"] for r in csv.DictReader((out / "runs.csv").open())}
    assert status == {"superdiagnostic-naive-seed0": "complete", "superdiagnostic-fcn_wang-seed0": "resumed",
                      "rhythm-naive-seed0": "trained", "rhythm-fcn_wang-seed0": "trained"}
    assert (out / "table.md").read_text() == (uninterrupted[0] / "table.md").read_text()
    assert (out / "table.csv").read_text() == (uninterrupted[0] / "table.csv").read_text()


def test_a_failed_run_does_not_stop_the_grid(data_dir, tmp_path, monkeypatch, capsys):
    real = rp.train_baseline

    def flaky(cfg, splits, data_path, log=print):
        if cfg.task == "superdiagnostic":
            raise RuntimeError("boom")
        return real(cfg, splits, data_path, log=log)

    monkeypatch.setattr(rp.run, "train_baseline", flaky)  # where run_one looks it up
    out = tmp_path / "failing"
    argv = ["--data-dir", str(data_dir), "--out", str(out), *OPTIONS, "--archs", "naive", "--no-release"]
    assert reproduce_cli.main(argv) == 1
    text = capsys.readouterr().out
    assert "1 FAILED" in text and "superdiagnostic-naive-seed0: RuntimeError: boom" in text
    assert "boom" in (out / "logs" / "superdiagnostic-naive-seed0.log").read_text()
    assert (rp.RunSpec("rhythm", "naive", 0).path(out) / "COMPLETE").exists()
    assert "not complete (left out): superdiagnostic-naive-seed0" in (out / "table.md").read_text()


def test_runs_started_with_other_settings_are_refused(data_dir, tmp_path):
    out = tmp_path / "other"
    run = rp.RunSpec("rhythm", "naive", 0).path(out)
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "rhythm", "arch": "naive", "seed": 0, "dataset": "synthetic",
                                                 "epochs": 5, "batch_size": 32}))
    with pytest.raises(rp.ReproduceError, match=r"rhythm-naive-seed0: started with epochs 5 \(now 1\)"):
        rp.reproduce(str(data_dir), out, **{**_kwargs(data_dir), "archs": ["naive"]})


def test_icbeb2018_table_has_the_challenge_metrics(tmp_path):
    import numpy as np
    from test_datasets import write_icbeb_original  # variable-length records, string ids

    write_icbeb_original(tmp_path / "icbeb", n=120)
    out = tmp_path / "icbeb_out"
    argv = ["--dataset", "icbeb2018", "--data-dir", str(tmp_path / "icbeb"), "--out", str(out), "--archs",
            "naive,wavelet_nn", "--epochs", "2", "--bootstrap", "20", "--no-release"]
    assert reproduce_cli.main(argv) == 0
    md = (out / "table.md").read_text()
    assert "# Benchmark reproduction: ICBEB2018" in md and "paper (ICBEB2018)" in md and "SYNTHETIC" not in md
    assert "| Wavelet+NN | 0 |" in md and "| 0.905 |" in md
    assert "## F_beta (β = 2), thresholds maximising G_beta on the train predictions" in md and "## G_beta" in md
    with np.load(rp.RunSpec("all", "wavelet_nn", 0).path(out) / "predictions" / "test.npz") as z:
        assert z["ids"].dtype.kind == "U"  # no pickled object arrays


def test_arguments_are_checked():
    with pytest.raises(rp.ReproduceError, match="unknown architecture"):
        rp.check_arguments("ptbxl", ["all"], ["resnet9000"], [0], 1)
    with pytest.raises(rp.ReproduceError, match="--tasks for icbeb2018"):
        rp.check_arguments("icbeb2018", ["rhythm"], ["fcn_wang"], [0], 1)
    assert [s.name for s in rp.grid(["all"], ["naive", "fcn_wang", "ensemble"], [0, 1])] == [
        "all-naive-seed0", "all-fcn_wang-seed0", "all-fcn_wang-seed1"]


def test_icbeb2018_training_runs_store_training_predictions_for_the_thresholds(tmp_path):
    import numpy as np
    from test_datasets import write_icbeb_original

    from ecg_keras.training import TrainConfig, train

    write_icbeb_original(tmp_path / "icbeb", n=120)
    run = train(TrainConfig(task="all", dataset="icbeb2018", data_dir=str(tmp_path / "icbeb"), arch="fcn_wang",
                            epochs=1, batch_size=32, verbose=0, output=str(tmp_path / "run")))
    with np.load(run / "predictions" / "train.npz") as z:
        assert z["y_pred"].shape == z["y_true"].shape and len(z["ids"]) > len(np.load(run / "predictions" / "test.npz")["ids"])

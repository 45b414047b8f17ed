"""evaluate.py end to end (subprocesses): raw-array mode and run-directory mode."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ecg_keras import evaluation as E

REPO = Path(__file__).resolve().parents[1]


def _evaluate(*args, check=True):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"evaluate.py failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def _labels(rng, n, c, rate=0.3):
    y = (rng.random((n, c)) < rate).astype(int)
    y[y.sum(1) == 0, rng.integers(0, c)] = 1   # every record has a label (as in PTB-XL tasks)
    return y


def _fmax_loop(y, p):
    best = np.nan
    for j in range(101):
        pred = p >= j / 100
        n_pred, tp = pred.sum(1), (pred & (y > 0)).sum(1)
        if (n_pred > 0).any():
            P, R = np.mean(tp[n_pred > 0] / n_pred[n_pred > 0]), np.mean(tp / y.sum(1))
            F = 2 * P * R / (P + R) if P + R > 0 else 0.0
            best = F if np.isnan(best) else max(best, F)
    return best


def test_raw_mode_with_supplied_indices(tmp_path):
    rng = np.random.default_rng(0)
    y = _labels(rng, 80, 4)
    p = np.clip(0.35 * y + 0.65 * rng.random(y.shape), 0, 1)
    idx = E.draw_bootstrap_indices(y, n=25, seed=3)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "ids.npy", idx)
    _evaluate("--y-true", tmp_path / "y.npy", "--y-pred", tmp_path / "p.npy",
              "--bootstrap-ids", tmp_path / "ids.npy", "--json", tmp_path / "out.json")
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["n_bootstrap"] == 25
    auc_bs = np.array([roc_auc_score(y[i], p[i], average="macro") for i in idx])
    assert res["macro_auc"]["point"] == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)
    assert res["macro_auc"]["mean"] == pytest.approx(auc_bs.mean(), abs=1e-12)
    assert res["macro_auc"]["lower"] == pytest.approx(np.quantile(auc_bs, 0.05), abs=1e-12)
    assert res["macro_auc"]["upper"] == pytest.approx(np.quantile(auc_bs, 0.95), abs=1e-12)
    f_bs = np.array([_fmax_loop(y[i], p[i]) for i in idx])
    assert res["fmax"]["point"] == pytest.approx(_fmax_loop(y, p), abs=1e-12)
    assert res["fmax"]["mean"] == pytest.approx(f_bs.mean(), abs=1e-12)
    assert res["fmax"]["lower"] == pytest.approx(np.quantile(f_bs, 0.05), abs=1e-12)
    assert res["fmax"]["upper"] == pytest.approx(np.quantile(f_bs, 0.95), abs=1e-12)


def _write_run(root: Path, arch: str, ids, y, p, seed=0, val=None, history=False, task="superdiagnostic"):
    run = root / f"{arch}_{seed}"
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": arch, "task": task, "dataset": "ptbxl",
                                                 "seed": seed}))
    (run / "classes.json").write_text(json.dumps(["CD", "HYP", "MI", "NORM", "STTC"]))
    np.savez(run / "predictions" / "test.npz", ids=ids, y_true=y, y_pred=p)
    if val is not None:
        np.savez(run / "predictions" / "val.npz", ids=val[0], y_true=val[1], y_pred=val[2])
    if history:
        pd.DataFrame({"epoch": range(4), "loss": [0.5, 0.4, 0.35, 0.3], "val_loss": [0.5, 0.45, 0.42, 0.41],
                      "lr": [1e-3, 1e-2, 5e-3, 1e-4]}).to_csv(run / "history.csv", index=False)
    return run


def test_run_dir_mode(tmp_path):
    rng = np.random.default_rng(1)
    n, c = 90, 5
    ids = np.arange(1000, 1000 + n)
    y = _labels(rng, n, c)
    p1 = np.clip(0.3 * y + 0.7 * rng.random(y.shape), 0, 1)
    p2 = np.clip(0.4 * y + 0.6 * rng.random(y.shape), 0, 1)
    vids = np.arange(5000, 5040)
    vy = _labels(rng, 40, c)
    vp1, vp2 = rng.random(vy.shape), rng.random(vy.shape)
    r1 = _write_run(tmp_path, "fcn_wang", ids, y, p1, val=(vids, vy, vp1), history=True)
    perm = rng.permutation(n)  # second run stores its records in another order
    vperm = rng.permutation(40)
    r2 = _write_run(tmp_path, "resnet1d_wang", ids[perm], y[perm], p2[perm],
                    val=(vids[vperm], vy[vperm], vp2[vperm]))
    out = tmp_path / "evaluation"
    proc = _evaluate(r1, r2, "--out", out, "--bootstrap", 20, "--seed", 7)
    assert "ptbxl: macro_auc" in proc.stdout

    for f in ["metrics.json", "results.md", "results_long.csv", "table_ptbxl_macro_auc.csv",
              "table_ptbxl_fmax.csv", "bootstrap/ptbxl_superdiagnostic_ids.npy"]:
        assert (out / f).is_file(), f
    pngs = [out / "figure2_ptbxl_macro_auc.png", out / "history" / "ptbxl_superdiagnostic_fcn_wang.png"]
    pngs += [out / "roc" / f"ptbxl_superdiagnostic_{m}.png" for m in ("fcn_wang", "resnet1d_wang", "ensemble")]
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png

    res = json.loads((out / "metrics.json").read_text())
    assert res["n_bootstrap"] == 20
    per_model = res["results"]["ptbxl"]
    assert set(per_model) == {"fcn_wang", "resnet1d_wang", "ensemble"}
    idx = np.load(out / "bootstrap" / "ptbxl_superdiagnostic_ids.npy")
    np.testing.assert_array_equal(idx, E.draw_bootstrap_indices(y, n=20, seed=7))  # ids sorted = order
    p_ens = (p1 + p2) / 2
    for name, p in [("fcn_wang", p1), ("resnet1d_wang", p2), ("ensemble", p_ens)]:
        st = per_model[name]["superdiagnostic"]
        assert st["macro_auc"]["point"] == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)
        bs = np.array([roc_auc_score(y[i], p[i], average="macro") for i in idx])
        assert st["macro_auc"]["mean"] == pytest.approx(bs.mean(), abs=1e-12)
        assert st["macro_auc"]["upper"] == pytest.approx(np.quantile(bs, 0.95), abs=1e-12)
        assert st["fmax"]["point"] == pytest.approx(_fmax_loop(y, p), abs=1e-12)
    # challenge metrics with G_beta-optimal thresholds from the (ensembled) validation predictions
    thr = E.find_optimal_thresholds(vy, (vp1 + vp2) / 2)
    ch = E.challenge_metrics(y, E.apply_thresholds(p_ens, thr))
    assert per_model["ensemble"]["superdiagnostic"]["G_beta"]["point"] == pytest.approx(ch["G_beta_macro"])
    assert res["info"]["ptbxl"]["superdiagnostic"]["ensemble"]["threshold_source"] == "val"

    table = pd.read_csv(out / "table_ptbxl_macro_auc.csv", index_col=0)
    assert list(table.index)[-1] == "ensemble"
    md = (out / "results.md").read_text()
    point = per_model["fcn_wang"]["superdiagnostic"]["macro_auc"]
    assert f"| fcn_wang | {E.format_ci(point)} |" in md


def test_run_dir_mode_reports_missing_predictions(tmp_path, capsys):
    from ecg_keras.cli.evaluate import main

    run = tmp_path / "broken"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"arch": "x", "task": "all", "dataset": "ptbxl"}))
    (run / "classes.json").write_text("[\"A\"]")
    assert main([str(run), "--out", str(tmp_path / "o")]) == 1
    assert "test.npz is missing" in capsys.readouterr().err
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_raw_mode_draws_and_saves_indices(tmp_path, capsys):
    from ecg_keras.cli.evaluate import main

    rng = np.random.default_rng(2)
    y = _labels(rng, 40, 3)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", rng.random(y.shape))
    assert main(["--y-true", str(tmp_path / "y.npy"), "--y-pred", str(tmp_path / "p.npy"),
                 "--bootstrap", "15", "--seed", "4", "--save-ids", str(tmp_path / "ids.npy"),
                 "--json", str(tmp_path / "o.json")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "ids.npy"), E.draw_bootstrap_indices(y, n=15, seed=4))
    assert json.loads((tmp_path / "o.json").read_text())["n_bootstrap"] == 15
    capsys.readouterr()


def test_run_dir_mode_age_with_healthy_subsets(tmp_path, capsys):
    from ecg_keras.cli.evaluate import main

    rng = np.random.default_rng(3)
    n = 60
    ids = np.arange(n)
    age = rng.uniform(20, 90, n)
    pred = age + rng.normal(0, 8, n)
    healthy = rng.random(n) < 0.4
    run = tmp_path / "age_run"
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": "xresnet1d101", "task": "age",
                                                 "dataset": "ptbxl", "seed": 0}))
    (run / "classes.json").write_text('["age"]')
    np.savez(run / "predictions" / "test.npz", ids=ids, y_true=age, y_pred=pred, healthy=healthy)
    out = tmp_path / "out"
    assert main([str(run), "--out", str(out), "--bootstrap", "10", "--no-plots"]) == 0
    capsys.readouterr()
    res = json.loads((out / "metrics.json").read_text())["results"]["ptbxl"]["xresnet1d101"]
    assert set(res) == {"age", "age[healthy]", "age[non_healthy]"}
    assert res["age"]["mae"]["point"] == pytest.approx(np.mean(np.abs(age - pred)))
    assert res["age[healthy]"]["mae"]["point"] == pytest.approx(np.mean(np.abs(age - pred)[healthy]))
    assert res["age[non_healthy]"]["r2"]["point"] == pytest.approx(E.r2(age[~healthy], pred[~healthy]))
    table = pd.read_csv(out / "table_ptbxl_mae.csv", index_col=0)
    assert list(table.columns) == ["age", "age[healthy]", "age[non_healthy]"]


def test_run_dir_mode_hierarchy_table(tmp_path, capsys):
    from ecg_keras.cli.evaluate import main

    classes = ["AMI", "IMI", "LAFB", "NORM"]
    scp = pd.DataFrame({"diagnostic": [1.0, 1.0, 1.0, 1.0, np.nan],
                        "diagnostic_class": ["MI", "MI", "CD", "NORM", np.nan],
                        "diagnostic_subclass": ["AMI", "IMI", "LAFB/LPFB", "NORM", np.nan]},
                       index=pd.Index(classes + ["SR"], name="code"))
    scp.to_csv(tmp_path / "scp_statements.csv")
    rng = np.random.default_rng(5)
    y = np.eye(4, dtype=int)[rng.integers(0, 4, 50)]
    p = rng.random(y.shape)
    run = tmp_path / "diag"
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": "diagnostic", "dataset": "ptbxl"}))
    (run / "classes.json").write_text(json.dumps(classes))
    np.savez(run / "predictions" / "test.npz", ids=np.arange(50), y_true=y, y_pred=p)
    out = tmp_path / "out"
    assert main([str(run), "--out", str(out), "--bootstrap", "5", "--no-plots",
                 "--hierarchy", str(tmp_path / "scp_statements.csv")]) == 0
    capsys.readouterr()
    tab = pd.read_csv(out / "hierarchy_ptbxl_fcn_wang.csv")
    mi = tab[(tab.level == "superdiagnostic") & (tab.node == "MI")].iloc[0]
    assert mi.auc == pytest.approx(roc_auc_score(y[:, :2].max(1), np.clip(p[:, :2].sum(1), 0, 1)))

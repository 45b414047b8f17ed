"""Deeper insights: hierarchy per-node AUCs, ensemble uncertainty vs likelihood, attribution maps
(integrated gradients and epsilon-LRP), their plots and the ``evaluate.py`` subcommands."""
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

from ecg_keras.evaluation import hierarchy as H
from ecg_keras.evaluation import uncertainty as U
from ecg_keras.cli.evaluate import main as evaluate_main

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["AMI", "IMI", "LAFB", "LPFB", "NORM"]          # diagnostic statements (built-in table)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_ok(path, min_bytes=8000):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes, (path, len(data))


def _labels(rng, n, c, rate=0.3):
    y = (rng.random((n, c)) < rate).astype(int)
    y[y.sum(1) == 0, rng.integers(0, c)] = 1
    return y


def _write_run(root: Path, name: str, ids, y, p, classes, seed=0, task="diagnostic", model=None,
               standardizer=None, sampling_rate=100):
    run = root / name
    (run / "predictions").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": task, "dataset": "ptbxl",
                                                 "seed": seed, "sampling_rate": sampling_rate}))
    (run / "classes.json").write_text(json.dumps(classes))
    np.savez(run / "predictions" / "test.npz", ids=ids, y_true=y, y_pred=p)
    if model is not None:
        model.save(run / "model.keras")
    if standardizer is not None:
        standardizer.save(run / "standardizer.json")
    return run


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from ecg_keras import models
    keras.utils.set_random_seed(0)
    return models.get("fcn_wang", num_classes=3, filters=(8, 16, 8), head_units=(16,))


# --------------------------------------------------------------------------- uncertainty

def test_ensemble_std_and_likelihood_table():
    p = [np.array([[0.1, 0.9], [0.5, 0.5]]), np.array([[0.3, 0.9], [0.5, 0.1]]),
         np.array([[0.2, 0.6], [0.5, 0.3]])]
    std = U.ensemble_std(p)
    np.testing.assert_allclose(std, np.std(np.stack(p), axis=0))
    assert std[1, 0] == 0.0
    with pytest.raises(ValueError):
        U.ensemble_std(p[:1])

    ids = np.array([10, 11, 12, 13])
    classes = ["IMI", "NORM", "MI"]          # two statements and one superclass
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 0]])
    s = np.arange(12, dtype=float).reshape(4, 3) / 100
    lik = {"10": {"IMI": 35.0, "SR": 0.0}, "11": {"NORM": 100.0}, "12": {"IMI": 15.0, "AMI": 80.0, "NORM": 0.0}}
    tab = U.uncertainty_table(ids, y, s, classes, lik, mapping={"IMI": ("IMI", "MI"), "AMI": ("AMI", "MI")})
    assert len(tab) == int(y.sum()) == 6
    got = {(r.id, r.label): (r.likelihood, r.std) for r in tab.itertuples()}
    assert got[("10", "IMI")] == (35.0, 0.0)
    assert got[("10", "MI")] == (35.0, 0.02)          # superclass: max over its codes
    assert got[("12", "MI")] == (80.0, 0.08)
    assert got[("12", "NORM")] == (0.0, 0.07)         # 0 = not given -> "other"
    summ = U.summarize_by_likelihood(tab).set_index("likelihood")
    assert summ.loc["35", "n"] == 2 and summ.loc["100", "n"] == 1 and summ.loc["80", "n"] == 1
    assert summ.loc["15", "n"] == 1 and summ.loc["other", "n"] == 1 and summ.loc["50", "n"] == 0
    assert summ.loc["35", "median"] == pytest.approx(0.01)


def test_uncertainty_cli(tmp_path):
    rng = np.random.default_rng(3)
    n = 60
    ids = np.arange(100, 100 + n)
    y = _labels(rng, n, len(CLASSES))
    bins = np.array(U.LIKELIHOOD_BINS)
    likes = rng.choice(bins, size=y.shape)
    preds = [np.clip(0.4 * y + 0.6 * rng.random(y.shape), 0, 1) for _ in range(3)]
    runs = []
    for k, p in enumerate(preds):
        perm = rng.permutation(n)           # each run stores its records in another order
        runs.append(_write_run(tmp_path, f"run{k}", ids[perm], y[perm], p[perm], CLASSES, seed=k))
    db = pd.DataFrame({"ecg_id": ids, "patient_id": ids,
                       "scp_codes": [str({c: float(likes[i, j]) for j, c in enumerate(CLASSES) if y[i, j]}
                                         | {"SR": 0.0}) for i in range(n)]})
    db.to_csv(tmp_path / "ptbxl_database.csv", index=False)
    out = tmp_path / "unc"
    assert evaluate_main(["uncertainty", *map(str, runs), "--database", str(tmp_path / "ptbxl_database.csv"),
                          "--out", str(out)]) == 0
    pairs = pd.read_csv(out / "uncertainty_pairs.csv")
    std = np.std(np.stack(preds), axis=0)
    assert len(pairs) == y.sum()
    for r in pairs.sample(10, random_state=0).itertuples():
        i, j = int(r.id) - 100, CLASSES.index(r.label)
        assert r.std == pytest.approx(std[i, j]) and r.likelihood == likes[i, j]
    summ = pd.read_csv(out / "uncertainty_summary.csv", dtype={"likelihood": str}).set_index("likelihood")
    for b in bins:
        assert summ.loc[f"{b:g}", "n"] == int(((likes == b) & (y > 0)).sum())
        assert summ.loc[f"{b:g}", "median"] == pytest.approx(np.median(std[(likes == b) & (y > 0)]))
    _png_ok(out / "uncertainty_box.png")
    # one run is not an ensemble
    assert evaluate_main(["uncertainty", str(runs[0]), "--database", str(tmp_path / "ptbxl_database.csv"),
                          "--out", str(out)]) == 1


# --------------------------------------------------------------------------- hierarchy

def test_tree_order_and_hierarchy_cli_subprocess(tmp_path):
    rng = np.random.default_rng(5)
    n = 120
    ids = np.arange(n)
    y = _labels(rng, n, len(CLASSES), rate=0.25)
    p = np.clip(0.3 * y + 0.7 * rng.random(y.shape), 0, 1)
    run = _write_run(tmp_path, "diag", ids, y, p, CLASSES)
    stmts = tmp_path / "scp_statements.csv"
    from ecg_keras.statements import statements_frame
    statements_frame().to_csv(stmts)
    out = tmp_path / "hier"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "hierarchy", str(run),
                           "--statements", str(stmts), "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    tab = pd.read_csv(out / "hierarchy_fcn_wang.csv")
    _png_ok(out / "hierarchy_fcn_wang.png")
    # tree order: superclass, its subclasses, their statements
    assert tab.node.tolist() == ["CD", "LAFB/LPFB", "LAFB", "LPFB", "MI", "AMI", "AMI", "IMI", "IMI",
                                 "NORM", "NORM", "NORM"]
    assert tab.depth.tolist() == [0, 1, 2, 2, 0, 1, 2, 1, 2, 0, 1, 2]
    mi = tab[(tab.level == "superdiagnostic") & (tab.node == "MI")].iloc[0]
    assert mi.auc == pytest.approx(roc_auc_score(y[:, :2].max(1), np.clip(p[:, :2].sum(1), 0, 1)))
    cd = tab[(tab.level == "subdiagnostic") & (tab.node == "LAFB/LPFB")].iloc[0]
    assert cd.auc == pytest.approx(roc_auc_score(y[:, 2:4].max(1), np.clip(p[:, 2:4].sum(1), 0, 1)))
    lafb = tab[(tab.level == "diagnostic") & (tab.node == "LAFB")].iloc[0]
    assert lafb.auc == pytest.approx(roc_auc_score(y[:, 2], p[:, 2])) and lafb.n_pos == y[:, 2].sum()
    # same table as the library function, just reordered
    direct = H.node_auc_table(y, p, CLASSES, statements_frame())
    assert len(direct) == len(tab) and set(direct.node) == set(tab.node)
    # a run of another task is refused with a clear message
    other = _write_run(tmp_path, "super", ids, y, p, ["X1", "X2", "X3", "X4", "X5"], task="superdiagnostic")
    assert evaluate_main(["hierarchy", str(other), "--out", str(out)]) == 1


# --------------------------------------------------------------------------- attribution

def test_integrated_gradients_completeness(tiny_model):
    from ecg_keras.evaluation.attribution import integrated_gradients

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 250, 12)).astype("float32")
    base = -0.4
    attr = integrated_gradients(tiny_model, x, 1, baseline=base, steps=64, batch_size=96)
    assert attr.shape == x.shape
    f = tiny_model.predict(x, verbose=0)[:, 1]
    f0 = tiny_model.predict(np.full_like(x, base), verbose=0)[:, 1]
    diff = f - f0
    assert np.all(np.abs(diff) > 0.1)
    np.testing.assert_allclose(attr.sum(axis=(1, 2)), diff, rtol=0.05, atol=0.02)
    # the baseline itself gets zero attribution
    assert np.abs(integrated_gradients(tiny_model, np.full_like(x[:1], base), 1, baseline=base, steps=4)).max() == 0


def test_lrp_zero_equals_gradient_times_input(tiny_model):
    import tensorflow as tf

    from ecg_keras.evaluation.attribution import lrp_epsilon

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 250, 12)).astype("float32")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        f = tiny_model(xt, training=False)[:, 2]
    gxi = x * tape.gradient(f, xt).numpy()
    r0 = lrp_epsilon(tiny_model, x, 2, epsilon=1e-9)
    np.testing.assert_allclose(r0, gxi, atol=1e-5 * np.abs(gxi).max())
    r = lrp_epsilon(tiny_model, x, 2, epsilon=0.1)
    assert r.shape == x.shape and np.isfinite(r).all()
    assert np.all(np.abs(r.sum(axis=(1, 2))) <= np.abs(f.numpy()) * 1.5 + 1e-3)


def test_combine_windows_hand_case():
    from ecg_keras.evaluation.attribution import combine_windows

    wa = np.stack([np.full((4, 1), 1.0), np.full((4, 1), 2.0), np.full((4, 1), 3.0)])
    offsets = [0, 2, 4]
    # scores: window 1 best, then 0, then 2
    got = combine_windows(wa, offsets, [0.5, 0.9, 0.1], 9, "max")[:, 0]
    np.testing.assert_allclose(got, [1, 1, 2, 2, 2, 2, 3, 3, 0])     # last sample uncovered
    got = combine_windows(wa, offsets, [0.5, 0.9, 0.1], 9, "mean")[:, 0]
    np.testing.assert_allclose(got, [1, 1, 1.5, 1.5, 2.5, 2.5, 3, 3, 0])


def test_attribute_record_shapes(tiny_model):
    from ecg_keras.evaluation.attribution import attribute_record
    from ecg_keras.standardize import Standardizer

    rng = np.random.default_rng(2)
    sig = (0.3 * rng.normal(size=(1000, 12))).astype("float32")
    st = Standardizer(0.02, 0.3)
    res = attribute_record(tiny_model, sig, 0, st, 100, steps=16)
    assert res.attribution.shape == (1000, 12) and res.window_attributions.shape == (7, 250, 12)
    np.testing.assert_array_equal(res.offsets, np.arange(0, 751, 125))
    logits = tiny_model.predict(st.transform(np.stack([sig[o:o + 250] for o in res.offsets])), verbose=0)[:, 0]
    np.testing.assert_allclose(res.window_logits, logits, rtol=1e-5, atol=1e-5)
    b = res.best_window
    o = res.offsets[b]
    np.testing.assert_allclose(res.attribution[o:o + 250], res.window_attributions[b])
    # per window completeness against the 0 mV baseline
    np.testing.assert_allclose(res.window_attributions.sum(axis=(1, 2)), res.window_logits - res.baseline_logits,
                               rtol=0.1, atol=0.05)
    short = attribute_record(tiny_model, sig[:180], 0, st, 100, method="lrp", combine="mean")
    assert short.attribution.shape == (180, 12) and len(short.offsets) == 1


def test_attribution_cli(tmp_path, tiny_model):
    import wfdb

    from ecg_keras.datasets.base import LEADS
    from ecg_keras.standardize import Standardizer

    rng = np.random.default_rng(4)
    t = np.arange(1000) / 100
    sig = (np.sin(2 * np.pi * 1.2 * t)[:, None] * np.linspace(0.2, 1.0, 12)[None, :]
           + 0.05 * rng.normal(size=(1000, 12))).astype("float32")
    classes = ["NORM", "PVC", "AFIB"]
    run = _write_run(tmp_path, "run", np.arange(3), np.eye(3), np.full((3, 3), 0.5), classes,
                     model=tiny_model, standardizer=Standardizer(0.0, 0.25), task="all")
    # a minimal PTB-XL root holding one record (WFDB, 100 Hz)
    root = tmp_path / "ptbxl"
    (root / "records100" / "00000").mkdir(parents=True)
    wfdb.wrsamp("00007_lr", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=sig.astype(np.float64),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(root / "records100" / "00000"))
    pd.DataFrame({"ecg_id": [7], "patient_id": [1], "age": [50], "sex": [0], "scp_codes": ["{'PVC': 100.0}"],
                  "strat_fold": [10], "filename_lr": ["records100/00000/00007_lr"],
                  "filename_hr": ["records500/00000/00007_hr"]}).to_csv(root / "ptbxl_database.csv", index=False)
    png = tmp_path / "attr" / "rec7_pvc.png"
    assert evaluate_main(["attribution", str(run), "--record", "7", "--class", "PVC", "--data-dir", str(root),
                          "--steps", "8", "--out", str(png)]) == 0
    _png_ok(png, 30000)
    saved = np.load(png.with_suffix(".npz"))
    assert saved["attribution"].shape == (1000, 12) and int(saved["class_index"]) == 1
    np.testing.assert_allclose(saved["signal"], sig, atol=1e-3)     # 1 uV WFDB resolution
    # --npy alternative (5 s, leads-first layout accepted) with LRP
    np.save(tmp_path / "sig.npy", sig[:500].T)
    png2 = tmp_path / "attr" / "npy_lrp.png"
    assert evaluate_main(["attribution", str(run), "--npy", str(tmp_path / "sig.npy"), "--class", "AFIB",
                          "--method", "lrp", "--out", str(png2)]) == 0
    _png_ok(png2, 20000)
    assert np.load(png2.with_suffix(".npz"))["attribution"].shape == (500, 12)
    # unknown class / record
    assert evaluate_main(["attribution", str(run), "--npy", str(tmp_path / "sig.npy"), "--class", "XYZ",
                          "--out", str(png2)]) == 1
    assert evaluate_main(["attribution", str(run), "--record", "8", "--class", "PVC", "--data-dir", str(root),
                          "--out", str(png2)]) == 1

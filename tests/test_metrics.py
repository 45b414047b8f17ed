"""Metrics, bootstrap, tables, plots and hierarchy of ecg_keras.evaluation, pinned on small
hand-computed cases (arithmetic in the comments)."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ecg_keras import evaluation as E


def test_no_tensorflow_import():
    """Importing the package pulls neither TensorFlow nor matplotlib (checked in a fresh process)."""
    import subprocess
    code = "import sys, ecg_keras.evaluation; print('tensorflow' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- macro AUC

def test_macro_auc_hand_case():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.5], [0.8, 0.5], [0.4, 0.7], [0.1, 0.2]])
    # class 0: pos {0.9, 0.4}, neg {0.8, 0.1}: 0.9>0.8, 0.9>0.1, 0.4<0.8, 0.4>0.1 -> 3/4
    # class 1: pos {0.5, 0.7}, neg {0.5, 0.2}: tie 0.5=0.5 counts 1/2, 0.5>0.2, 0.7>0.5, 0.7>0.2
    #          -> 3.5/4 = 0.875; macro = (0.75 + 0.875) / 2 = 0.8125
    assert E.macro_auc(y, p) == pytest.approx(0.8125, abs=1e-15)
    assert E.macro_auc(y, p, method="sklearn") == pytest.approx(0.8125, abs=1e-15)
    np.testing.assert_allclose(E.per_class_auc(y, p), [0.75, 0.875])


def test_macro_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = (rng.random((200, 9)) < 0.2).astype(int)
        y[0], y[1] = 1, 0
        p = np.round(rng.random((200, 9)), 1)  # many ties
        assert E.macro_auc(y, p) == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)


def test_macro_auc_undefined_class_raises():
    with pytest.raises(ValueError, match="only one label"):
        E.macro_auc(np.array([[1, 0], [1, 1]]), np.array([[0.1, 0.2], [0.3, 0.4]]))


# --------------------------------------------------------------------------- Fmax

# 3 samples x 4 classes; label predicted iff score >= t.
FMAX_Y = np.array([[1, 0, 0, 0],     # A: true {0}
                   [0, 1, 1, 0],     # B: true {1, 2}
                   [1, 1, 0, 0]])    # C: true {0, 1}
FMAX_P = np.array([[0.9, 0.2, 0.1, 0.05],
                   [0.3, 0.6, 0.05, 0.05],
                   [0.1, 0.1, 0.1, 0.05]])
# t <= 0.05:     A pred 4 (1 tp) P=1/4 R=1; B pred 4 (2 tp) 1/2, 1; C pred 4 (2 tp) 1/2, 1
#                P = 1.25/3, R = 1, F = 2PR/(P+R) = 0.5882
# 0.05<t<=0.1:   A {0,1,2} 1/3, 1; B {0,1} 1/2, 1/2; C {0,1,2} 2/3, 1 -> P=1/2 R=5/6 F=0.625
# 0.1<t<=0.2:    A {0,1} 1/2, 1; B {0,1} 1/2, 1/2; C none (out of P, recall 0)
#                P = (1/2+1/2)/2 = 1/2, R = 1.5/3 = 1/2, F = 1/2
# 0.2<t<=0.3:    A {0} 1, 1; B {0,1} 1/2, 1/2; C none -> P = 3/4, R = 1/2, F = 0.6
# 0.3<t<=0.6:    A {0} 1, 1; B {1} 1, 1/2; C none -> P = 1, R = 1/2, F = 2/3   <- maximum, t=0.31
# 0.6<t<=0.9:    A {0}; B, C none -> P = 1, R = 1/3, F = 1/2
# t > 0.9:       nobody predicts anything -> threshold skipped (P is NaN)
# Counting C's empty prediction as precision 0 instead would give F = 4/7 on (0.3, 0.6] and
# Fmax = 0.625, so the value pins the "samples with >= 1 predicted label" rule.


def test_fmax_hand_case_and_nan_handling():
    f, t = E.fmax(FMAX_Y, FMAX_P, return_threshold=True)
    assert f == pytest.approx(2 / 3)
    assert t == pytest.approx(0.31)
    thr, prec, rec, fc = E.fmax_curve(FMAX_Y, FMAX_P)
    i = {round(x, 2): k for k, x in enumerate(thr)}
    assert prec[i[0.0]] == pytest.approx(1.25 / 3) and rec[i[0.0]] == 1.0
    assert fc[i[0.0]] == pytest.approx(2 * (1.25 / 3) / (1.25 / 3 + 1))
    assert (prec[i[0.1]], rec[i[0.1]], fc[i[0.1]]) == pytest.approx((0.5, 5 / 6, 0.625))
    assert (prec[i[0.15]], rec[i[0.15]]) == pytest.approx((0.5, 0.5))
    assert fc[i[0.25]] == pytest.approx(0.6)
    assert fc[i[0.75]] == pytest.approx(0.5)
    assert np.isnan(prec[i[0.95]]) and np.isnan(fc[i[1.0]])   # skipped thresholds


def test_fmax_all_thresholds_skipped_is_nan():
    assert np.isnan(E.fmax(np.eye(3), -np.ones((3, 3))))


def _fmax_loop(y, p):
    """Literal transcription of the docs/PROTOCOL.md definition, one threshold at a time."""
    best = np.nan
    for j in range(101):
        pred = p >= j / 100
        n_pred, tp = pred.sum(1), (pred & (y > 0)).sum(1)
        if not (n_pred > 0).any():
            continue
        P = np.mean(tp[n_pred > 0] / n_pred[n_pred > 0])
        R = np.mean(tp / y.sum(1))
        F = 2 * P * R / (P + R) if P + R > 0 else 0.0
        best = F if np.isnan(best) else max(best, F)
    return best


def test_fmax_matches_definition_loop():
    rng = np.random.default_rng(0)
    y = (rng.random((150, 6)) < 0.25).astype(int)
    y[y.sum(1) == 0, 0] = 1
    p = np.round(rng.random((150, 6)) * 1.1 - 0.05, 2)  # scores exactly on thresholds, <0 and >1
    assert E.fmax(y, p) == pytest.approx(_fmax_loop(y, p), abs=1e-12)


# --------------------------------------------------------------------------- challenge metrics

def test_challenge_metrics_sample_weights():
    y = np.array([[1, 0], [1, 1], [0, 1]])     # sample weights 1, 1/2, 1
    pred = np.array([[1, 0], [0, 1], [1, 1]])
    # class 0: s0 TP +1; s1 FN +1/2; s2 FP +1 -> TP=1 FP=1 FN=0.5
    #          F = 5*1/(5*1 + 1 + 4*0.5) = 5/8; G = 1/(1 + 1 + 2*0.5) = 1/3
    # class 1: s1 TP +1/2; s2 TP +1 -> TP=1.5 FP=FN=0 -> F = G = 1
    # macro: F = (5/8 + 1)/2 = 0.8125, G = (1/3 + 1)/2 = 2/3
    # (unweighted would give F = 0.75, G = 0.625)
    r = E.challenge_metrics(y, pred)
    assert r["F_beta_macro"] == pytest.approx(0.8125)
    assert r["G_beta_macro"] == pytest.approx(2 / 3)


def _challenge_loop(y_true, y_pred, beta=2):
    """Per-sample loop of the reference formulas (weights 1/n_true, per class, macro)."""
    f = g = 0.0
    w = y_true.sum(axis=1)
    for c in range(y_true.shape[1]):
        tp = fp = fn = 0.0
        for i in range(len(y_true)):
            if y_true[i, c] == 1 and y_pred[i, c] == 1:
                tp += 1 / w[i]
            elif y_pred[i, c] == 1:
                fp += 1 / w[i]
            elif y_true[i, c] == 1:
                fn += 1 / w[i]
        f += (1 + beta ** 2) * tp / ((1 + beta ** 2) * tp + fp + beta ** 2 * fn)
        g += tp / (tp + fp + beta * fn)
    return f / y_true.shape[1], g / y_true.shape[1]


def test_challenge_metrics_match_reference_loop():
    rng = np.random.default_rng(1)
    y = (rng.random((80, 5)) < 0.3).astype(int)
    y[y.sum(1) == 0, 2] = 1
    pred = (rng.random((80, 5)) < 0.4).astype(int)
    r = E.challenge_metrics(y, pred)
    assert (r["F_beta_macro"], r["G_beta_macro"]) == pytest.approx(_challenge_loop(y, pred))


def test_challenge_metrics_rejects_unlabelled_samples():
    with pytest.raises(ValueError, match="no true label"):
        E.challenge_metrics(np.array([[1, 0], [0, 0]]), np.array([[1, 0], [0, 1]]))


def test_find_optimal_thresholds_grid_and_strictness():
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    p = np.array([[0.9, 0.2], [0.35, 0.8], [0.3, 0.7], [0.1, 0.6]])
    # grid t_k = k/99, positive iff p > t_k, unweighted G = TP/(TP+FP+2FN), first maximum.
    # class 0 (pos 0.9, 0.35; neg 0.3, 0.1): k<=9 (t<0.1) all -> 2/4; k=10..29 -> 2/3;
    #   k=30 (t=0.3030 > 0.3) -> {0.9, 0.35}: G = 1 -> threshold 30/99
    # class 1 (pos 0.8, 0.6; neg 0.2, 0.7): k<=19 all -> 2/4; k=20 (0.2020) -> {0.8,0.7,0.6}:
    #   2/3; k>=61 drops 0.6: 1/(1+1+2) = 1/4; later 1/3, 0 -> threshold 20/99
    np.testing.assert_allclose(E.find_optimal_thresholds(y, p), [30 / 99, 20 / 99])


def test_apply_thresholds_argmax_fallback():
    p = np.array([[0.2, 0.6], [0.3, 0.1], [0.5, 0.5], [0.1, 0.1]])
    thr = [0.3, 0.5]
    # row 0: 0.6 > 0.5 -> [0, 1]; row 1: 0.3 > 0.3 is False (strict), nothing -> argmax -> [1, 0]
    # row 2: 0.5 > 0.3 -> [1, 0]; row 3: nothing -> argmax of a tie = first -> [1, 0]
    np.testing.assert_array_equal(E.apply_thresholds(p, thr), [[0, 1], [1, 0], [1, 0], [1, 0]])


# --------------------------------------------------------------------------- age, sex, subsets

def test_age_and_sex_metrics():
    # |err| = 2, 2, 0, 10 -> MAE 3.5; SS_res = 4+4+0+100 = 108, mean 45,
    # SS_tot = 225+25+25+225 = 500 -> R2 = 1 - 108/500 = 0.784
    assert E.mae([30, 40, 50, 60], [32, 38, 50, 70]) == pytest.approx(3.5)
    assert E.r2([30, 40, 50, 60], [32, 38, 50, 70]) == pytest.approx(0.784)
    y, p = [0, 1, 1, 0, 1], [0.2, 0.7, 0.4, 0.5, 0.9]
    # p >= 0.5 -> [0,1,0,1,1]: correct, correct, wrong, wrong, correct -> 3/5
    # AUC: pos {0.7, 0.4, 0.9} vs neg {0.2, 0.5}: 2 + 1 + 2 = 5 of 6 pairs
    assert E.accuracy(y, p) == pytest.approx(0.6)
    assert E.auc(y, p) == pytest.approx(5 / 6)


def test_healthy_and_subset_masks():
    y = np.array([[0, 0, 1], [1, 0, 1], [0, 1, 0], [0, 0, 0]])  # classes CD, MI, NORM
    healthy = E.healthy_mask(y, ["CD", "MI", "NORM"])
    np.testing.assert_array_equal(healthy, [True, False, False, False])
    m = E.subset_masks(healthy)
    assert set(m) == {"all", "healthy", "non_healthy"}
    np.testing.assert_array_equal(m["all"], [True] * 4)
    np.testing.assert_array_equal(m["non_healthy"], [False, True, True, True])
    with pytest.raises(TypeError):
        E.subset_masks(np.array([1, 0]))
    s = E.scores_by_subset([30, 40, 50, 60], [32, 38, 50, 70], np.array([True, True, False, False]),
                           {"mae": E.mae})
    assert s == {"all": {"mae": 3.5}, "healthy": {"mae": 2.0}, "non_healthy": {"mae": 5.0}}


# --------------------------------------------------------------------------- bootstrap

def _skewed_labels():
    y = np.zeros((50, 3), dtype=int)
    y[:, 0] = 1            # every sample
    y[7, 1] = 1            # one positive: ~36.6% of plain resamples miss it
    y[[3, 40], 2] = 1      # two positives
    return y


def test_bootstrap_resamples_contain_every_class():
    y = _skewed_labels()
    idx = E.draw_bootstrap_indices(y, n=300, seed=5)
    assert idx.shape == (300, 50) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < 50
    assert (y[idx].sum(axis=1).min(axis=1) > 0).all()   # each resample, each class
    np.testing.assert_array_equal(idx, E.draw_bootstrap_indices(y, n=300, seed=5))
    assert not np.array_equal(idx, E.draw_bootstrap_indices(y, n=300, seed=6))
    # resampling really happens: some resamples repeat samples
    assert (np.array([len(np.unique(r)) for r in idx]) < 50).all()


def test_bootstrap_class_without_positive_raises():
    y = _skewed_labels()
    y[:, 2] = 0
    with pytest.raises(ValueError, match=r"\[2\] have no positive"):
        E.draw_bootstrap_indices(y, n=10)


def test_bootstrap_save_load_roundtrip(tmp_path):
    idx = E.draw_bootstrap_indices(_skewed_labels(), n=20, seed=1)
    path = E.save_indices(tmp_path / "sub" / "ids.npy", idx)
    np.testing.assert_array_equal(E.load_indices(path, n_samples=50), idx)
    with pytest.raises(ValueError, match="do not fit"):
        E.load_indices(path, n_samples=40)


def test_bootstrap_scores_point_mean_quantiles():
    rng = np.random.default_rng(2)
    y = _skewed_labels()
    p = rng.random(y.shape)
    y[:5, 0] = 0  # give class 0 negatives so AUC is defined... resamples may still lack them
    idx = E.draw_bootstrap_indices(y, n=40, seed=0)
    ok = np.array([(y[i].sum(0) < len(i)).all() for i in idx])
    idx = idx[ok]
    res, samples = E.bootstrap_scores(y, p, {"auc": E.macro_auc, "fmax": E.fmax}, idx,
                                      return_samples=True)
    direct = np.array([roc_auc_score(y[i], p[i], average="macro") for i in idx])
    np.testing.assert_allclose(samples["auc"], direct, atol=1e-12)
    assert res["auc"]["point"] == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)
    assert res["auc"]["mean"] == pytest.approx(direct.mean(), abs=1e-12)
    assert res["auc"]["lower"] == pytest.approx(np.quantile(direct, 0.05), abs=1e-12)
    assert res["auc"]["upper"] == pytest.approx(pd.Series(direct).quantile(0.95), abs=1e-12)
    assert set(res["fmax"]) == {"point", "mean", "lower", "upper"}


# --------------------------------------------------------------------------- tables

def test_format_ci_reference_format():
    # max(0.931 - 0.9251, 0.9251 - 0.917) = 0.0081 -> int(8.1) = 8 -> "(08)"
    assert E.format_ci(0.9251, 0.917, 0.931) == "0.925(08)"
    # truncation as the reference's int(unc * 1000): 0.0095 -> 9
    assert E.format_ci({"point": 0.5, "lower": 0.4905, "upper": 0.5}) == "0.500(09)"
    assert E.format_ci(0.93, 0.9, 0.95) == "0.930(30)"
    assert E.format_ci(float("nan"), 0, 1) == "--"


def _stats(point, half=0.01):
    return {"point": point, "mean": point, "lower": point - half, "upper": point + half}


def test_results_table_ranking_and_markdown():
    res = {"a": {"all": {"macro_auc": _stats(0.90)}, "form": {"macro_auc": _stats(0.80)}},
           "naive": {"all": {"macro_auc": _stats(0.5)}},
           "b": {"all": {"macro_auc": _stats(0.95)}},
           "ensemble": {"all": {"macro_auc": _stats(0.97)}, "form": {"macro_auc": _stats(0.85)}}}
    df = E.results_table(res)
    assert list(df.index) == ["b", "a", "ensemble", "naive"]     # ranked, references last
    assert list(df.columns) == ["all", "form"]
    assert df.loc["b", "all"] == "0.950(10)" and df.loc["b", "form"] == "--"
    assert list(E.results_table(res, sort_by="form").index)[:2] == ["a", "b"]  # missing last
    md = E.to_markdown(df)
    assert md.splitlines()[0] == "| model | all | form |"
    assert "| b | 0.950(10) | -- |" in md
    lt = E.long_table(res)
    assert len(lt) == 6 and set(lt.columns) >= {"model", "task", "metric", "point", "formatted"}


# --------------------------------------------------------------------------- plots

def _is_png(path, min_bytes=3000):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes


def test_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random((60, 3)) < 0.4).astype(int)
    p = np.clip(y * 0.3 + rng.random((60, 3)) * 0.7, 0, 1)
    res = {"m1": {"all": {"macro_auc": _stats(0.9)}, "form": {"macro_auc": _stats(0.8)}},
           "m2": {"all": {"macro_auc": _stats(0.92, 0.02)}}}
    assert _is_png(E.plot_ci_bars(res, tmp_path / "bars.png"))
    assert _is_png(E.plot_roc_curves(y, p, ["A", "B", "C"], tmp_path / "roc.png"))
    hist = pd.DataFrame({"epoch": range(5), "loss": np.linspace(1, 0.5, 5),
                         "val_loss": np.linspace(1.1, 0.7, 5), "lr": np.logspace(-3, -2, 5),
                         "val_auc": np.linspace(0.6, 0.8, 5)})
    hist.to_csv(tmp_path / "history.csv", index=False)
    assert _is_png(E.plot_history(tmp_path / "history.csv", tmp_path / "hist.png"))


# --------------------------------------------------------------------------- hierarchy

MAPPING = {"AMI": ("AMI", "MI"), "IMI": ("IMI", "MI"), "LAFB": ("LAFB/LPFB", "CD"),
           "LPFB": ("LAFB/LPFB", "CD"), "NORM": ("NORM", "NORM")}
H_CLASSES = ["AMI", "IMI", "LAFB", "LPFB", "NORM"]


def test_propagate_sum_clipped():
    p = np.array([[0.6, 0.7, 0.2, 0.1, 0.05],
                  [0.1, 0.2, 0.3, 0.3, 0.9]])
    sup, names = E.propagate(p, H_CLASSES, MAPPING, "superdiagnostic")
    assert names == ["CD", "MI", "NORM"]
    # row 0: CD = 0.2+0.1 = 0.3, MI = min(0.6+0.7, 1) = 1, NORM = 0.05
    # row 1: CD = 0.6, MI = 0.3, NORM = 0.9
    np.testing.assert_allclose(sup, [[0.3, 1.0, 0.05], [0.6, 0.3, 0.9]])
    sub, names = E.propagate(p, H_CLASSES, MAPPING, "subclass")
    assert names == ["AMI", "IMI", "LAFB/LPFB", "NORM"]
    np.testing.assert_allclose(sub, [[0.6, 0.7, 0.3, 0.05], [0.1, 0.2, 0.6, 0.9]])
    # the scp_statements.csv DataFrame form gives the same result
    df = pd.DataFrame({"diagnostic": [1, 1, 1, 1, 1, np.nan],
                       "diagnostic_subclass": [v[0] for v in MAPPING.values()] + [np.nan],
                       "diagnostic_class": [v[1] for v in MAPPING.values()] + [np.nan]},
                      index=list(MAPPING) + ["SR"])
    np.testing.assert_allclose(E.propagate(p, H_CLASSES, df, "class")[0], sup)


def test_node_auc_table():
    rng = np.random.default_rng(4)
    y = np.zeros((40, 5), dtype=int)
    y[np.arange(40), rng.integers(0, 5, 40)] = 1
    y[:5] = [1, 0, 0, 0, 0]
    y[5:10] = [0, 0, 0, 0, 1]
    y[10:14] = [0, 0, 1, 0, 0]
    y[14:18] = [0, 0, 0, 1, 0]
    y[18:22] = [0, 1, 0, 0, 0]
    p = rng.random((40, 5))
    tab = E.node_auc_table(y, p, H_CLASSES, MAPPING)
    assert list(tab.level.unique()) == ["diagnostic", "subdiagnostic", "superdiagnostic"]
    row = tab[(tab.level == "superdiagnostic") & (tab.node == "MI")].iloc[0]
    y_mi = y[:, :2].max(axis=1)
    p_mi = np.clip(p[:, :2].sum(axis=1), 0, 1)
    assert row.auc == pytest.approx(roc_auc_score(y_mi, p_mi)) and row.n_pos == y_mi.sum()
    assert tab[(tab.level == "diagnostic") & (tab.node == "LAFB")].parent.item() == "LAFB/LPFB"
    assert tab[(tab.level == "subdiagnostic") & (tab.node == "LAFB/LPFB")].parent.item() == "CD"


def test_roc_points_hand_case():
    from ecg_keras.evaluation.plots import roc_points
    # scores 0.9(+) 0.7(-) 0.7(+) 0.2(-): distinct thresholds 0.9, 0.7, 0.2
    # >=0.9: tp 1/2 fp 0; >=0.7: tp 2/2 fp 1/2; >=0.2: tp 1 fp 1
    fpr, tpr = roc_points([1, 0, 1, 0], [0.9, 0.7, 0.7, 0.2])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])

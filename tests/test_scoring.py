"""The public scoring API (ecg_keras.evaluation.scoring) on small arrays: split metrics per task
kind, scorable classes, ensembles of aligned runs, stored resamples reused, one set of resamples
for every model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ecg_keras import tasks
from ecg_keras.evaluation import scoring
from ecg_keras.runs import Predictions


def _labels(n=40, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.4).astype(np.float32)
    y[np.arange(n), rng.integers(0, c, n)] = 1  # every record has a label (the challenge metrics need one)
    y[0], y[1] = 1, [1, 0, 0]  # every class has a positive and a negative
    y[2] = [0, 1, 0]
    return y


def test_split_metrics_per_kind_and_headline():
    y = _labels()
    perfect = scoring.split_metrics(tasks.MULTILABEL, y, y)
    assert perfect["macro_auc"] == pytest.approx(1.0) and perfect["fmax"] == pytest.approx(1.0)
    y[:, 2] = 0  # a class without positives is left out of the macro AUC and counted
    partial = scoring.split_metrics(tasks.MULTILABEL, y, y)
    assert partial["classes_scored"] == 2 and partial["macro_auc"] == pytest.approx(1.0)
    binary = scoring.split_metrics(tasks.BINARY, y[:, :1], y[:, :1])
    assert binary["auc"] == binary["macro_auc"] == pytest.approx(1.0) and binary["accuracy"] == 1.0
    reg = scoring.split_metrics(tasks.REGRESSION, np.array([[1.0], [3.0]]), np.array([[2.0], [3.0]]))
    assert reg == {"mae": pytest.approx(0.5), "r2": pytest.approx(0.5)}
    assert scoring.headline_metric(tasks.REGRESSION) == "mae"
    assert scoring.headline_metric(tasks.MULTILABEL) == "macro_auc"
    assert scoring.scorable_classes(y).tolist() == [True, True, False]


def _run(name, arch, ids, y, pred):
    return SimpleNamespace(name=name, arch=arch, path=name, classes=["a", "b", "c"], history=None,
                           splits={"test": Predictions(ids, y, pred), "val": Predictions(ids, y, pred)})


def test_group_models_aligns_runs_and_adds_their_ensemble(tmp_path):
    y = _labels()
    ids = np.arange(len(y))
    rng = np.random.default_rng(1)
    p1, p2 = rng.random(y.shape), rng.random(y.shape)
    order = rng.permutation(len(y))  # the second run lists the same records in another order
    runs = [_run("m1", "fcn_wang", ids, y, p1), _run("m2", "lstm", ids[order], y[order], p2[order]),
            _run("naive", "naive", ids, y, np.full(y.shape, 0.4))]
    models = scoring.group_models(runs)
    assert [m.name for m in models] == ["m1", "m2", "naive", "ensemble"]
    np.testing.assert_allclose(models[-1].splits["test"].y_pred, (p1 + p2) / 2)  # naive left out
    assert models[-1].runs == ["m1", "m2"]
    sub = models[0].subset(scoring.scorable_classes(y[:, [0, 1, 1]] * [1, 1, 0]))
    assert sub.splits["test"].y_pred.shape == (len(y), 2)

    idx = scoring.stored_bootstrap(y, tasks.MULTILABEL, ids, 30, 0, tmp_path, "demo")
    assert idx.shape == (30, len(y)) and (tmp_path / "demo_ids.npy").is_file()
    again = scoring.stored_bootstrap(y, tasks.MULTILABEL, ids, 30, 99, tmp_path, "demo")
    np.testing.assert_array_equal(again, idx)  # same records and count: the stored resamples
    scored = scoring.score_models(models, y, idx, tasks.MULTILABEL, challenge=True)
    res, src = scored["m1"]
    assert src == "val" and {"macro_auc", "fmax", "F_beta", "G_beta"} <= set(res)
    assert res["macro_auc"]["lower"] <= res["macro_auc"]["point"] <= res["macro_auc"]["upper"]
    point_only, _ = scoring.score_models(models, y, None)["m2"]
    assert np.isnan(point_only["macro_auc"]["lower"]) and np.isfinite(point_only["macro_auc"]["point"])

"""Baselines: wavelet features (equal to the reference's loop implementation), the JSON scaler,
Wavelet+NN, naive prevalence, and the probability-averaging ensemble (numpy and one Keras model)."""
from __future__ import annotations

import time
from collections import Counter

import keras
import numpy as np
import pytest
import pywt
import scipy.stats
from sklearn.metrics import roc_auc_score

from ecg_keras import models
from ecg_keras.models import (
    FeatureScaler,
    NaiveBaseline,
    WaveletNN,
    average_probabilities,
    ensemble_model,
    wavelet_features,
)


def _reference_features(signal: np.ndarray) -> np.ndarray:
    """The benchmark's per-record loop (get_single_ecg_features), re-stated for comparison."""
    feats = []
    for channel in signal.T:
        for c in pywt.wavedec(channel, "db6", level=5):
            counts = Counter(c).most_common()
            entropy = scipy.stats.entropy([n / len(c) for _, n in counts])
            zc = len(np.nonzero(np.diff(c > 0))[0])
            mc = len(np.nonzero(np.diff(c > np.nanmean(c)))[0])
            stats = [np.nanpercentile(c, q) for q in (5, 25, 75, 95, 50)]
            stats += [np.nanmean(c), np.nanstd(c), np.nanvar(c), np.nanmean(np.sqrt(c ** 2))]
            feats += [entropy, zc, mc] + stats
    return np.asarray(feats)


def test_wavelet_features_equal_reference_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 1000, 12))
    x[0, :, 0] = np.round(x[0, :, 0], 1)  # repeated values exercise the entropy counting
    x[1, :, 3] = 0.0  # a flat lead
    got = wavelet_features(x, chunk_size=3)  # chunk boundary inside the batch
    want = np.stack([_reference_features(s) for s in x])
    assert got.shape == (4, 864) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_wavelet_features_are_fast():
    x = np.random.default_rng(1).normal(size=(1000, 1000, 12)).astype("float32")
    t = time.perf_counter()
    f = wavelet_features(x)
    elapsed = time.perf_counter() - t
    assert f.shape == (1000, 864) and np.isfinite(f).all()
    # ~1.5 s per 1000 records on one idle core, i.e. under a minute for PTB-XL's 21,837;
    # the bound is loose because the test machine is shared
    assert elapsed < 30, f"{elapsed:.1f} s for 1000 records"


def test_feature_scaler_json_round_trip():
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(50, 7))
    x[:, 4] = 1.0  # constant feature: scale 1, as sklearn
    sc = FeatureScaler().fit(x)
    z = sc.transform(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(np.delete(z.std(0), 4), 1, atol=1e-5)
    np.testing.assert_array_equal(FeatureScaler.from_json(sc.to_json()).transform(x), z)


def test_naive_baseline_predicts_training_prevalence():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float32)
    nb = NaiveBaseline().fit(y)
    np.testing.assert_allclose(nb.prevalence, [0.5, 0.25, 1.0])
    p = nb.predict_proba(5)
    assert p.shape == (5, 3) and (p == nb.prevalence).all()
    assert nb.predict_proba(np.zeros((2, 10, 12))).shape == (2, 3)
    np.testing.assert_array_equal(NaiveBaseline.from_json(nb.to_json()).prevalence, nb.prevalence)
    y_test = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert roc_auc_score(y_test, NaiveBaseline().fit(y[:, :2]).predict_proba(4), average="macro") == 0.5


def test_average_probabilities():
    a, b = np.full((2, 3), 0.2), np.full((2, 3), 0.6)
    np.testing.assert_allclose(average_probabilities([a, b]), 0.4)
    np.testing.assert_allclose(average_probabilities([a, b], weights=[3, 1]), 0.3)
    with pytest.raises(ValueError):
        average_probabilities([a, np.zeros((3, 3))])


def test_ensemble_is_one_keras_model_of_mean_probabilities(tmp_path):
    members = [models.get("fcn_wang", num_classes=4), models.get("resnet1d_wang", num_classes=4),
               models.get("fcn_wang", num_classes=4, input_shape=(250, 12))]
    ens = ensemble_model(members, name="ens")
    assert tuple(ens.inputs[0].shape[1:]) == (250, 12)  # a fixed-length member fixes the length
    x = np.random.default_rng(3).normal(size=(2, 250, 12)).astype("float32")

    def run(m):
        return keras.ops.convert_to_numpy(m(x, training=False)).astype(np.float64)

    probs = [1 / (1 + np.exp(-run(m))) for m in members]
    out = run(ens)
    np.testing.assert_allclose(out, average_probabilities(probs), rtol=1e-5, atol=1e-6)
    assert ((out > 0) & (out < 1)).all()
    ens.save(tmp_path / "ens.keras")
    loaded = keras.models.load_model(tmp_path / "ens.keras")
    assert np.max(np.abs(run(loaded) - out)) < 1e-6
    with pytest.raises(ValueError):
        ensemble_model([members[0], models.get("fcn_wang", num_classes=3)])


@pytest.fixture(scope="module")
def synthetic_rhythm(tmp_path_factory):
    from ecg_keras.datasets import load_ptbxl, make_task, split
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

    root = generate_synthetic_ptbxl(tmp_path_factory.mktemp("synth"), n_records=600, seed=0,
                                    sampling_rates=(100,))
    return split(make_task(load_ptbxl(root, sampling_rate=100, cache_dir=False), "rhythm"))


def test_wavelet_nn_beats_naive_on_synthetic_rhythm(synthetic_rhythm, tmp_path):
    sp = synthetic_rhythm
    wnn = WaveletNN(num_classes=sp.train.y.shape[1], seed=0)
    wnn.fit(sp.train.signals, sp.train.y, sp.val.signals, sp.val.y)
    assert wnn.model.count_params() == 864 * 128 + 128 + 128 * sp.train.y.shape[1] + sp.train.y.shape[1]
    p_wnn = wnn.predict_proba(sp.test.signals)
    p_naive = NaiveBaseline().fit(sp.train.y).predict_proba(len(sp.test.y))
    pos = sp.test.y.sum(0)
    ok = (pos > 0) & (pos < len(sp.test.y))  # AUC is defined for these classes
    assert ok.sum() >= 2
    auc_wnn = roc_auc_score(sp.test.y[:, ok], p_wnn[:, ok], average="macro")
    auc_naive = roc_auc_score(sp.test.y[:, ok], p_naive[:, ok], average="macro")
    assert auc_naive == pytest.approx(0.5)
    assert auc_wnn > auc_naive + 0.1, (auc_wnn, auc_naive)
    assert 0 <= wnn.best_epoch < 30
    # save / load: Keras model + JSON scaler (no pickle), identical probabilities
    wnn.save(tmp_path / "wnn")
    assert sorted(p.name for p in (tmp_path / "wnn").iterdir()) == [
        "config.json", "model.keras", "scaler.json"]
    f_test = wavelet_features(sp.test.signals)
    p2 = WaveletNN.load(tmp_path / "wnn").predict_proba(f_test, features=True)
    np.testing.assert_allclose(p2, p_wnn, atol=1e-6)

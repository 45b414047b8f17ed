import numpy as np
import pytest

from ecg_keras.standardize import Standardizer
from ecg_keras.windows import (aggregate, eval_dataset, eval_windows, steps_per_epoch, train_dataset,
                               window_length)


def _records(lengths, leads=12, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, leads)).astype(np.float32) for n in lengths]


def test_window_length_is_sampling_rate_aware():
    assert window_length(100) == 250
    assert window_length(500) == 1250


def test_ten_second_record_at_100hz_gives_seven_windows():
    x = _records([1000])
    windows, rec = eval_windows(x, sampling_rate=100)
    assert windows.shape == (7, 250, 12)
    assert rec.tolist() == [0] * 7
    # windows start at 0, 125, ..., 750 and are exact slices
    np.testing.assert_array_equal(windows[3], x[0][375:625])
    np.testing.assert_array_equal(windows[-1], x[0][750:1000])


def test_500hz_windows_and_variable_lengths():
    x = _records([5000, 6000, 7499])
    windows, rec = eval_windows(x, sampling_rate=500)
    assert windows.shape[1:] == (1250, 12)
    # (L - 1250) // 625 + 1 windows per record: 7, 8, 10
    assert np.bincount(rec).tolist() == [7, 8, 10]


def test_short_record_is_zero_padded_to_one_window():
    x = _records([100, 1000])
    windows, rec = eval_windows(x, sampling_rate=100)
    assert np.bincount(rec).tolist() == [1, 7]
    np.testing.assert_array_equal(windows[0, :100], x[0])
    assert (windows[0, 100:] == 0).all()
    xb, yb = next(iter(train_dataset(x, np.eye(2), batch_size=2, epochs=1)))
    assert xb.shape == (2, 250, 12)


def test_aggregation_max_and_mean_one_row_per_record_in_order():
    preds = np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.3], [0.7, 0.1], [0.2, 0.4]])
    rec = np.array([0, 0, 1, 2, 2])
    np.testing.assert_allclose(aggregate(preds, rec, "max"), [[0.5, 0.9], [0.3, 0.3], [0.7, 0.4]])
    np.testing.assert_allclose(aggregate(preds, rec, "mean"), [[0.3, 0.55], [0.3, 0.3], [0.45, 0.25]])
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(preds, rec, "median")
    with pytest.raises(ValueError, match="without windows"):
        aggregate(preds, rec, "max", n_records=4)


def test_eval_dataset_matches_numpy_windows_and_standardises():
    x = _records([1000, 640])
    std = Standardizer.fit(x)
    ds, rec = eval_dataset(x, batch_size=4, standardizer=std)
    got = np.concatenate([b.numpy() for b in ds])
    expected, rec_np = eval_windows(x, standardizer=std)
    np.testing.assert_array_equal(rec, rec_np)
    np.testing.assert_allclose(got, expected)
    assert abs(float(got.mean())) < 0.2


def test_train_dataset_one_crop_per_record_per_epoch_deterministic_and_resumable():
    n = 10
    x = [np.tile(np.arange(1000, dtype=np.float32)[:, None] + 10_000 * i, (1, 12)) for i in range(n)]
    y = np.arange(n, dtype=np.float32)[:, None]
    ds = train_dataset(x, y, batch_size=4, seed=3, epochs=3)
    batches = [(xb.numpy(), yb.numpy()) for xb, yb in ds]
    assert len(batches) == 3 * steps_per_epoch(n, 4)
    for e in range(3):
        ep = batches[e * 3:(e + 1) * 3]
        labels = np.concatenate([b[1][:, 0] for b in ep])
        assert sorted(labels.tolist()) == list(range(n))  # every record exactly once
        for xb, yb in ep:
            rec = (xb[:, 0, 0] // 10_000).astype(int)
            np.testing.assert_array_equal(rec, yb[:, 0])  # crop belongs to its label's record
            start = xb[:, 0, 0] - 10_000 * rec
            np.testing.assert_array_equal(xb[:, :, 0], start[:, None] + rec[:, None] * 10_000 + np.arange(250))
            assert ((start >= 0) & (start <= 750)).all()
    # different epochs use different orders/crops; a resumed pipeline replays epochs 1-2 exactly
    assert not np.array_equal(batches[0][0], batches[3][0])
    resumed = [(xb.numpy(), yb.numpy()) for xb, yb in train_dataset(x, y, batch_size=4, seed=3, epochs=3,
                                                                     initial_epoch=1)]
    for (a, b), (c, d) in zip(batches[3:], resumed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    other_seed = next(iter(train_dataset(x, y, batch_size=4, seed=4, epochs=1)))[0].numpy()
    assert not np.array_equal(other_seed, batches[0][0])


def test_train_dataset_rejects_nan_and_mixed_leads():
    x = _records([1000, 1000])
    x[1][5, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_dataset(x, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="lead"):
        train_dataset([np.zeros((1000, 12)), np.zeros((1000, 8))], np.zeros((2, 1)))


def test_standardizer_is_one_scalar_over_all_leads_and_roundtrips(tmp_path):
    x = np.stack([np.full((1000, 12), 2.0), np.full((1000, 12), 4.0)]).astype(np.float32)
    std = Standardizer.fit(x)
    assert std.mean == pytest.approx(3.0) and std.std == pytest.approx(1.0)
    assert Standardizer.fit([x[0], x[1][:500], x[1][500:]]) == std
    loaded = Standardizer.load(std.save(tmp_path / "standardizer.json"))
    assert loaded == std
    np.testing.assert_allclose(loaded.transform(x)[:, 0, 0], [-1.0, 1.0])
    with pytest.raises(ValueError, match="constant"):
        Standardizer.fit(np.ones((2, 10, 12)))

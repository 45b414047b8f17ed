"""Training augmentations: names, determinism (seed, resume), and the effect of each one."""
from __future__ import annotations

import numpy as np
import pytest

from ecg_keras import augment
from ecg_keras.standardize import Standardizer
from ecg_keras.training.config import TrainConfig
from ecg_keras.windows import train_dataset

FS = 100
RNG = np.random.default_rng(0)
T = np.arange(1000) / FS
# 20 records: a 1.2 Hz "ECG" (sharp peaks) on 12 leads with different gains, in mV
SIGNALS = [(np.sin(2 * np.pi * 1.2 * T + i)[:, None] ** 15 * np.linspace(0.5, 1.5, 12)[None, :]).astype(np.float32)
           for i in range(20)]
Y = np.eye(2, dtype=np.float32)[RNG.integers(0, 2, 20)]
STD = Standardizer(mean=0.0, std=0.5)


def batches(names, seed=1, initial_epoch=0, epochs=2):
    ds = train_dataset(SIGNALS, Y, batch_size=8, sampling_rate=FS, standardizer=STD, seed=seed, epochs=epochs,
                       initial_epoch=initial_epoch, augment=names)
    return [x.numpy() for x, _ in ds]


def test_parse():
    assert augment.parse("noise, Amplitude") == ("amplitude", "noise")
    assert augment.parse("") == augment.parse("none") == augment.parse(None) == ()
    assert augment.parse("all") == augment.NAMES
    with pytest.raises(ValueError, match="unknown augmentation.*jitter"):
        augment.parse("noise,jitter")
    assert TrainConfig(augment="noise,amplitude").augment == "amplitude,noise"
    assert TrainConfig().augment == ""  # off by default: the paper's protocol
    with pytest.raises(ValueError, match="unknown augmentation"):
        TrainConfig(augment="mixup")


def test_cli_rejects_unknown_names(capsys):
    from ecg_keras.cli.train import main

    assert main(["--dataset", "synthetic", "--augment", "mixup"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown augmentation(s) mixup")


def test_deterministic_per_seed_and_resumable():
    a, b = batches("all"), batches("all")
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    resumed = batches("all", initial_epoch=1)  # epoch 2 alone = epoch 2 of the uninterrupted run
    assert len(a) == 6 and len(resumed) == 3 and all(np.array_equal(p, q) for p, q in zip(a[3:], resumed))
    assert not np.allclose(a[0], batches("", epochs=1)[0])


def test_each_augmentation_has_its_effect():
    import tensorflow as tf

    plain = STD.transform(np.stack([s[:250] for s in SIGNALS]))
    key = tf.constant([1, 2], tf.int64)

    def run(name, k=key):
        return augment.augment_batch(tf.constant(plain), k, name, sampling_rate=FS, scale=STD.std).numpy()

    got = {n: run(n) for n in augment.NAMES}
    assert np.array_equal(got["noise"], run("noise")) and not np.allclose(got["noise"], run("noise", key + 1))
    diff = {n: got[n] - plain for n in augment.NAMES}
    # amplitude: a gain per example and lead; the ratio to the clean window is constant in time
    ratio = got["amplitude"][..., 5] / np.where(np.abs(plain[..., 5]) > 0.5, plain[..., 5], np.nan)
    assert np.nanstd(ratio, axis=1).max() < 1e-4 and np.nanstd(np.nanmean(ratio, axis=1)) > 0.1
    # baseline: slow (changes little from sample to sample) and up to ~0.25 mV = 0.5 units
    assert 0.05 < np.abs(diff["baseline"]).mean() < 1.5
    assert np.abs(np.diff(diff["baseline"], axis=1)).max() < 0.05
    # noise: fast, small (40 uV white + 30 uV hum at most = 0.14 units sd)
    assert 0.0 < diff["noise"].std() < 0.15 and np.abs(np.diff(diff["noise"], axis=1)).mean() > 0.005
    # timewarp: the same waveform resampled: same range, not the same samples
    assert np.abs(got["timewarp"]).max() <= np.abs(plain).max() + 1e-5 and np.abs(diff["timewarp"]).max() > 0.05
    # leaddrop: whole leads zeroed (about 10 %), the others untouched
    dropped = np.all(got["leaddrop"] == 0, axis=1)
    kept = np.all(np.abs(diff["leaddrop"]) < 1e-6, axis=1)
    assert (dropped | kept).all() and 0.02 < dropped.mean() < 0.25

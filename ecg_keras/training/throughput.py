"""Training throughput (windows/s) of an architecture, with or without XLA, and of the input pipeline.

    python -m ecg_keras.cli.throughput train --arch resnet1d_wang --no-jit
    python -m ecg_keras.cli.throughput train --arch xresnet1d101 --jit --steps 20
    python -m ecg_keras.cli.throughput train --pipeline          # train_dataset alone
    python -m ecg_keras.cli.throughput train --arch fcn_wang --precision mixed_bfloat16

The train step runs ``model.fit`` on one cached random batch (so only the model is timed), with
the same compile settings as ``train`` (AdamW one-cycle, BCE on logits); ``warmup`` steps
(tracing/compilation) are excluded, and steps are timed between batch ends. The pipeline
figure iterates ``windows.train_dataset`` over random 10-s records. Both report the median of
``repeats`` timings.
"""
from __future__ import annotations

import os
import time

from ecg_keras.preprocessing import WINDOW_SECONDS, window_length

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train_step_throughput(arch: str, jit: bool, batch_size: int = 128, steps: int = 20, warmup: int = 5,
                          repeats: int = 1, num_classes: int = 71, sampling_rate: int = 100, seed: int = 0,
                          precision: str = "float32", window_seconds: float = WINDOW_SECONDS) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from ecg_keras.tasks import MULTILABEL
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.lifecycle import build_model, compile_model, set_seed
    from ecg_keras.training.precision import policy
    from ecg_keras.training.schedule import OneCycleMomentum

    set_seed(seed, deterministic=False)
    window = window_length(sampling_rate, window_seconds)
    cfg = TrainConfig(arch=arch, jit=jit, deterministic=False, precision=precision).resolved()
    with policy(precision):
        model = build_model(cfg, num_classes, (window, 12))
        schedule = compile_model(model, cfg, MULTILABEL, total_steps=10 * (steps + warmup) * (repeats + 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch_size, window, 12)).astype(np.float32)
    y = (rng.random((batch_size, num_classes)) < 0.1).astype(np.float32)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    ends: list[float] = []
    cb = [OneCycleMomentum(schedule),
          keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: ends.append(time.perf_counter()))]
    model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0, callbacks=cb, shuffle=False)
    times = []
    for _ in range(repeats):
        ends.clear()
        model.fit(ds, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=cb, shuffle=False)
        # between batch ends only: fit() also sets up and tears down its data iterator, which can
        # take seconds (a wait after the last step), and is not part of a training step
        times.append(ends[-1] - ends[0])
    sec = float(np.median(times))
    return {"what": "train_step", "arch": arch, "jit": jit, "precision": precision, "batch_size": batch_size,
            "window": window, "steps": steps,
            "seconds": round(sec, 3), "windows_per_s": round(steps * batch_size / sec, 1),
            "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)), "keras": keras.__version__}


def pipeline_throughput(n_records: int = 2000, batch_size: int = 128, steps: int = 200, repeats: int = 3,
                        sampling_rate: int = 100, seed: int = 0, window_seconds: float = WINDOW_SECONDS) -> dict:
    import numpy as np

    from ecg_keras.standardize import Standardizer
    from ecg_keras.windows import train_dataset

    rng = np.random.default_rng(seed)
    signals = rng.normal(size=(n_records, 10 * sampling_rate, 12)).astype(np.float32)
    y = (rng.random((n_records, 71)) < 0.1).astype(np.float32)
    window = window_length(sampling_rate, window_seconds)
    ds = train_dataset(signals, y, batch_size=batch_size, sampling_rate=sampling_rate, window=window,
                       standardizer=Standardizer.fit(signals), seed=seed)
    it = iter(ds)
    for _ in range(10):
        next(it)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = sum(int(next(it)[0].shape[0]) for _ in range(steps))
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    return {"what": "pipeline", "batch_size": batch_size, "window": window, "steps": steps, "seconds": round(sec, 3),
            "windows_per_s": round(n / sec, 1)}

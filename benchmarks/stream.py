"""Training input streamed from the signal cache against the previous in-memory pipeline.

    ecg-keras data synthetic --dest BIG --n-records 21837     # PTB-XL size, ~3.2 GB
    python -m benchmarks.stream --data-dir BIG --sampling-rate 500 --arch fcn_wang --records 4000
    /usr/bin/time -v python -m benchmarks.stream epoch --task all --arch probe_conv --epochs 1 \
        --data-dir BIG --sampling-rate 500 --output RUN          # train.py's arguments

``epoch`` runs ``train.py`` with one more architecture registered, ``probe_conv`` (one 16-filter
convolution, ~1.6k parameters): the whole data path of a run (loading, splits, standardiser,
fingerprint, an epoch of streamed windows, validation, test predictions) at a fraction of a real
network's arithmetic, for peak-memory measurements on a busy machine.

Both pipelines feed one compiled model (``training.loop.build_model`` + ``compile_model``) with
the same records: the first ``--records`` records of the set, a :class:`RecordView` of the signal
cache. ``in-memory`` is the pipeline ``windows.train_dataset`` had before it streamed: every record
standardised, concatenated and handed to ``tf.constant``, windows cut by ``tf.gather``.
``streamed`` is ``windows.train_dataset`` (windows read per batch from the cache file). Reported:
the time to the first batch (building the pipeline included) and, for ``--rounds`` rounds taken in
turn, training steps/s over ``--steps`` steps (``train_on_batch`` on the next batch of the
pipeline), median per pipeline and the ratio streamed / in-memory. Peak memory is measured per
whole command with ``/usr/bin/time -v`` (docs/RESULTS.md section 13).
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
importlib.import_module("ecg_keras")  # before TF: the package's oneDNN default


def in_memory_dataset(signals, y, *, batch_size, window, standardizer, seed):
    """The pre-streaming ``windows.train_dataset`` (one copy of every record in a constant tensor)."""
    import numpy as np
    import tensorflow as tf

    records = [standardizer.transform(signals[i]) for i in range(len(signals))]
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    data = tf.constant(np.concatenate(records, axis=0))
    del records
    n = len(lengths)
    max_offset, labels = tf.constant(lengths - window + 1), tf.constant(np.asarray(y, np.float32))
    starts, offsets_range = tf.constant(starts), tf.range(window, dtype=tf.int64)

    def epoch_batches(epoch):
        key = tf.stack([tf.cast(seed, tf.int64), epoch])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=key))
        u = tf.random.stateless_uniform([n], seed=key + tf.constant([0, 1_000_003], tf.int64), dtype=tf.float64)
        return tf.data.Dataset.from_tensor_slices((order, u)).batch(batch_size)

    def crop(idx, u):
        idx = tf.cast(idx, tf.int64)
        pos = tf.cast(tf.floor(u * tf.cast(tf.gather(max_offset, idx), tf.float64)), tf.int64)
        rows = (tf.gather(starts, idx) + pos)[:, None] + offsets_range[None, :]
        return tf.gather(data, rows), tf.gather(labels, idx)

    return (tf.data.Dataset.range(0, 2**62).flat_map(epoch_batches)
            .map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE))


def register_probe() -> None:
    """Register ``probe_conv`` (once)."""
    import keras

    from ecg_keras import models

    if "probe_conv" in models.list_models():
        return

    @models.register("probe_conv")
    def probe_conv(num_classes=5, input_shape=None, include_top=True, pooling=None, name="probe_conv", **kw):
        inputs = keras.Input(input_shape or (None, 12))
        x = keras.layers.Conv1D(16, 7, strides=4, activation="relu", name="conv")(inputs)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes, name="head_out")(x), name=name)


def epoch(argv) -> int:
    """``train.py argv`` with ``probe_conv`` registered."""
    from ecg_keras.cli.train import main as train_main

    register_probe()
    return train_main(argv)


def main(argv=None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["epoch"]:
        return epoch(argv[1:])
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--sampling-rate", type=int, default=100)
    p.add_argument("--arch", default="fcn_wang", help="any registered model, or probe_conv (see above)")
    p.add_argument("--records", type=int, default=4000, help="records both pipelines use (default 4000)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed steps per turn (default 10)")
    p.add_argument("--rounds", type=int, default=5, help="turns per pipeline (default 5)")
    ns = p.parse_args(argv)

    import numpy as np

    from ecg_keras.datasets.base import RecordView
    from ecg_keras.datasets.ptbxl import load_ptbxl
    from ecg_keras.standardize import Standardizer
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.loop import build_model, compile_model, set_seed
    from ecg_keras.windows import train_dataset, window_length

    register_probe()
    records = load_ptbxl(ns.data_dir, sampling_rate=ns.sampling_rate)
    signals = RecordView(records.signals, np.arange(min(ns.records, len(records.signals))))
    window, n = window_length(ns.sampling_rate), len(signals)
    y = np.random.default_rng(0).integers(0, 2, (n, 71)).astype(np.float32)
    standardizer = Standardizer.fit(signals)
    set_seed(0, deterministic=True)
    cfg = TrainConfig(arch=ns.arch, batch_size=ns.batch_size).resolved()
    model = build_model(cfg, 71, (window, 12))
    compile_model(model, cfg, "multilabel", 10**6)
    makers = {
        "in-memory": lambda: in_memory_dataset(signals, y, batch_size=ns.batch_size, window=window,
                                               standardizer=standardizer, seed=0),
        "streamed": lambda: train_dataset(signals, y, batch_size=ns.batch_size, window=window,
                                          standardizer=standardizer, seed=0),
    }
    iterators, first = {}, {}
    for name, make in makers.items():
        t0 = time.perf_counter()
        iterators[name] = iter(make())
        next(iterators[name])
        first[name] = time.perf_counter() - t0
        model.train_on_batch(*next(iterators[name]))  # warm-up
    rates = {name: [] for name in makers}
    for _ in range(ns.rounds):
        for name, it in iterators.items():
            t0 = time.perf_counter()
            for _ in range(ns.steps):
                model.train_on_batch(*next(it))
            rates[name].append(ns.steps / (time.perf_counter() - t0))
    print(f"{ns.arch}, {ns.sampling_rate} Hz, {n} records ({signals.nbytes / 1e9:.2f} GB float32), batch "
          f"{ns.batch_size}, {ns.rounds} rounds x {ns.steps} steps in turn")
    for name in makers:
        print(f"  {name:<10} first batch {first[name]:6.2f} s; steps/s median {statistics.median(rates[name]):.3f} "
              f"(all: {', '.join(f'{r:.3f}' for r in rates[name])})")
    ratio = statistics.median(rates["streamed"]) / statistics.median(rates["in-memory"])
    print(f"  streamed / in-memory steps/s: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

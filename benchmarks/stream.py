"""Training input streamed from the signal cache against the previous in-memory pipeline.

    ecg-keras data synthetic --dest BIG --n-records 21837     # PTB-XL size, ~3.2 GB
    python -m benchmarks.stream --data-dir BIG --sampling-rate 500 --arch fcn_wang --records 2000 --rounds 16 \
        --steps 1 --supply 16
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
``streamed`` is ``windows.train_dataset`` (windows read per batch from the cache file).

Made to give an answer on a busy machine, where wall time is mostly other processes' doing:

* ``--rounds`` rounds of one turn per pipeline, ``--steps`` training steps each (``train_on_batch``
  on the pipeline's next batch), in ABBA order (in-memory first in even rounds, streamed first in
  odd ones), so a drift of the load hits both alike. Each round gives a ratio streamed /
  in-memory of steps/s; reported: median, quartiles and range over the rounds.
* The CPU time (user + system, all threads of the process) of every turn, per step: nearly
  independent of other processes, and on a machine whose cores the training step saturates it
  is what decides steps/s (input work in the background takes cores from the step). Split into
  the training threads (those running before the pipelines are built: the main thread and
  TensorFlow's op thread pools, where the network's kernels run) and the rest (threads tf.data
  starts for the pipelines: reading, standardising and cutting windows).
* ``--supply`` batches drawn from each pipeline alone (no training; after as many unmeasured
  ones, which empty the buffers filled during the training turns), taken in turn
  ``--supply-rounds`` times: windows/s and CPU ms per batch of the input pipeline itself, to set
  against what a training step consumes.

The time to the first batch (building the pipeline included) is reported too. Peak memory is
measured per whole command with ``/usr/bin/time -v`` (docs/RESULTS.md section 13).
"""
from __future__ import annotations

import argparse
import datetime as _dt
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


PIPELINES = ("in-memory", "streamed")


def threads() -> frozenset[int]:
    """Ids of this process's live threads (empty where /proc is missing)."""
    try:
        return frozenset(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:
        return frozenset()


def cpu_split(training_threads=frozenset()) -> tuple[float, float]:
    """(CPU seconds of the whole process, of its live ``training_threads``): user + system.

    The process total is exact (``time.process_time``); per-thread figures come from
    /proc/self/task in clock ticks (10 ms).
    """
    total, part = time.process_time(), 0.0
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for tid in training_threads:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        part += (int(fields[11]) + int(fields[12])) / tick
    return total, part


def timed(fn, n: int, training_threads=frozenset()) -> dict:
    """Call ``fn`` ``n`` times: wall seconds, CPU seconds of the process and of ``training_threads``."""
    c0, k0 = cpu_split(training_threads)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    wall = time.perf_counter() - t0
    c1, k1 = cpu_split(training_threads)
    return {"n": n, "wall": wall, "cpu": c1 - c0, "compute": k1 - k0}


def turn_order(rounds: int, names=PIPELINES) -> list[tuple[int, str]]:
    """ABBA: (round, pipeline) in the order they run, the first pipeline first in even rounds."""
    order = []
    for r in range(rounds):
        order += [(r, name) for name in (names if r % 2 == 0 else names[::-1])]
    return order


def spread(values) -> dict:
    """Median, quartiles and range of ``values``."""
    values = sorted(values)
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "q1": q[0], "q3": q[2], "min": values[0], "max": values[-1]}


def summarize(turns: dict) -> dict:
    """Per-pipeline medians and per-round ratios streamed / in-memory from ``turns[name]`` (one
    :func:`timed` record per round, in round order)."""
    out = {}
    for name in PIPELINES:
        t = turns[name]
        out[name] = {"steps_per_s": spread([x["n"] / x["wall"] for x in t]),
                     "cpu_per_step": spread([x["cpu"] / x["n"] for x in t]),
                     "compute_per_step": spread([x["compute"] / x["n"] for x in t]),
                     "other_per_step": spread([(x["cpu"] - x["compute"]) / x["n"] for x in t])}
    a, b = turns["in-memory"], turns["streamed"]
    out["ratio_steps_per_s"] = spread([(s["n"] / s["wall"]) / (m["n"] / m["wall"]) for m, s in zip(a, b)])
    out["ratio_cpu_per_step"] = spread([(s["cpu"] / s["n"]) / (m["cpu"] / m["n"]) for m, s in zip(a, b)])
    out["ratio_of_median_steps_per_s"] = (out["streamed"]["steps_per_s"]["median"]
                                          / out["in-memory"]["steps_per_s"]["median"])
    out["ratio_of_median_cpu_per_step"] = (out["streamed"]["cpu_per_step"]["median"]
                                           / out["in-memory"]["cpu_per_step"]["median"])
    return out


def _fmt(s: dict, scale: float = 1.0, digits: int = 3) -> str:
    f = f"{{:.{digits}f}}"
    return (f"{f.format(s['median'] * scale)} (quartiles {f.format(s['q1'] * scale)}-{f.format(s['q3'] * scale)}, "
            f"range {f.format(s['min'] * scale)}-{f.format(s['max'] * scale)})")


def report(summary: dict, supply: dict | None = None) -> str:
    lines = []
    for name in PIPELINES:
        s = summary[name]
        lines.append(f"  {name:<10} steps/s {_fmt(s['steps_per_s'])}")
        lines.append(f"  {'':<10} CPU s/step {_fmt(s['cpu_per_step'])}: training threads "
                     f"{s['compute_per_step']['median']:.3f}, input threads {s['other_per_step']['median']:.3f}")
    lines.append(f"  streamed / in-memory, per round: steps/s {_fmt(summary['ratio_steps_per_s'])}")
    lines.append(f"  {'':<33} CPU s/step {_fmt(summary['ratio_cpu_per_step'])}")
    lines.append(f"  streamed / in-memory, of the medians: steps/s {summary['ratio_of_median_steps_per_s']:.3f}, "
                 f"CPU s/step {summary['ratio_of_median_cpu_per_step']:.3f}")
    if supply:
        for name in PIPELINES:
            rate, cpu = spread([x["windows"] / x["wall"] for x in supply[name]]), spread(
                [x["cpu"] / x["n"] for x in supply[name]])
            lines.append(f"  input alone, {name:<10} windows/s {_fmt(rate, 1, 0)}; CPU ms/batch {_fmt(cpu, 1e3, 1)}")
    return "\n".join(lines)


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
    p.add_argument("--steps", type=int, default=2, help="training steps per turn (default 2)")
    p.add_argument("--rounds", type=int, default=10, help="turns per pipeline, in ABBA order (default 10)")
    p.add_argument("--supply", type=int, default=0,
                   help="batches per turn of the input pipelines alone, no training (default 0: not measured)")
    p.add_argument("--supply-rounds", type=int, default=3, help="turns per pipeline of --supply (default 3)")
    ns = p.parse_args(argv)

    import numpy as np

    from benchmarks.run import cpu_info, isa_summary
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
    cpu = cpu_info()
    print(f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu['cpu_model']} ({isa_summary(cpu['isa'])}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    model.train_on_batch(np.zeros((ns.batch_size, window, 12), np.float32), y[:ns.batch_size])
    training_threads = threads()  # main thread and TensorFlow's op pools, started by the first step
    iterators, first = {}, {}
    for name, make in makers.items():
        t0 = time.perf_counter()
        iterators[name] = iter(make())
        next(iterators[name])
        first[name] = time.perf_counter() - t0
        model.train_on_batch(*next(iterators[name]))  # warm-up
    turns = {name: [] for name in makers}
    for r, name in turn_order(ns.rounds):
        it = iterators[name]
        turns[name].append(timed(lambda: model.train_on_batch(*next(it)), ns.steps, training_threads))
        x = turns[name][-1]
        print(f"  round {r} {name:<10} {x['n'] / x['wall']:.3f} steps/s, CPU {x['cpu'] / x['n']:.3f} s/step",
              flush=True)
    supply = {name: [] for name in makers} if ns.supply else None
    for _, name in turn_order(ns.supply_rounds if ns.supply else 0):
        it = iterators[name]
        for _ in range(ns.supply):  # empties what was buffered during the other turns
            next(it)
        x = timed(lambda: next(it), ns.supply)
        supply[name].append(dict(x, windows=ns.supply * ns.batch_size))
    print(f"{ns.arch}, {ns.sampling_rate} Hz, {n} records ({signals.nbytes / 1e9:.2f} GB float32), batch "
          f"{ns.batch_size}, {ns.rounds} rounds x {ns.steps} steps per pipeline (ABBA), load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    for name in makers:
        print(f"  {name:<10} first batch {first[name]:6.2f} s")
    print(report(summarize(turns), supply))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())

"""Interleaved A/B comparison of training-step (and inference) speed in one process.

    python -m benchmarks.ab --arch lstm --variants default unroll xla bf16 --rounds 6
    python -m benchmarks.ab --arch fcn_wang --variants float32 bf16 --rounds 6 --infer

A variant is a comma-separated list of tokens applied to the architecture's training setup
(``ecg_keras.training``: ``build_model`` + ``compile_model``, i.e. one-cycle AdamW, the RNNs'
gradient clipping, BCE on logits):

* precision: ``float32`` (default), ``bf16`` (``mixed_bfloat16``), ``fp16`` (``mixed_float16``);
* XLA: ``xla`` (``jit_compile=True``; default: the architecture's default);
* recurrent layers (lstm, lstm_bidir, gru): ``unroll`` (``unroll=True`` for the zoo's
  ``models.rnn.RNN_LAYERS``; default: a ``tf.while_loop`` over the time steps);
* ``conv``: kernel-1 convolutions train through Keras's convolution (default: one matmul each,
  ``models.layers.PointwiseConv1D``);
* ``default``: the architecture's training setup as it is (float32).

Every variant is built and warmed up (first step, tracing), then the variants take turns, one
``train_on_batch`` step (optimizer included) on one fixed batch of windows each, for ``--rounds``
rounds, so that the shared machine's load affects them alike. ``--infer``: the same for
inference (``model(x, training=False)`` in a ``tf.function``, batch ``--infer-batch`` windows).
Reported: windows/s, median and best, and the ratio of medians to the first variant. TF op
determinism (the training default) is not enabled: under it Keras silently compiles without XLA.
"""
from __future__ import annotations

import argparse
import importlib
import functools
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
importlib.import_module("ecg_keras")  # before TF: the package's oneDNN default

TOKENS = ("default", "float32", "bf16", "fp16", "xla", "unroll", "conv")
MATMUL = "matmul"
PRECISION = {"float32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def build(arch: str, variant: str, batch_size: int = 128, window: int = 250):
    """The compiled training model of ``arch`` for one variant (tokens as in the module docstring)."""
    import keras

    from ecg_keras.models import layers as model_layers, rnn
    from ecg_keras.training import precision
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.lifecycle import build_model, compile_model

    tokens = set(variant.split(","))
    unknown = tokens - set(TOKENS)
    if unknown:
        raise ValueError(f"unknown variant token(s) {sorted(unknown)}; choose from {', '.join(TOKENS)}")
    prec = [PRECISION[t] for t in tokens if t in PRECISION]
    cfg = TrainConfig(arch=arch, batch_size=batch_size, precision=prec[0] if prec else "float32",
                      **({"jit": True, "deterministic": False} if "xla" in tokens else {})).resolved()
    layers = dict(rnn.RNN_LAYERS)
    if "unroll" in tokens:
        layers = {k: functools.partial(v, unroll=True) for k, v in layers.items()}
    old = dict(rnn.RNN_LAYERS)
    rnn.RNN_LAYERS.update(layers)
    try:
        keras.utils.set_random_seed(0)
        with precision.policy(cfg.precision):
            model = build_model(cfg, 71, (window, 12))
            compile_model(model, cfg, "multilabel", total_steps=100_000)
    finally:
        rnn.RNN_LAYERS.update(old)
    if "conv" in tokens:
        for layer in model.layers:
            if isinstance(layer, model_layers.PointwiseConv1D):
                layer.use_matmul = False
    return model


def interleave(fns: dict, rounds: int, cpu: dict | None = None) -> dict:
    """Seconds per call of every function, called in turn ``rounds`` times (after one warm-up call).

    ``cpu``, when given, receives the process CPU seconds (user + sys, all threads) of every call.
    """
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - c0)
    return times


def report(title: str, times: dict, batch: int, cpu: dict | None = None) -> str:
    names = list(times)
    base = statistics.median(times[names[0]])
    lines = [title, f"{'variant':22s} {'win/s med':>9s} {'win/s best':>10s} {'x ' + names[0]:>16s}"
                    + (f" {'CPU ms/call':>11s} {'CPU x':>6s}" if cpu else "")]
    for name, t in times.items():
        med = statistics.median(t)
        line = f"{name:22s} {batch / med:9.1f} {batch / min(t):10.1f} {base / med:16.2f}"
        if cpu:
            c = statistics.median(cpu[name])
            line += f" {1e3 * c:11.1f} {statistics.median(cpu[names[0]]) / c:6.2f}"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    import numpy as np

    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="lstm")
    p.add_argument("--variants", nargs="+", default=["default", "bf16"])
    p.add_argument("--rounds", type=int, default=6, help="timed steps per variant (taken in turn)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--infer", action="store_true", help="also time inference (after training)")
    p.add_argument("--infer-batch", type=int, default=64)
    p.add_argument("--no-train", dest="train", action="store_false")
    p.add_argument("--peak", action="store_true",
                   help="also take a 2048x2048 float32 matmul in turn with the training steps and report each "
                        "variant's training FLOPs per CPU second as a %% of the matmul's")
    a = p.parse_args(argv)
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.batch_size, 250, 12)).astype(np.float32)
    y = (rng.random((a.batch_size, 71)) < 0.1).astype(np.float32)
    models = {}
    for v in a.variants:
        t0 = time.perf_counter()
        models[v] = build(a.arch, v, a.batch_size)
        print(f"{v:22s} built in {time.perf_counter() - t0:5.1f} s", flush=True)
    load = os.getloadavg()[0]
    head = f"{a.arch}, {a.rounds} rounds, load average {load:.1f} at start"
    if a.train:
        cpu = {}
        fns = {v: functools.partial(m.train_on_batch, x, y) for v, m in models.items()}
        if a.peak:
            n = 2048
            mm = tf.function(tf.matmul)
            ma, mb = tf.random.normal((n, n), seed=1), tf.random.normal((n, n), seed=2)
            fns[MATMUL] = lambda: [mm(ma, mb).numpy() for _ in range(4)]
        times = interleave(fns, a.rounds, cpu)
        peak = None
        if a.peak:
            peak = 4 * 2.0 * n**3 / statistics.median(cpu.pop(MATMUL)) / 1e9
            times.pop(MATMUL)
        print(report(f"\ntraining, batch {a.batch_size}; {head}, {os.getloadavg()[0]:.1f} at the end", times,
                     a.batch_size, cpu), flush=True)
        if peak:
            from benchmarks.flops import train_flops

            print(f"float32 matmul {n}x{n}: {peak:.1f} GFLOP per CPU second (median of {a.rounds}, taken in turn)")
            for v, m in models.items():
                gf = train_flops(m) * a.batch_size / statistics.median(cpu[v]) / 1e9
                print(f"{v:22s} {gf:6.1f} GFLOP per CPU second = {100 * gf / peak:4.0f} % of the matmul's")
    if a.infer:
        xi = tf.constant(x[:a.infer_batch])
        fns = {}
        for v, m in models.items():
            f = tf.function(functools.partial(m, training=False), jit_compile="xla" in v.split(",") or None)
            fns[v] = functools.partial(lambda f: f(xi).numpy(), f)
        times = interleave(fns, a.rounds)
        print(report(f"\ninference, batch {a.infer_batch} windows; {head}", times, a.infer_batch), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

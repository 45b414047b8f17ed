"""Interleaved A/B of whole-record ONNX models and ONNX Runtime session options in one process.

    python -m benchmarks.onnx_ab old.onnx new.onnx --sessions default package --rounds 8

Every (file, session) pair gets its own ``InferenceSession``; after one warm-up call each, the
pairs take turns (order reversed every other round), one ``run`` on the same random 10-s
records (``--batch`` records of 1000 x 12 at 100 Hz; the file decides the window count) per
turn. Sessions: ``default`` (``onnxruntime.InferenceSession`` with its defaults), ``package``
(:func:`ecg_keras.export.onnx.session_options`), ``spin`` (``package`` with spinning intra-op
threads), ``parallel`` (``package`` with ORT_PARALLEL). Reported: records/s median and best,
and the ratio of medians to the first pair. The files may come from any commit (export them
there); only the session options come from this tree.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SESSIONS = ("default", "package", "spin", "parallel")


def make_session(path: str, kind: str):
    """An ONNX Runtime CPU session of ``path`` with the session options named ``kind`` (:data:`SESSIONS`)."""
    import onnxruntime as ort

    from ecg_keras.export.onnx import session_options

    if kind == "default":
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    options = session_options()
    if kind == "spin":
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    elif kind == "parallel":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    elif kind != "package":
        raise ValueError(f"unknown session kind {kind!r}; choose from {', '.join(SESSIONS)}")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def interleave(calls: dict, rounds: int) -> dict:
    """Seconds per call of every function, in turn (reversed every other round) after one warm-up call."""
    for fn in calls.values():
        fn()
    times = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    import numpy as np

    p = argparse.ArgumentParser(prog="python -m benchmarks.onnx_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="whole-record ONNX models (input 'ecg')")
    p.add_argument("--sessions", nargs="+", default=["package"], choices=SESSIONS)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--batch", type=int, default=64, help="records per call")
    a = p.parse_args(argv)
    x = np.random.default_rng(0).normal(scale=0.2, size=(a.batch, 1000, 12)).astype(np.float32)
    calls, outputs = {}, {}
    for path in a.files:
        for kind in a.sessions:
            sess = make_session(path, kind)
            name = f"{os.path.basename(path)}/{kind}"
            calls[name] = lambda sess=sess: sess.run(["probabilities"], {"ecg": x})[0]
            outputs[name] = calls[name]()
    first = next(iter(outputs.values()))
    times = interleave(calls, a.rounds)
    base = statistics.median(next(iter(times.values())))
    print(f"{a.rounds} rounds, batch {a.batch} records, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'file/session':34s} {'rec/s med':>9s} {'rec/s best':>10s} {'x first':>8s} {'max |p - first|':>15s}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:34s} {a.batch / med:9.1f} {a.batch / min(t):10.1f} {base / med:8.2f} "
              f"{float(np.abs(outputs[name] - first).max()):15.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

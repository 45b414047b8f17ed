"""One command that measures ecg_keras on the current machine and compares with a previous run.

    python -m benchmarks                                   # all five models, default settings
    python -m benchmarks --compare benchmarks/results/before.json --output benchmarks/results/after.json
    python -m benchmarks --archs resnet1d_wang lstm --train-seconds 30
    python -m benchmarks --peer-live --peer-python /tmp/torchvenv/bin/python   # + PyTorch, interleaved
    python -m benchmarks --against main --archs lstm --parts infer   # this tree vs a commit (benchmarks/against.py)

The machine's CPU model and ISA flags (avx2, avx512f, avx512_bf16, amx_*) from /proc/cpuinfo are
recorded (``machine.cpu_model``, ``machine.isa``) and printed in the header: figures from
machines with different flags are not comparable. ``--peer-live`` runs the PyTorch peer
(``benchmarks/torch_peer.py``, train at ``--batch-size`` and inference at 64 windows) per model
right after ours (ours A, peer A, ours B, peer B, ...) and prints ours/peer ratios.

Measured, each in a fresh subprocess (so peak resident memory is per measurement):

* ``matmul``: the machine's measured float32 peak, GFLOP/s of a 2048x2048 ``tf.matmul``
  (at the start and at the end; the max is the reference for the models' GFLOP/s).
* ``train``: windows/s of ``model.fit`` at batch 128 with exactly the training setup of
  ``ecg_keras.training.train`` (AdamW on the one-cycle schedule with the beta_1 callback, BCE on
  logits, the architecture's default XLA and determinism settings) fed by
  ``ecg_keras.windows.train_dataset`` over random 10-s records (standardisation, random crops:
  the data pipeline is included). The first ``warmup`` steps (tracing, XLA compilation) are
  timed separately; the rest run for ``--train-seconds``. GFLOP/s = analytic training FLOPs
  (:mod:`benchmarks.flops`) x windows/s.
* ``infer``: whole 10-s records (1000 x 12 at 100 Hz, raw mV) -> probabilities with
  test-time augmentation (7 windows, stride 125, sigmoid, max over windows) fused in one graph,
  at batch 1 (latency per record) and batch 64 (throughput), for three engines: ``keras``
  (the Keras model, BatchNorm folded as in ``predict_records``, inside one ``tf.function``),
  ``savedmodel`` (the exported ``predict_record`` signature, reloaded) and ``onnx`` (the
  whole-record ONNX model in ONNX Runtime with ``export.onnx.session_options``). windows/s =
  records/s x 7 (comparable with per-window inference figures).
* ``data``: PTB-XL-layout WFDB records/s, cold (parsing) and from the signal cache
  (:func:`ecg_keras.datasets.throughput.measure_throughput`).

The result is printed as a table and written as JSON (``--output``); ``--compare`` prints the
ratio to a previous JSON. The load average before/after each measurement is recorded: on a
shared machine, compare only runs made back to back under similar load.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import ecg_keras  # noqa: E402,F401  (before any TF import: the package's oneDNN default applies to every worker)

ARCHS = ("fcn_wang", "resnet1d_wang", "inception1d", "xresnet1d101", "lstm")
RECORD_SECONDS = 10
NUM_CLASSES = 71
JSON_TAG = "BENCH_JSON "
#: PyTorch 2.13 CPU reference on this machine type (2026-11-24), windows/s (low, high): train, inference.
PEER = {
    "fcn_wang": {"train": (267, 283), "infer": (614, 750)},
    "resnet1d_wang": {"train": (282, 282), "infer": (587, 587)},
    "xresnet1d101": {"train": (280, 280), "infer": (1059, 1059)},
    "inception1d": {"train": (64, 64), "infer": (135, 135)},
    "lstm": {"train": (22, 22), "infer": (92, 92)},
}
TARGET = {"train": 1.5, "infer": 2.0}  # acceptance: x the peer's (upper) figure


# =========================================================================== helpers
from ecg_keras.datasets.throughput import load_average  # noqa: E402  (one copy, shared with the data tool)


def peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # KiB on Linux


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except Exception:
        pass
    return platform.processor() or "unknown"


#: ISA extensions that decide which kernels TensorFlow / oneDNN / PyTorch can use (amx_* all recorded).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
             "amx_int8", "amx_fp16")


def cpu_info(cpuinfo: str | None = None) -> dict:
    """CPU model and the relevant ISA flags from /proc/cpuinfo (``cpuinfo``: its text, for tests).

    ``{"cpu_model": "AMD EPYC", "isa": ["avx2", "fma", "avx512f", "avx512_bf16", ...]}``: the
    flags of :data:`ISA_FLAGS` and every ``amx*`` flag present on the first processor, in
    :data:`ISA_FLAGS` order. ``isa`` is None when /proc/cpuinfo cannot be read (not Linux).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return {"cpu_model": cpu_model(), "isa": None}
    model, flags = None, None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "features") and flags is None:  # "Features" on arm64
            flags = set(value.split())
        if model is not None and flags is not None:
            break
    if flags is None:
        return {"cpu_model": model or cpu_model(), "isa": None}
    known = [f for f in ISA_FLAGS if f in flags]
    known += sorted(f for f in flags if f.startswith("amx") and f not in known)
    return {"cpu_model": model or cpu_model(), "isa": known}


def isa_summary(isa) -> str:
    """"avx2 fma avx512f avx512_bf16; no amx" for the report header."""
    if isa is None:
        return "ISA flags unknown"
    text = " ".join(isa) or "none of " + " ".join(ISA_FLAGS)
    if not any(f.startswith("amx") for f in isa):
        text += "; no amx"
    if "avx512f" not in isa:
        text += "; no avx512"
    return text


def machine_info() -> dict:
    cpu = cpu_info()
    info = {"cpu_model": cpu["cpu_model"], "isa": cpu["isa"], "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "load_average": load_average(),
            "env": {k: os.environ[k] for k in sorted(os.environ)
                    if k.startswith(("TF_", "OMP_", "KMP_", "ECG_KERAS_BENCH"))}}
    try:
        info["affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        repo = Path(__file__).resolve().parents[1]
        info["commit"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, timeout=5).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        info["dirty"] = bool(dirty)
    except Exception:
        info["commit"] = None
    return info


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "onnxruntime", "tf2onnx", "onnx"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def tf_onednn() -> bool | None:
    """Whether this process's TensorFlow runs oneDNN kernels (decided by TF_ENABLE_ONEDNN_OPTS at import)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def _timed_calls(fn, seconds: float, min_calls: int = 3, max_calls: int = 10_000) -> list[float]:
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


# =========================================================================== workers
def work_matmul(n: int = 2048, seconds: float = 3.0) -> dict:
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    cpu0 = time.process_time()
    times = _timed_calls(lambda: f(a, b).numpy(), seconds, min_calls=5)
    cpu = (time.process_time() - cpu0) / len(times)
    best, med = min(times), statistics.median(times)
    flops = 2.0 * n**3
    return {"n": n, "calls": len(times), "gflops_best": round(flops / best / 1e9, 1),
            "gflops_median": round(flops / med / 1e9, 1), "gflops_per_cpu_s": round(flops / cpu / 1e9, 1),
            "onednn": tf_onednn()}


class _StepTimer:
    """Keras callback: the time at the end of every training batch; stops fit after a budget."""

    def __new__(cls, *args, **kwargs):  # defined lazily so that importing this module needs no keras
        import keras

        class StepTimer(keras.callbacks.Callback):
            def __init__(self, warmup: int, seconds: float, min_steps: int, max_steps: int):
                super().__init__()
                self.warmup, self.seconds, self.min_steps, self.max_steps = warmup, seconds, min_steps, max_steps
                self.t_begin = 0.0
                self.ends: list[float] = []
                self.cpu_ends: list[float] = []  # process CPU time (user + sys, all threads)

            def on_train_begin(self, logs=None):
                self.t_begin = time.perf_counter()

            def timing_start(self) -> float:
                """End of the last warm-up step (the start of training without warm-up)."""
                return self.ends[self.warmup - 1] if self.warmup else self.t_begin

            def on_train_batch_end(self, batch, logs=None):
                now = time.perf_counter()
                self.ends.append(now)
                self.cpu_ends.append(time.process_time())
                timed = len(self.ends) - self.warmup
                if timed >= self.max_steps or (timed >= self.min_steps and now - self.timing_start()
                                               >= self.seconds):
                    self.model.stop_training = True

        return StepTimer(*args, **kwargs)


def work_train(arch: str, *, batch_size: int = 128, seconds: float = 20.0, warmup: int = 3, min_steps: int = 3,
               max_steps: int = 500, records: int = 1024, jit=None, deterministic=None, seed: int = 0,
               precision: str = "float32") -> dict:
    import numpy as np

    from benchmarks.flops import forward_flops, train_flops
    from ecg_keras.standardize import Standardizer
    from ecg_keras.training import precision as mixed
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.lifecycle import build_model, compile_model, set_seed
    from ecg_keras.training.schedule import OneCycleMomentum
    from ecg_keras.windows import train_dataset, window_length

    load0 = load_average()
    cfg_kwargs = {"arch": arch, "batch_size": batch_size, "precision": precision}
    if jit is not None:
        cfg_kwargs["jit"] = bool(jit)
    if deterministic is not None or jit:  # XLA needs op determinism off (TrainConfig refuses both)
        cfg_kwargs["deterministic"] = bool(deterministic) and not jit
    cfg = TrainConfig(**cfg_kwargs).resolved()
    set_seed(seed, cfg.deterministic)
    rng = np.random.default_rng(seed)
    length = RECORD_SECONDS * cfg.sampling_rate
    signals = rng.normal(scale=0.2, size=(records, length, 12)).astype(np.float32)
    y = (rng.random((records, NUM_CLASSES)) < 0.1).astype(np.float32)
    ds = train_dataset(signals, y, batch_size=batch_size, sampling_rate=cfg.sampling_rate,
                       standardizer=Standardizer.fit(signals), seed=seed)
    window = window_length(cfg.sampling_rate)
    t_build = time.perf_counter()
    with mixed.policy(cfg.precision):  # as training.train
        model = build_model(cfg, NUM_CLASSES, (window, 12))
        schedule = compile_model(model, cfg, "multilabel", total_steps=100_000)
    build_s = time.perf_counter() - t_build
    timer = _StepTimer(warmup, seconds, min_steps, max_steps)
    model.fit(ds, epochs=1, steps_per_epoch=warmup + max_steps, verbose=0,
              callbacks=[OneCycleMomentum(schedule), timer], shuffle=False)
    ends = timer.ends
    steps = len(ends) - warmup
    start = timer.timing_start()
    sec = ends[-1] - start
    per_step = list(np.diff([start, *ends[warmup:]]))
    wps = steps * batch_size / sec
    cpu_per_step = (timer.cpu_ends[-1] - timer.cpu_ends[warmup - 1]) / steps if warmup else None
    fwd = forward_flops(model)
    # model.jit_compile, not cfg.jit: Keras turns XLA off when op determinism is on (the default)
    return {"arch": arch, "batch_size": batch_size, "jit": bool(model.jit_compile), "deterministic": cfg.deterministic,
            "precision": cfg.precision, "onednn": tf_onednn(),
            "params": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
            "build_s": round(build_s, 2), "first_step_s": round(ends[0] - timer.t_begin, 2),
            "warmup_s": round(start - timer.t_begin, 2), "steps": steps, "seconds": round(sec, 2),
            "step_ms_median": round(1e3 * statistics.median(per_step), 1), "step_ms_min": round(1e3 * min(per_step), 1),
            "windows_per_s": round(wps, 1), "windows_per_s_best_step": round(batch_size / min(per_step), 1),
            "forward_mflop_per_window": round(fwd / 1e6, 2),
            "train_gflops": round(train_flops(model) * wps / 1e9, 2),
            # load-robust: FLOPs per CPU second, comparable with the matmul's gflops_per_cpu_s
            "cpu_ms_per_step": round(1e3 * cpu_per_step, 1) if cpu_per_step else None,
            "train_gflops_per_cpu_s": round(train_flops(model) * batch_size / cpu_per_step / 1e9, 2)
            if cpu_per_step else None,
            "peak_rss_mb": peak_rss_mb(), "load_average": [load0, load_average()]}


def work_infer(arch: str, *, seconds: float = 4.0, batches=(1, 64), engines=("keras", "savedmodel", "onnx"),
               jit=None, seed: int = 0) -> dict:
    import numpy as np
    import tensorflow as tf

    from ecg_keras.export.signatures import ServingSpec, record_probabilities
    from ecg_keras.standardize import Standardizer
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.lifecycle import build_model
    from ecg_keras.windows import window_length

    load0 = load_average()
    cfg = TrainConfig(arch=arch, **({} if jit is None else {"jit": bool(jit), "deterministic": not jit})).resolved()
    window = window_length(cfg.sampling_rate)
    length = RECORD_SECONDS * cfg.sampling_rate
    keras_seed = np.random.default_rng(seed)
    import keras

    keras.utils.set_random_seed(seed)
    model = build_model(cfg, NUM_CLASSES, (window, 12))
    signals = keras_seed.normal(scale=0.2, size=(max(batches), length, 12)).astype(np.float32)
    std = Standardizer.fit(signals)
    classes = [f"c{i:02d}" for i in range(NUM_CLASSES)]
    spec = ServingSpec.create(model, classes=classes, standardizer=std, sampling_rate=cfg.sampling_rate)
    n_windows = (length - spec.window) // spec.stride + 1
    out: dict = {"arch": arch, "record_samples": length, "windows_per_record": n_windows, "jit": cfg.jit,
                 "engines": {}}
    reference = {}

    def measure(name, call):
        res = {}
        for b in batches:
            x = signals[:b]
            first = time.perf_counter()
            probs = np.asarray(call(x))
            first = time.perf_counter() - first
            call(x)
            times = _timed_calls(lambda: call(x), seconds)
            med = statistics.median(times)
            res[str(b)] = {"first_call_s": round(first, 3), "calls": len(times),
                           "latency_ms": round(1e3 * med, 2), "ms_per_record": round(1e3 * med / b, 3),
                           "records_per_s": round(b / med, 1), "windows_per_s": round(b * n_windows / med, 1)}
            if b in reference:
                res[str(b)]["max_abs_diff_vs_keras"] = float(np.max(np.abs(probs - reference[b])))
            elif name == "keras":
                reference[b] = probs
        out["engines"][name] = res

    tmp = Path(tempfile.mkdtemp(prefix="ecg_keras_bench_"))
    try:
        if "keras" in engines:
            from ecg_keras.models import fold_batchnorm

            # refuse_invalid=False: XLA ignores assertions and cannot compile their string messages;
            # BN folded as in predict_records and the exports
            folded = fold_batchnorm(model)
            fused = tf.function(lambda x: record_probabilities(folded, x, None, spec, refuse_invalid=False)[0],
                                input_signature=[tf.TensorSpec([None, length, 12], tf.float32)],
                                jit_compile=bool(cfg.jit) or None)
            measure("keras", lambda x: fused(tf.constant(x)).numpy())
        if "savedmodel" in engines:
            from ecg_keras.export import export_savedmodel

            t0 = time.perf_counter()
            path = export_savedmodel(model, tmp / "sm", classes=classes, standardizer=std,
                                     sampling_rate=cfg.sampling_rate)
            loaded = tf.saved_model.load(str(path))
            sig = loaded.signatures["predict_record"]
            out["savedmodel_export_s"] = round(time.perf_counter() - t0, 2)
            measure("savedmodel", lambda x: sig(ecg=tf.constant(x))["probabilities"].numpy())
        if "onnx" in engines:
            from ecg_keras.export import export_onnx
            from ecg_keras.export.onnx import inference_session

            t0 = time.perf_counter()
            path = export_onnx(model, tmp / "record.onnx", standardizer=std, classes=classes,
                               sampling_rate=cfg.sampling_rate, whole_record=True)
            sess = inference_session(path)
            out["onnx_export_s"] = round(time.perf_counter() - t0, 2)
            measure("onnx", lambda x: sess.run(["probabilities"], {"ecg": x})[0])
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_average"] = [load0, load_average()]
    return out


def work_data(n_records: int = 300, repeats: int = 2) -> dict:
    from ecg_keras.datasets.throughput import measure_throughput

    r = measure_throughput(n_records=n_records, sampling_rates=(100,), repeats=repeats)
    return {"n_records": r["n_records"], "n_jobs": r["n_jobs"], "cold_records_per_s": round(r["cold"][100], 1),
            "cached_records_per_s": round(r["cached"][100], 1), "fast_wfdb": r["fast_wfdb"],
            "peak_rss_mb": peak_rss_mb(), "load_average": [r["load_average"], r["load_average_after"]]}


WORKERS = {"matmul": work_matmul, "train": work_train, "infer": work_infer, "data": work_data}


def worker_defaults(kind: str) -> dict:
    """The keyword defaults of a worker, JSON-typed (``--against`` compares them with another tree's worker)."""
    import inspect

    params = inspect.signature(WORKERS[kind]).parameters.values()
    return {p.name: json.loads(json.dumps(p.default)) for p in params if p.default is not inspect.Parameter.empty}


def _worker_main(kind: str, kwargs: dict) -> int:
    t0 = time.perf_counter()
    try:
        result = WORKERS[kind](**kwargs)
        result["ok"] = True
    except Exception as e:  # reported in the table, the benchmark goes on
        import traceback

        traceback.print_exc()
        result = {"ok": False, "error": f"{type(e).__name__}: {e}", **{k: v for k, v in kwargs.items()
                                                                          if k == "arch"}}
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    print(JSON_TAG + json.dumps(result), flush=True)
    return 0


def run_worker(kind: str, timeout: float, log=print, **kwargs) -> dict:
    """Run one measurement in a fresh Python process and return its JSON result."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", kind, json.dumps(kwargs)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=str(Path(__file__).resolve().parents[1]))
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s", **kwargs}
    lines = [l for l in proc.stdout.splitlines() if l.startswith(JSON_TAG)]
    if not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"ok": False, "error": f"worker exited {proc.returncode}: {tail}", **kwargs}
    result = json.loads(lines[-1][len(JSON_TAG):])
    result["process_s"] = round(time.perf_counter() - t0, 2)
    if not result.get("ok"):
        log(f"  {kind} {kwargs.get('arch', '')} failed: {result.get('error')}")
    return result


# =========================================================================== orchestration
PEER_SCRIPT = Path(__file__).resolve().parent / "torch_peer.py"


def schedule(archs, parts=("train", "infer"), peer: bool = False) -> list[tuple[str, str]]:
    """The order of the model measurements, as (kind, arch) with kind "train", "infer" or "peer".

    Without the peer: every training run, then every inference run. With ``--peer-live``
    interleaved per architecture (ours arch A, peer arch A, ours arch B, peer arch B, ...), so
    that each ratio compares measurements made minutes apart under the same load.
    """
    ours = [p for p in ("train", "infer") if p in parts]
    if not peer:
        return [(kind, arch) for kind in ours for arch in archs]
    return [(kind, arch) for arch in archs for kind in (*ours, "peer")]


def torch_importable(python: str | None = None) -> bool:
    """Whether ``import torch`` succeeds in this interpreter (``python=None``) or in ``python``."""
    if python is None:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    try:
        return subprocess.run([python, "-c", "import torch"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve_peer_python(peer_python: str | None) -> str:
    """The interpreter that runs benchmarks/torch_peer.py: ``--peer-python`` or this one if it has torch."""
    if peer_python:
        if not torch_importable(peer_python):
            raise SystemExit(f"error: --peer-python {peer_python}: 'import torch' fails in that interpreter")
        return peer_python
    if torch_importable():
        return sys.executable
    raise SystemExit("error: --peer-live needs PyTorch: 'import torch' fails in this interpreter; pass "
                     "--peer-python PATH to a python that has torch (see benchmarks/torch_peer.py)")


def run_peer(arch: str, python: str, *, seconds: float, batch_size: int = 128, timeout: float = 600,
             log=print) -> dict:
    """benchmarks/torch_peer.py for one architecture in ``python``: its JSON entry for ``arch``."""
    with tempfile.TemporaryDirectory(prefix="ecg_keras_peer_") as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [python, str(PEER_SCRIPT), "--archs", arch, "--seconds", str(seconds), "--batch-size",
               str(batch_size), "--no-matmul", "--output", str(out)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "arch": arch, "error": f"timed out after {timeout:.0f} s"}
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            log(f"  peer {arch} failed: exit {proc.returncode}")
            return {"ok": False, "arch": arch, "error": f"torch_peer.py exited {proc.returncode}: {tail}"}
        raw = json.loads(out.read_text())
    entry = raw["models"][arch]
    return {"ok": True, "arch": arch, "torch": raw["meta"].get("torch"), "timestamp": raw["meta"].get("timestamp"),
            "train": (entry.get("train") or {}).get("windows_per_s_median"),
            "infer": (entry.get("infer") or {}).get("windows_per_s_median"),
            "load_average": [raw["meta"].get("loadavg_before"), raw["meta"].get("loadavg_after")],
            "process_s": round(time.perf_counter() - t0, 2)}


def peer_measured(peers: dict, python: str) -> dict | None:
    """The live peer runs in the shape of :func:`load_peer` (for the report's ratio table)."""
    ok = {arch: r for arch, r in peers.items() if r.get("ok")}
    if not ok:
        return None
    first = next(iter(ok.values()))
    return {"source": f"--peer-live, {python}, interleaved", "torch": first.get("torch"),
            "timestamp": first.get("timestamp"),
            "models": {arch: {"train": r.get("train"), "infer": r.get("infer")} for arch, r in ok.items()}}


def run_benchmark(archs=ARCHS, *, train_seconds: float = 20.0, infer_seconds: float = 3.0, batch_size: int = 128,
                  records: int = 1024, warmup: int = 3, batches=(1, 64), engines=("keras", "savedmodel", "onnx"),
                  jit=None, deterministic=None, data: bool = True, data_records: int = 300, timeout: float = 600,
                  parts=("train", "infer"), peer_python: str | None = None, peer_seconds: float | None = None,
                  precision: str = "float32", log=print) -> dict:
    """All measurements; ``peer_python``: run benchmarks/torch_peer.py with it, interleaved (``--peer-live``)."""
    t0 = time.perf_counter()
    result = {"benchmark": "ecg_keras", "schema": 1, "machine": machine_info(), "versions": versions(),
              "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
              "settings": {"archs": list(archs), "train_seconds": train_seconds, "infer_seconds": infer_seconds,
                           "batch_size": batch_size, "records": records, "warmup": warmup, "batches": list(batches),
                           "engines": list(engines), "jit": jit, "deterministic": deterministic,
                           "precision": precision, "peer_python": peer_python},
              "peer": PEER, "train": {}, "infer": {}}
    log(f"machine: {result['machine']['cpu_model']} ({isa_summary(result['machine'].get('isa'))}), "
        f"{result['machine']['cpus']} CPUs, load average {result['machine']['load_average']}")
    result["matmul"] = [run_worker("matmul", timeout, log)]
    log(f"  matmul peak: {result['matmul'][0].get('gflops_best')} GFLOP/s")
    peers: dict = {}
    order = schedule(archs, parts, peer=peer_python is not None)
    result["order"] = [f"{kind} {arch}" for kind, arch in order]
    for kind, arch in order:
        if kind == "train":
            r = run_worker("train", timeout, log, arch=arch, batch_size=batch_size, seconds=train_seconds,
                           warmup=warmup, records=records, jit=jit, deterministic=deterministic, precision=precision)
            result["train"][arch] = r
            if r.get("ok"):
                log(f"  train {arch:14s} {r['windows_per_s']:8.1f} windows/s  ({r['train_gflops']:.1f} GFLOP/s, "
                    f"first step {r['first_step_s']:.1f} s, XLA {'on' if r['jit'] else 'off'}, {r.get('precision', 'float32')}, "
                    f"{r['process_s']:.0f} s)")
        elif kind == "infer":
            r = run_worker("infer", timeout, log, arch=arch, seconds=infer_seconds, batches=list(batches),
                           engines=list(engines), jit=jit)
            result["infer"][arch] = r
            if r.get("ok"):
                best = max(e.get(str(max(batches)), {}).get("windows_per_s", 0) for e in r["engines"].values())
                log(f"  infer {arch:14s} {best:8.1f} windows/s (best engine, batch {max(batches)}; "
                    f"{r['process_s']:.0f} s)")
        else:
            r = run_peer(arch, peer_python, seconds=train_seconds if peer_seconds is None else peer_seconds,
                         batch_size=batch_size, timeout=timeout, log=log)
            peers[arch] = r
            if r.get("ok"):
                log(f"  peer  {arch:14s} train {r['train']} / infer {r['infer']} windows/s (torch {r['torch']}, "
                    f"{r['process_s']:.0f} s)")
    if peer_python is not None:
        result["peer_live"] = peers
        measured = peer_measured(peers, peer_python)
        if measured:
            result["peer_measured"] = measured
    if data:
        result["data"] = run_worker("data", timeout, log, n_records=data_records)
    result["matmul"].append(run_worker("matmul", timeout, log))
    result["matmul_peak_gflops"] = max((m.get("gflops_best") or 0) for m in result["matmul"])
    result["matmul_peak_gflops_per_cpu_s"] = max((m.get("gflops_per_cpu_s") or 0) for m in result["matmul"]) or None
    result["machine"]["load_average_end"] = load_average()
    result["total_s"] = round(time.perf_counter() - t0, 1)
    return result


# =========================================================================== report
def _fmt(x, spec="8.1f", missing="       -"):
    return missing if x is None else format(x, spec)


def best_infer(r: dict, batch: str = "64") -> tuple[float | None, str | None]:
    best, name = None, None
    for engine, res in (r.get("engines") or {}).items():
        key = batch if batch in res else (max(res, key=int) if res else batch)
        v = (res.get(key) or {}).get("windows_per_s")
        if v is not None and (best is None or v > best):
            best, name = v, engine
    return best, name


def table(result: dict) -> str:
    m = result["machine"]
    peak = result.get("matmul_peak_gflops")
    lines = [f"{m['cpu_model']} ({isa_summary(m.get('isa'))}), {m['cpus']} CPUs, load average {m['load_average']} -> {m.get('load_average_end')}; "
             f"TF {result['versions'].get('tensorflow-cpu') or result['versions'].get('tensorflow')}, "
             f"Keras {result['versions'].get('keras')}, ONNX Runtime {result['versions'].get('onnxruntime')}; "
             f"oneDNN {_on_off(result['matmul'][0].get('onednn') if result.get('matmul') else None)}; "
             f"matmul peak {peak} GFLOP/s; {m['date']}",
             "",
             f"training (batch 128, windows/s, {result.get('settings', {}).get('precision', 'float32')}; "
             "peer = PyTorch figures quoted in the issue, x = vs peer, target 1.5x):",
             f"{'model':14s} {'XLA':>4s} {'win/s':>8s} {'peer':>9s} {'x':>5s} {'GFLOP/s':>8s} {'%peak':>6s} "
             f"{'%peak cpu':>9s} {'1st step s':>10s} {'RSS MB':>7s}"]
    cpu_peak = result.get("matmul_peak_gflops_per_cpu_s")
    for arch, r in result["train"].items():
        peer = PEER.get(arch, {}).get("train")
        if not r.get("ok"):
            lines.append(f"{arch:14s} FAILED: {r.get('error')}")
            continue
        ratio = r["windows_per_s"] / peer[1] if peer else None
        pct = 100 * r["train_gflops"] / peak if peak else None
        # FLOPs per CPU second against the matmul's: robust to other processes sharing the cores
        pct_cpu = 100 * r["train_gflops_per_cpu_s"] / cpu_peak if cpu_peak and r.get("train_gflops_per_cpu_s") \
            else None
        lines.append(f"{arch:14s} {'on' if r['jit'] else 'off':>4s} {r['windows_per_s']:8.1f} "
                     f"{_peer_range(peer):>9} "
                     f"{_fmt(ratio, '5.2f', '    -')} {r['train_gflops']:8.1f} {_fmt(pct, '6.0f', '     -')} "
                     f"{_fmt(pct_cpu, '9.0f', '        -')} {r['first_step_s']:10.1f} {r['peak_rss_mb']:7.0f}")
    lines += ["", "inference, whole 10-s records with TTA (7 windows, max): windows/s at batch 64 | ms per record "
              "at batch 1; x = best engine vs the issue's PyTorch figures, target 2x:",
              f"{'model':14s} {'keras':>16s} {'savedmodel':>16s} {'onnx':>16s} {'peer':>9s} {'x':>5s} {'RSS MB':>7s}"]
    for arch, r in result["infer"].items():
        if not r.get("ok"):
            lines.append(f"{arch:14s} FAILED: {r.get('error')}")
            continue
        cells = []
        for engine in ("keras", "savedmodel", "onnx"):
            e = r["engines"].get(engine)
            if not e:
                cells.append(f"{'-':>16s}")
                continue
            big = e.get("64", e.get(max(e, key=int)))
            one = e.get("1", {})
            cells.append(f"{big['windows_per_s']:7.0f} | {one.get('ms_per_record', float('nan')):6.1f}ms")
        peer = PEER.get(arch, {}).get("infer")
        best, _ = best_infer(r)
        ratio = best / peer[1] if peer and best else None
        lines.append(f"{arch:14s} {' '.join(cells)} "
                     f"{_peer_range(peer):>9} "
                     f"{_fmt(ratio, '5.2f', '    -')} {r['peak_rss_mb']:7.0f}")
    d = result.get("data")
    if d:
        if d.get("ok"):
            lines += ["", f"data: PTB-XL-layout WFDB records (100 Hz, {d['n_records']} records, n_jobs {d['n_jobs']}): "
                          f"cold {d['cold_records_per_s']:.0f} records/s, cached {d['cached_records_per_s']:.0f} "
                          f"records/s"]
        else:
            lines += ["", f"data: FAILED: {d.get('error')}"]
    measured = result.get("peer_measured")
    if measured:
        lines += ["", f"against the PyTorch peer measured on this machine ({measured['source']}, torch "
                      f"{measured['torch']}, {measured['timestamp']}): windows/s, x = ecg_keras / peer",
                  f"{'model':14s} {'train':>8s} {'peer':>8s} {'x':>5s} {'(1.5x)':>7s} {'infer':>8s} {'peer':>8s} "
                  f"{'x':>5s} {'(2x)':>5s}"]
        for arch, peer in measured["models"].items():
            train = (result["train"].get(arch) or {}).get("windows_per_s")
            infer, _ = best_infer(result["infer"].get(arch) or {})
            xt = train / peer["train"] if train and peer.get("train") else None
            xi = infer / peer["infer"] if infer and peer.get("infer") else None
            lines.append(f"{arch:14s} {_fmt(train)} {_fmt(peer.get('train'))} {_fmt(xt, '5.2f', '    -')} "
                         f"{_met(xt, TARGET['train']):>7s} {_fmt(infer)} {_fmt(peer.get('infer'))} "
                         f"{_fmt(xi, '5.2f', '    -')} {_met(xi, TARGET['infer']):>5s}")
    lines += ["", f"total {result.get('total_s')} s; command: {result.get('command')}"]
    return "\n".join(lines)


def _peer_range(peer) -> str:
    """A (low, high) peer figure as "low-high", "high" when equal, "-" when missing."""
    if not peer:
        return "-"
    return f"{peer[0]}-{peer[1]}" if peer[0] != peer[1] else str(peer[1])


def _on_off(flag) -> str:
    return "?" if flag is None else ("on" if flag else "off")


def _met(ratio, target: float) -> str:
    return "-" if ratio is None else ("met" if ratio >= target else "no")


def load_peer(path: str | Path) -> dict:
    """Per-window training / inference windows/s of a ``benchmarks/torch_peer.py --output`` JSON."""
    raw = json.loads(Path(path).read_text())
    models = {arch: {kind: (r.get(kind) or {}).get("windows_per_s_median") for kind in ("train", "infer")}
              for arch, r in raw.get("models", {}).items()}
    return {"source": str(path), "torch": raw["meta"].get("torch"), "timestamp": raw["meta"].get("timestamp"),
            "models": models}


def compare(new: dict, old: dict) -> str:
    """Ratios new/old of the headline figures of two result files."""
    lines = [f"comparison with {old['machine'].get('date')} (load {old['machine'].get('load_average')}): new/old",
             f"{'model':14s} {'train':>14s} {'infer b64':>14s} {'ms/rec b1':>14s}  (ms/rec: lower is better)"]

    def cell(a, b, spec="7.1f"):
        if a is None or b is None or not b:
            return f"{'-':>14s}"
        return f"{format(a, spec)} {a / b:5.2f}x"

    for arch in new.get("train", {}):
        nt, ot = new["train"].get(arch, {}), old.get("train", {}).get(arch, {})
        ni, oi = new["infer"].get(arch, {}), old.get("infer", {}).get(arch, {})
        nb, _ = best_infer(ni)
        ob, _ = best_infer(oi)

        def lat(r):
            vals = [(e.get("1") or {}).get("ms_per_record") for e in (r.get("engines") or {}).values()]
            vals = [v for v in vals if v is not None]
            return min(vals) if vals else None

        nl, ol = lat(ni), lat(oi)
        lines.append(f"{arch:14s} {cell(nt.get('windows_per_s'), ot.get('windows_per_s'))} {cell(nb, ob)} "
                     f"{cell(nl, ol, '7.2f') if nl and ol else f'{chr(45):>14s}'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return _worker_main(argv[1], json.loads(argv[2]))
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=list(ARCHS))
    p.add_argument("--train-seconds", type=float, default=15.0, help="timed training per model (after warm-up)")
    p.add_argument("--infer-seconds", type=float, default=2.0, help="timed inference per engine and batch size")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--records", type=int, default=1024, help="random 10-s records behind the training pipeline")
    p.add_argument("--warmup", type=int, default=None,
                   help="training steps excluded from the timing (default 3; 1 with --quick; 0 times tracing too)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64], help="inference batch sizes (records)")
    p.add_argument("--engines", nargs="+", default=["keras", "savedmodel", "onnx"],
                   choices=["keras", "savedmodel", "onnx"])
    p.add_argument("--jit", choices=["default", "on", "off"], default="default",
                   help="XLA: the architecture's training default, or forced on/off")
    p.add_argument("--deterministic", choices=["default", "on", "off"], default="default")
    p.add_argument("--precision", choices=["float32", "mixed_float16", "mixed_bfloat16"], default="float32",
                   help="training measurements only (inference is float32, as every export)")
    p.add_argument("--no-data", dest="data", action="store_false", help="skip the WFDB reader throughput")
    p.add_argument("--parts", nargs="+", default=["train", "infer"], choices=["train", "infer"],
                   help="model measurements to run (default both)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per measurement process")
    p.add_argument("--output", default=None, help="result JSON (default benchmarks/results/<date>.json)")
    p.add_argument("--compare", default=None, help="a previous result JSON to compare with")
    p.add_argument("--peer", default=None,
                   help="a benchmarks/torch_peer.py --output JSON measured on this machine: adds ratios against it")
    p.add_argument("--peer-live", action="store_true",
                   help="also run benchmarks/torch_peer.py (PyTorch) in this invocation, interleaved per model "
                        "(ours A, peer A, ours B, ...), and print the ratios; needs torch here or --peer-python")
    p.add_argument("--peer-python", default=None,
                   help="with --peer-live: a python that has torch (default: this interpreter)")
    p.add_argument("--peer-seconds", type=float, default=None,
                   help="timed seconds per peer measurement (default: --train-seconds)")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test): 1 s timings, batch 1 and 4")
    p.add_argument("--against", metavar="REV", default=None,
                   help="regression check: measure this tree and commit REV alternately (benchmarks/against.py) "
                        "and print the ratio per model, part, engine and batch")
    p.add_argument("--rounds", type=int, default=2, help="with --against: alternations (A B, B A, ...)")
    p.add_argument("--fail-below", type=float, default=None, metavar="RATIO",
                   help="with --against: exit 1 if a ratio (this tree / REV) is below RATIO")
    a = p.parse_args(argv)
    if a.peer_python and not a.peer_live:
        p.error("--peer-python needs --peer-live")
    if a.peer_live and a.peer:
        p.error("--peer-live measures the peer; --peer reads a previous measurement: pass one of them")
    peer_python = resolve_peer_python(a.peer_python) if a.peer_live else None
    tri = {"default": None, "on": True, "off": False}
    if a.quick:
        a.train_seconds, a.infer_seconds, a.batches, a.records = 1.0, 0.5, [1, 4], 256
    if a.warmup is None:
        a.warmup = 1 if a.quick else 3
    if a.warmup < 0:
        p.error(f"--warmup must be >= 0, got {a.warmup}")
    if a.against is not None:
        from benchmarks import against

        return against.main(a, p)
    if a.fail_below is not None:
        p.error("--fail-below needs --against")
    result = run_benchmark(a.archs, train_seconds=a.train_seconds, infer_seconds=a.infer_seconds,
                           batch_size=a.batch_size, records=a.records, warmup=a.warmup, batches=tuple(a.batches),
                           engines=tuple(a.engines), jit=tri[a.jit], deterministic=tri[a.deterministic],
                           data=a.data, timeout=a.timeout, parts=tuple(a.parts), peer_python=peer_python,
                           peer_seconds=a.peer_seconds, precision=a.precision)
    if a.peer:
        result["peer_measured"] = load_peer(a.peer)
    out = Path(a.output) if a.output else (Path(__file__).resolve().parent / "results"
                                            / f"{_dt.datetime.now():%Y%m%d-%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print()
    print(table(result))
    if a.compare:
        print()
        print(compare(result, json.loads(Path(a.compare).read_text())))
    print(f"\nwrote {out}")
    failed = [k for k, v in [*result["train"].items(), *result["infer"].items(),
                             *(result.get("peer_live") or {}).items()] if not v.get("ok")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LiteRT quantisation table: size, latency and accuracy change of float32/float16/dynamic/int8 models.

    python -m benchmarks.litert RUN_DIR --calibration ../shared/data/ludb-1.0.1 \\
        [--ludb ../shared/data/ludb-1.0.1] [--rounds 30] [--threads 2] [--output litert.json]

For one training run (RUN_DIR, e.g. ``train.py --dataset synthetic --arch fcn_wang``) it exports
the whole-record LiteRT model (:mod:`ecg_keras.export.litert`, dynamic length, TTA in the graph)
unquantised and with each quantisation (int8 calibrated on ``--calibration``), runs them with
``ai_edge_litert``'s interpreter and reports, side by side in one process:

* file size of the whole-record model;
* latency per 10-s record at batch 1 (7 windows), of the dynamic-length model and of the same
  model exported with a fixed 10-s input (``record_seconds=10``, static shapes): median over ``--rounds`` rounds, the
  variants called round-robin within each round (so load changes hit all of them alike); the
  TensorFlow graph of the Keras model (``record_probabilities`` in one ``tf.function``) is timed
  in the same rounds as the reference;
* on the run's test split (synthetic data: regenerated from the run's config): macro AUC and
  its change vs the float32 LiteRT model (whose parity with Keras is checked, <= 1e-5);
* on LUDB (``--ludb``; 200 real records, labels not the run's classes): agreement with the
  float32 LiteRT model: max / mean |delta p|, top-1 class agreement and agreement of the 0.5
  thresholded labels.

The CPU model, ISA flags, load average (before/after) and date are printed with the table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import ecg_keras  # noqa: E402,F401  (the package's oneDNN default before TF)
import numpy as np  # noqa: E402

VARIANTS = ("float32", "float16", "dynamic", "int8")


def _test_split(run):
    """The run's test records and labels (the synthetic set is regenerated from the config if missing)."""
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.data import load_splits

    cfg = dict(run.config)
    if cfg.get("data_path") and Path(cfg["data_path"]).exists() and cfg.get("dataset") in ("synthetic", "ptbxl",
                                                                                            "icbeb2018"):
        cfg["data_dir"] = str(cfg["data_path"])
    config = TrainConfig.from_dict(cfg)
    splits, _, _ = load_splits(config, log=lambda *a: None)
    return splits.test


def _predict(model, signals, batch: int = 32) -> np.ndarray:
    return np.concatenate([model(np.stack(signals[i:i + batch])) for i in range(0, len(signals), batch)])


def measure(run_dir, *, calibration, ludb=None, rounds: int = 30, threads: int = 2, log=print) -> dict:
    import tensorflow as tf

    from benchmarks.run import cpu_info, load_average
    from ecg_keras.evaluation.metrics import macro_auc
    from ecg_keras.export.litert import LiteRTModel, export_litert
    from ecg_keras.runs import resolve
    from ecg_keras.export.signatures import ServingSpec, record_probabilities

    load0 = load_average()
    run = resolve(run_dir)
    kw = run.export_kwargs()
    test = _test_split(run)
    test_signals = [np.asarray(s, dtype=np.float32) for s in test.signals]
    log(f"test split: {len(test_signals)} records, classes {run.classes}")
    out = {"run": str(run_dir), "arch": run.config.get("arch"), "dataset": run.config.get("dataset"),
           "classes": run.classes, "calibration": str(calibration), "threads": threads, "rounds": rounds,
           "variants": {}}
    models, fixed = {}, {}
    with tempfile.TemporaryDirectory(prefix="ecg_keras_litert_") as tmp:
        for name in VARIANTS:
            t0 = time.perf_counter()
            args = dict(whole_record=True, quantize=None if name == "float32" else name,
                        calibration=calibration if name == "int8" else None, **kw)
            path = export_litert(run.model, Path(tmp) / f"{name}.tflite", **args)
            models[name] = LiteRTModel(path, num_threads=threads)
            out["variants"][name] = {"size_bytes": path.stat().st_size,
                                     "export_s": round(time.perf_counter() - t0, 1)}
            # the same model with a fixed 10-s input (static shapes: every op can be delegated)
            fixed_path = export_litert(run.model, Path(tmp) / f"{name}_10s.tflite", record_seconds=10, **args)
            fixed[name] = LiteRTModel(fixed_path, num_threads=threads)
            out["variants"][name]["size_bytes_fixed_10s"] = fixed_path.stat().st_size
            log(f"  {name}: {path.stat().st_size / 1e6:.3f} MB ({out['variants'][name]['export_s']} s)")

    # accuracy on the run's test split
    spec = ServingSpec.create(run.model, classes=run.classes, standardizer=run.standardizer,
                              sampling_rate=run.sampling_rate, aggregation=run.aggregation, activation=run.activation)
    graph = tf.function(lambda x: record_probabilities(run.model, x, None, spec)[0])
    keras_test = np.concatenate([graph(tf.constant(np.stack(test_signals[i:i + 32]))).numpy()
                                 for i in range(0, len(test_signals), 32)])
    preds = {name: _predict(m, test_signals) for name, m in models.items()}
    out["float32_vs_tf_max_abs"] = float(np.abs(preds["float32"] - keras_test).max())
    out["tf_macro_auc"] = float(macro_auc(test.y, keras_test))
    base = float(macro_auc(test.y, preds["float32"]))
    for name, p in preds.items():
        auc = float(macro_auc(test.y, p))
        out["variants"][name].update({"test_macro_auc": auc, "test_auc_change": auc - base,
                                      "test_max_abs_vs_float32": float(np.abs(p - preds["float32"]).max())})

    # agreement on LUDB
    if ludb:
        from ecg_keras.datasets import load_ludb

        ludb_signals = [np.asarray(s, dtype=np.float32) for s in load_ludb(ludb, sampling_rate=run.sampling_rate).signals]
        out["ludb_records"] = len(ludb_signals)
        ref = _predict(models["float32"], ludb_signals)
        for name, m in models.items():
            p = _predict(m, ludb_signals)
            out["variants"][name].update({
                "ludb_max_abs": float(np.abs(p - ref).max()), "ludb_mean_abs": float(np.abs(p - ref).mean()),
                "ludb_top1_agreement": float((p.argmax(1) == ref.argmax(1)).mean()),
                "ludb_label_agreement": float(((p >= 0.5) == (ref >= 0.5)).mean())})

    # latency per record, batch 1, round-robin
    x = test_signals[0][None]
    calls = {name: (lambda m=m: m(x)) for name, m in models.items()}
    calls.update({f"{name}@10s": (lambda m=m: m(x)) for name, m in fixed.items()})
    out["fixed_10s_float32_vs_tf_max_abs"] = float(np.abs(fixed["float32"](x) - graph(tf.constant(x)).numpy()).max())
    xt = tf.constant(x)
    calls["tf"] = lambda: graph(xt).numpy()
    for fn in calls.values():
        fn(), fn()
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out["tf_ms_per_record"] = round(1e3 * statistics.median(times["tf"]), 3)
    for name in models:
        ms = 1e3 * statistics.median(times[name])
        out["variants"][name].update({"ms_per_record": round(ms, 3),
                                      "ms_per_record_fixed_10s": round(1e3 * statistics.median(times[f"{name}@10s"]), 3)})
    f32 = out["variants"]["float32"]["ms_per_record"]
    for name in models:
        v = out["variants"][name]
        v["latency_vs_float32"] = round(v["ms_per_record"] / f32, 3)
        v["latency_fixed_10s_vs_float32"] = round(v["ms_per_record_fixed_10s"] / f32, 3)
        v["size_vs_float32"] = round(v["size_bytes"] / out["variants"]["float32"]["size_bytes"], 3)
    cpu = cpu_info()
    import importlib.metadata as md

    out["machine"] = {"cpu_model": cpu["cpu_model"], "isa": cpu["isa"], "cpus": os.cpu_count(),
                      "load_average": [load0, load_average()],
                      "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "versions": {d: md.version(d) for d in ("tensorflow-cpu", "keras", "ai-edge-litert")
                                   if _has(d)}}
    out["command"] = " ".join(["python", "-m", "benchmarks.litert", *sys.argv[1:]])
    return out


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def table(r: dict) -> str:
    from benchmarks.run import isa_summary

    m = r["machine"]
    lines = [f"{m['cpu_model']} ({isa_summary(m['isa'])}), {m['cpus']} CPUs, load average {m['load_average'][0]} -> "
             f"{m['load_average'][1]}; {m['date']}; {', '.join(f'{k} {v}' for k, v in m['versions'].items())}",
             f"{r['arch']} run on {r['dataset']} ({len(r['classes'])} classes); whole-record LiteRT model (10 s, "
             f"7 windows, {r['threads']} threads); float32 LiteRT vs TensorFlow: max |dp| "
             f"{r['float32_vs_tf_max_abs']:.1e} (fixed 10 s: {r['fixed_10s_float32_vs_tf_max_abs']:.1e}); int8 calibrated on {r['calibration']}",
             "",
             "| model | size (KB) | size vs float32 | ms per record, dynamic length | x float32 | ms per record, "
             "fixed 10 s | x float32 | test macro AUC | AUC change | LUDB max abs dp | LUDB mean abs dp "
             "| LUDB top-1 agreement | LUDB label agreement |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        ludb = (f"{v['ludb_max_abs']:.4f} | {v['ludb_mean_abs']:.4f} | {100 * v['ludb_top1_agreement']:.1f} % | "
                f"{100 * v['ludb_label_agreement']:.1f} %") if "ludb_max_abs" in v else "- | - | - | -"
        lines.append(f"| {name} | {v['size_bytes'] / 1024:.0f} | {v['size_vs_float32']:.2f} | "
                     f"{v['ms_per_record']:.2f} | {v['latency_vs_float32']:.2f} | {v['ms_per_record_fixed_10s']:.2f} | "
                     f"{v['latency_fixed_10s_vs_float32']:.2f} | {v['test_macro_auc']:.4f} | "
                     f"{v['test_auc_change']:+.4f} | {ludb} |")
    lines.append(f"| TensorFlow graph (reference) | - | - | {r['tf_ms_per_record']:.2f} | "
                 f"{r['tf_ms_per_record'] / r['variants']['float32']['ms_per_record']:.2f} | - | - | "
                 f"{r['tf_macro_auc']:.4f} | - | - | - | - | - |")
    lines += ["", f"command: {r['command']} (median of {r['rounds']} round-robin rounds)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.litert", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--calibration", required=True, help="folder of records for int8 calibration (e.g. LUDB)")
    p.add_argument("--ludb", default=None, help="LUDB folder: agreement of each model with float32 on it")
    p.add_argument("--rounds", type=int, default=30, help="latency rounds (each calls every model once)")
    p.add_argument("--threads", type=int, default=2, help="interpreter threads")
    p.add_argument("--output", default=None, help="result JSON")
    a = p.parse_args(argv)
    r = measure(a.run_dir, calibration=a.calibration, ludb=a.ludb, rounds=a.rounds, threads=a.threads)
    if a.output:
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        Path(a.output).write_text(json.dumps(r, indent=2))
    print()
    print(table(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

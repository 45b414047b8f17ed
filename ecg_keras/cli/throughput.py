"""Throughput tools: ``python -m ecg_keras.cli.throughput {train,data} ...``.

    python -m ecg_keras.cli.throughput train --arch resnet1d_wang [--jit] [--steps 20] [--pipeline]
        training windows/s of an architecture, or of the input pipeline (ecg_keras.training.throughput)
    python -m ecg_keras.cli.throughput data [--root PTBXL] [--rates 100 500] [--json]
        PTB-XL reader records/s, cold and cached (ecg_keras.datasets.throughput)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ecg_keras.preprocessing import WINDOW_SECONDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ecg_keras.cli.throughput", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="training throughput (windows/s) of an architecture or of the input pipeline")
    p.add_argument("--arch", default="resnet1d_wang")
    p.add_argument("--jit", dest="jit", action="store_true", default=False)
    p.add_argument("--no-jit", dest="jit", action="store_false")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"), default="float32")
    p.add_argument("--window", type=float, default=WINDOW_SECONDS, metavar="SECONDS",
                   help=f"window length (default {WINDOW_SECONDS:g} s, the benchmark's; as ecg-keras train --window)")
    p.add_argument("--pipeline", action="store_true", help="time windows.train_dataset instead of the train step")
    d = sub.add_parser("data", help="PTB-XL reader throughput (records/s), cold and cached")
    d.add_argument("--root", help="PTB-XL-layout folder (default: generate a fixture)")
    d.add_argument("--n-records", type=int, default=300)
    d.add_argument("--rates", type=int, nargs="+", default=[100, 500])
    d.add_argument("--n-jobs", type=int, default=None, help="worker processes (default: CPU count)")
    d.add_argument("--repeats", type=int, default=3)
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def train(a) -> int:
    from ecg_keras.training.throughput import pipeline_throughput, train_step_throughput

    if a.pipeline:
        result = pipeline_throughput(batch_size=a.batch_size, steps=max(a.steps, 50), repeats=max(a.repeats, 3),
                                     window_seconds=a.window)
    else:
        result = train_step_throughput(a.arch, a.jit, a.batch_size, a.steps, a.warmup, a.repeats,
                                       precision=a.precision, window_seconds=a.window)
    print(json.dumps(result))
    return 0


def data(args) -> int:
    from ecg_keras.datasets.throughput import measure_throughput

    r = measure_throughput(args.root, n_records=args.n_records, sampling_rates=args.rates, n_jobs=args.n_jobs,
                           repeats=args.repeats)
    if args.json:
        print(json.dumps(r, indent=2, default=str))
        return 0
    print(f"{r['source']}: {r['n_records']} records, n_jobs={r['n_jobs']}, {r['usable_cpus']} usable CPUs, "
          f"load average {r['load_average']} -> {r['load_average_after']}, fast WFDB reader: {r['fast_wfdb']}")
    for fs in args.rates:
        print(f"  {fs} Hz: cold {r['cold'][fs]:8.1f} records/s   cached {r['cached'][fs]:10.1f} records/s")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return {"train": train, "data": data}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

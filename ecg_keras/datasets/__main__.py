"""Command line: ``python -m ecg_keras.datasets {download,synthetic,summary} ...``.

    python -m ecg_keras.datasets download ptbxl --dest DIR [--base-url URL] [--hash NAME=SHA256]
    python -m ecg_keras.datasets synthetic --dest DIR [--n-records N] [--seed S]
    python -m ecg_keras.datasets summary PATH [--sampling-rate HZ] [--cache-dir DIR | --no-cache]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np

from ecg_keras.datasets.base import DataError, RecordSet
from ecg_keras.tasks import REGRESSION


def summarize(records: RecordSet) -> str:
    """Records, rate, signal shape, per-task class counts and fold sizes, as text."""
    from ecg_keras.datasets.tasks import available_tasks, make_task

    lines = [f"dataset: {records.name}{' (SYNTHETIC)' if records.synthetic else ''}",
             f"records: {len(records)}", f"sampling rate: {records.sampling_rate} Hz"]
    if isinstance(records.signals, np.ndarray):
        lines.append(f"signals: {records.signals.shape} {records.signals.dtype}")
    else:
        lengths = [len(s) for s in records.signals]
        lines.append(f"signals: {len(lengths)} variable-length records, {min(lengths)}-{max(lengths)} samples")
    if "strat_fold" in records.meta.columns:
        folds = Counter(int(f) for f in records.meta["strat_fold"])
        lines.append("folds: " + ", ".join(f"{k}: {folds[k]}" for k in sorted(folds)))
    for task in available_tasks(records):
        try:
            data = make_task(records, task)
        except DataError as e:
            lines.append(f"task {task}: {e}")
            continue
        if data.kind == REGRESSION:
            y = data.y[:, 0]
            lines.append(f"task {task}: {len(data)} records, mean {y.mean():.1f}, range {y.min():g}-{y.max():g}")
            continue
        counts = data.y.sum(0).astype(int)
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(data.classes, counts))
        noun = "class" if len(data.classes) == 1 else "classes"
        lines.append(f"task {task}: {len(data)} records, {len(data.classes)} {noun} ({per_class})")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecg_keras.datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="download and extract a public dataset")
    d.add_argument("name", choices=["ptbxl", "icbeb2018"])
    d.add_argument("--dest", default=None, help="target folder (default: $ECG_KERAS_DATA/<name>)")
    d.add_argument("--base-url", default=None, help="mirror base URL (default: the official source)")
    d.add_argument("--hash", action="append", default=[], metavar="FILE=SHA256",
                   help="expected hash of a remote file (repeatable)")
    d.add_argument("--no-verify", action="store_true",
                   help="accept data that cannot be verified (no SHA256SUMS.txt and no --hash)")
    d.add_argument("--force", action="store_true", help="download again even if present")
    s = sub.add_parser("synthetic", help="write a synthetic PTB-XL-layout dataset (labelled SYNTHETIC)")
    s.add_argument("--dest", required=True)
    s.add_argument("--n-records", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("summary", help="print a summary of a dataset folder")
    m.add_argument("path")
    m.add_argument("--sampling-rate", type=int, default=None)
    m.add_argument("--cache-dir", default=None, help="signal cache folder (default: under $ECG_KERAS_DATA)")
    m.add_argument("--no-cache", action="store_true", help="do not read or write the signal cache")
    args = parser.parse_args(argv)

    try:
        if args.command == "download":
            from ecg_keras.datasets.download import download

            hashes = {}
            for item in args.hash:
                file, sep, digest = item.partition("=")
                if not sep:
                    parser.error(f"--hash expects FILE=SHA256, got {item!r}")
                hashes[file] = digest
            root = download(args.name, args.dest, base_url=args.base_url, file_hashes=hashes, force=args.force,
                            verify=not args.no_verify)
            print(root)
        elif args.command == "synthetic":
            from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

            kwargs = {"seed": args.seed}
            if args.n_records is not None:
                kwargs["n_records"] = args.n_records
            print(generate_synthetic_ptbxl(args.dest, **kwargs))
        else:
            from ecg_keras.datasets import load

            records = load(args.path, sampling_rate=args.sampling_rate,
                           cache_dir=False if args.no_cache else args.cache_dir)
            print(summarize(records))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

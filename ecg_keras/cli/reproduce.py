"""``ecg-keras reproduce``: the argument parser of the benchmark grid
(:mod:`ecg_keras.training.grid`, docs/REPRODUCE.md)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ecg_keras.training.grid.plan import DATASETS, DEFAULT_ARCHS


def comma_list(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecg-keras reproduce",
        description="Train the paper's benchmark grid (tasks x architectures x seeds), resumably, and write "
                    "Table II beside the published values, Figure-2 plots and a release folder.",
        epilog="Run the same command again after a crash or kill: finished runs are kept, the interrupted one "
               "is resumed. See docs/REPRODUCE.md.")
    p.add_argument("--data-dir", default=None, help="dataset folder (PTB-XL: the one holding ptbxl_database.csv)")
    p.add_argument("--out", required=True, help="output folder (runs/, logs/, table.md, figures/, release/)")
    p.add_argument("--dataset", choices=DATASETS, default="ptbxl",
                   help="ptbxl (Table II), icbeb2018 (the ICBEB table), synthetic (a generated demo set)")
    p.add_argument("--tasks", default=None, help="comma-separated (default: the six statement tasks; icbeb2018: all)")
    p.add_argument("--archs", default=None,
                   help=f"comma-separated (default: {','.join(DEFAULT_ARCHS['ptbxl'])}; naive, wavelet_nn and "
                        "ensemble are the baselines)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--epochs", type=int, default=50, help="epochs per network run (default 50)")
    p.add_argument("--batch-size", type=int, default=128, help="default 128")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the test fold (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the resample draw (default 0)")
    p.add_argument("--synthetic-records", type=int, default=2000, help="size of the generated set (--dataset synthetic)")
    p.add_argument("--download", action="store_true", help="download PTB-XL / ICBEB2018 if missing")
    p.add_argument("--no-release", dest="release", action="store_false", help="skip DIR/release")
    p.add_argument("--url-base", default=None,
                   help="where the release folder will be uploaded: recorded as url_base in MANIFEST.json")
    p.add_argument("--estimate-steps", type=int, default=5,
                   help="timed training steps per architecture (default 5; 0: no estimate)")
    p.add_argument("--dry-run", action="store_true", help="print the estimate (runs, epochs, measured time) and stop")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: write the table, figures and release of the runs complete so far")
    p.add_argument("--poll-seconds", type=float, default=10.0,
                   help="while other processes hold the remaining runs, look for freed ones this often (default 10)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ecg_keras.datasets.base import DataError
    from ecg_keras.training.grid import ReproduceError, reproduce
    from ecg_keras.training.rundir import RunLockedError

    try:
        seeds = [int(s) for s in comma_list(ns.seeds) or []]
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got {ns.seeds!r}", file=sys.stderr)
        return 2
    try:
        outcome = reproduce(ns.data_dir, ns.out, tasks=comma_list(ns.tasks), archs=comma_list(ns.archs), seeds=seeds,
                            epochs=ns.epochs, dataset=ns.dataset, batch_size=ns.batch_size, n_bootstrap=ns.bootstrap,
                            bootstrap_seed=ns.bootstrap_seed, synthetic_records=ns.synthetic_records,
                            download=ns.download, release=ns.release, url_base=ns.url_base, dry_run=ns.dry_run,
                            estimate_steps=ns.estimate_steps, collect_only=ns.collect, poll_seconds=ns.poll_seconds)
    except ReproduceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, RunLockedError, OSError, ValueError, RuntimeError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``ecg-keras evaluate {hierarchy,uncertainty,attribution} ...``: the paper's deeper insights.

* ``hierarchy RUN_DIR [RUN_DIR ...] [--statements scp_statements.csv] [--split test] --out DIR``
  — statement-level (``diagnostic`` task) probabilities propagated to subclasses and superclasses
  (sum of children clipped at 1); writes ``hierarchy_<model>.csv`` (level, node, parent, n_pos,
  auc, depth in tree order) and ``hierarchy_<model>.png``. Without ``--statements`` the package's
  built-in SCP table (``ecg_keras.statements``) gives the hierarchy.
* ``uncertainty RUN_DIR RUN_DIR [...] --database ptbxl_database.csv [--statements ...] --out DIR``
  — std of the predicted probabilities over the runs (an ensemble of seeds, aligned on record
  ids) for every positive (record, label), against the label's likelihood in ``scp_codes``;
  writes ``uncertainty_pairs.csv``, ``uncertainty_summary.csv`` and ``uncertainty_box.png``.
  ``--likelihoods`` is an alias of ``--database`` and also takes a JSON ``{id: {code: lik}}``.
* ``attribution RUN_DIR --record ID --class CODE (--data-dir ROOT | --npy SIGNAL.npy)
  [--method ig|lrp] [--combine max|mean] [--steps 64] --out FILE.png`` — attribution map of one
  record for one class over the 12 leads (also ``FILE.npz`` with the arrays).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras import artefact
from ecg_keras.cli import command
from ecg_keras.errors import ECGKerasError
from ecg_keras.files import atomic_path

from ecg_keras.evaluation.runs import read_runs

SUBCOMMANDS = ("hierarchy", "uncertainty", "attribution")


class InsightsError(ECGKerasError, ValueError):
    """Unusable input; the message names the file and the problem."""


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(s))


def _mapping(statements: str | None) -> pd.DataFrame:
    if statements:
        p = Path(statements)
        if not p.is_file():
            raise InsightsError(f"--statements: {p} does not exist")
        return pd.read_csv(p, index_col=0)
    from ecg_keras.statements import statements_frame
    return statements_frame()


def _split(run, split: str):
    if split not in run.splits:
        raise InsightsError(f"{run.path}: predictions/{split}.npz is missing")
    return run.splits[split]


# --------------------------------------------------------------------------- hierarchy

def cmd_hierarchy(args) -> list[Path]:
    from ecg_keras.evaluation.hierarchy import SUPERCLASS_LEVEL, node_auc_table, normalize_mapping, tree_order
    from ecg_keras.evaluation.plots import plot_node_aucs

    mapping = _mapping(args.statements)
    known = normalize_mapping(mapping)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for run in read_runs(args.runs):
        inside = [c for c in run.classes if c in known]
        if not inside:
            raise InsightsError(f"{run.path}: none of its classes ({run.classes[:5]}...) is a diagnostic "
                                "statement of the hierarchy; use a run of the 'diagnostic' task")
        p = _split(run, args.split)
        tab = tree_order(node_auc_table(p.y_true, p.y_pred, run.classes, mapping))
        stem = f"hierarchy_{_safe(run.name)}"
        with atomic_path(out / f"{stem}.csv") as tmp:
            tab.to_csv(tmp, index=False)
        written += [out / f"{stem}.csv"]
        dataset = run.config.get("dataset", "")
        written.append(plot_node_aucs(tab, out / f"{stem}.png",
                                      title=f"{run.name} ({dataset}/{run.config.get('task', '')}, "
                                            f"{args.split}): AUC per hierarchy node"))
        sup = tab[tab.level == SUPERCLASS_LEVEL]
        print(f"{run.name}: {len(tab)} nodes; superclass AUCs "
              + ", ".join(f"{n}={a:.3f}" for n, a in zip(sup.node, sup.auc)))
    return written


# --------------------------------------------------------------------------- uncertainty

def cmd_uncertainty(args) -> list[Path]:
    from ecg_keras.evaluation.plots import plot_uncertainty_box
    from ecg_keras.evaluation.uncertainty import ensemble_std, read_likelihoods, summarize_by_likelihood, uncertainty_table

    if len(args.runs) < 2:
        raise InsightsError("uncertainty needs at least 2 run directories (an ensemble of seeds)")
    if not args.database:
        raise InsightsError("--database ptbxl_database.csv (or --likelihoods) is required")
    runs = read_runs(args.runs)
    ref = runs[0]
    for r in runs[1:]:
        if r.classes != ref.classes:
            raise InsightsError(f"{r.path}: classes differ from {ref.path}")
    p0 = _split(ref, args.split)
    order = np.sort(p0.ids)
    aligned = [_split(r, args.split).aligned(order, f"{r.path}/predictions/{args.split}.npz") for r in runs]
    for r, a in zip(runs[1:], aligned[1:]):
        if not np.array_equal(a.y_true, aligned[0].y_true):
            raise InsightsError(f"{r.path}: y_true differs from {ref.path} on the same records")
    try:
        likelihoods = read_likelihoods(args.database)
    except (FileNotFoundError, ValueError, SyntaxError) as e:
        raise InsightsError(f"--database: {e}") from e
    std = ensemble_std([a.y_pred for a in aligned])
    mean = np.mean([a.y_pred for a in aligned], axis=0)
    mapping = _mapping(args.statements)
    table = uncertainty_table(order, aligned[0].y_true, std, ref.classes, likelihoods, mapping, y_mean=mean)
    summary = summarize_by_likelihood(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "uncertainty_pairs.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "uncertainty_summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    png = plot_uncertainty_box(table, out / "uncertainty_box.png",
                               title=f"Ensemble of {len(runs)} runs ({ref.config.get('arch', '')}, "
                                     f"{ref.config.get('task', '')}, {args.split}): std vs likelihood")
    print(summary.to_string(index=False))
    return [out / "uncertainty_pairs.csv", out / "uncertainty_summary.csv", png]


# --------------------------------------------------------------------------- attribution

def _read_signal_from_root(root: Path, record: str, sampling_rate: int, cache_dir=None) -> np.ndarray:
    """One record from a dataset folder: PTB-XL reads just that WFDB file (same reader and checks
    as ``load_ptbxl``); other layouts go through ``ecg_keras.datasets.load``."""
    from ecg_keras import datasets

    if (root / "ptbxl_database.csv").is_file():
        from ecg_keras.datasets.ptbxl import RATES, read_database
        from ecg_keras.datasets.wfdb_io import read_record

        if sampling_rate not in RATES:
            raise InsightsError(f"PTB-XL comes at {sorted(RATES)} Hz, not {sampling_rate}")
        db = read_database(root / "ptbxl_database.csv", RATES[sampling_rate])
        keys = {str(i): i for i in db.index}
        if str(record) not in keys:
            raise InsightsError(f"record {record} is not in {root / 'ptbxl_database.csv'}")
        name = db.loc[keys[str(record)], RATES[sampling_rate]]
        return read_record(root / str(name).strip(), expected_fs=sampling_rate)
    rs = datasets.load(root, sampling_rate=sampling_rate, cache_dir=cache_dir)
    keys = [str(i) for i in rs.meta.index]
    if str(record) not in keys:
        raise InsightsError(f"record {record} is not in {root}")
    return np.asarray(rs.signals[keys.index(str(record))], dtype=np.float32)


def cmd_attribution(args) -> list[Path]:
    from ecg_keras.runs import resolve

    from ecg_keras.evaluation.attribution import attribute_record
    from ecg_keras.evaluation.plots import plot_attribution

    if len(args.runs) != 1:
        raise InsightsError("attribution takes exactly one RUN_DIR")
    run = resolve(args.runs[0])
    if not run.release:
        run.file(artefact.MODEL)  # missing: fail before reading the record
    config, classes = run.config, run.classes
    if args.cls not in classes:
        raise InsightsError(f"--class {args.cls!r} is not one of the run's classes {classes}")
    fs = int(args.sampling_rate or run.sampling_rate)
    standardizer = run.standardizer if run.release or (run.path / artefact.STANDARDIZER).is_file() else None
    if standardizer is None:
        print(f"warning: {run.path / 'standardizer.json'} missing; the signal is fed unstandardised", file=sys.stderr)
    if (args.data_dir is None) == (args.npy is None):
        raise InsightsError("give exactly one of --data-dir ROOT (with --record) or --npy SIGNAL.npy")
    if args.npy:
        signal = np.load(args.npy, allow_pickle=False).astype(np.float32)
        if signal.ndim == 2 and signal.shape[0] == 12 and signal.shape[1] != 12:
            signal = signal.T
        record = args.record or Path(args.npy).stem
    else:
        if args.record is None:
            raise InsightsError("--data-dir needs --record ID")
        from ecg_keras.datasets.cache import cache_option

        signal = _read_signal_from_root(Path(args.data_dir), args.record, fs, cache_option(args.cache_dir))
        record = args.record
    c = classes.index(args.cls)
    res = attribute_record(run.model, signal, c, standardizer, fs, method=args.method, combine=args.combine,
                           steps=args.steps, epsilon=args.epsilon)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        out = out / f"attribution_{_safe(record)}_{_safe(args.cls)}_{args.method}.png"
    what = "integrated gradients" if args.method == "ig" else f"epsilon-LRP (eps {args.epsilon:g})"
    title = (f"record {record}, class {args.cls} (p={res.probability:.3f}), "
             f"{config.get('arch', '')}: {what}, windows combined by {args.combine}")
    png = plot_attribution(res.signal, res.attribution, out, sampling_rate=fs, title=title)
    npz = out.with_suffix(".npz")
    with atomic_path(npz) as tmp:
        np.savez(tmp, attribution=res.attribution, signal=res.signal, offsets=res.offsets,
                 window_logits=res.window_logits, window_attributions=res.window_attributions,
                 class_index=c, sampling_rate=fs)
    print(f"record {record}, class {args.cls}: window logits {np.round(res.window_logits, 3).tolist()}, "
          f"record probability {res.probability:.3f}; sum of attributions {res.attribution.sum():.3f}")
    return [png, npz]


# --------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecg-keras evaluate", description="Deeper insights (PTB-XL paper, Section VI).")
    sub = p.add_subparsers(dest="command", required=True)

    h = sub.add_parser("hierarchy", help="per-node AUCs of the diagnostic hierarchy + tree bar chart")
    h.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run(s) of the 'diagnostic' task")
    h.add_argument("--statements", metavar="SCP_STATEMENTS_CSV",
                   help="PTB-XL scp_statements.csv (default: the package's built-in table)")
    h.add_argument("--split", default="test", help="predictions split (default test)")
    h.add_argument("--out", default="evaluation", help="output directory (default ./evaluation)")

    u = sub.add_parser("uncertainty", help="ensemble std vs scp_codes likelihoods + box plot")
    u.add_argument("runs", nargs="+", metavar="RUN_DIR", help="runs differing only in seed (>= 2)")
    u.add_argument("--database", "--likelihoods", dest="database", metavar="PTBXL_DATABASE_CSV",
                   help="ptbxl_database.csv (ecg_id, scp_codes) or JSON {id: {code: likelihood}}")
    u.add_argument("--statements", metavar="SCP_STATEMENTS_CSV",
                   help="hierarchy for subclass/superclass runs (default: built-in table)")
    u.add_argument("--split", default="test", help="predictions split (default test)")
    u.add_argument("--out", default="evaluation", help="output directory (default ./evaluation)")

    a = sub.add_parser("attribution", help="attribution map of one record and class over the 12 leads")
    a.add_argument("runs", nargs=1, metavar="RUN_DIR", help="run directory with model.keras")
    a.add_argument("--record", help="record id (ecg_id for PTB-XL)")
    a.add_argument("--class", dest="cls", required=True, metavar="CODE", help="class name in classes.json")
    a.add_argument("--data-dir", metavar="ROOT", help="dataset folder (PTB-XL root, or any layout "
                                                      "ecg_keras.datasets.load reads)")
    a.add_argument("--cache-dir", metavar="DIR",
                   help="signal cache folder for --data-dir (default <data root>/cache; 'off': no cache)")
    a.add_argument("--npy", metavar="SIGNAL.npy", help="alternatively: a (T, 12) signal in mV")
    a.add_argument("--sampling-rate", type=int, help="default: the run's config.json")
    a.add_argument("--method", choices=("ig", "lrp"), default="ig",
                   help="ig = integrated gradients (default), lrp = epsilon-LRP (conv models)")
    a.add_argument("--combine", choices=("max", "mean"), default="max",
                   help="overlapping windows: map of the max-logit window (default) or mean")
    a.add_argument("--steps", type=int, default=64, help="IG integration steps (default 64)")
    a.add_argument("--epsilon", type=float, default=0.1, help="LRP epsilon (default 0.1)")
    a.add_argument("--out", required=True, help="output PNG (or a directory)")
    return p


_COMMANDS = {"hierarchy": cmd_hierarchy, "uncertainty": cmd_uncertainty, "attribution": cmd_attribution}


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    written = _COMMANDS[args.command](args)
    for f in written:
        print(f"wrote {f}")
    return 0

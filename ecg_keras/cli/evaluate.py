"""``ecg-keras evaluate ...`` (in a checkout also ``python evaluate.py ...``), see ``main``.

Two modes:

* raw arrays: ``--y-true Y.npy --y-pred P.npy [--bootstrap-ids IDS.npy | --bootstrap N --seed S]
  [--save-ids OUT.npy] [--json OUT.json]`` scores (n_samples, n_classes) arrays and writes
  ``{"macro_auc": {"point", "mean", "lower", "upper"}, "fmax": {...}, "n_bootstrap": N}``.
* run directories: ``RUN_DIR [RUN_DIR ...] [--out DIR]``. A run directory holds
  ``config.json`` (``arch``, ``task``, ``dataset``, ``seed``, optional ``kind``),
  ``classes.json``, ``predictions/test.npz`` (and optionally ``val.npz``/``train.npz``) with
  arrays ``ids``, ``y_true``, ``y_pred`` (record-level probabilities; optional boolean
  ``healthy`` for age/sex subsets) and optionally ``history.csv``. Runs are grouped by
  (dataset, task); several runs of a group are also scored as their ensemble (mean of the
  probabilities, matched on ids, naive runs excluded). Writes ``metrics.json``,
  ``results_long.csv``, ``table_<dataset>_<metric>.csv``, ``results.md``, Figure-2 style
  ``figure2_<dataset>_<metric>.png``, ``roc/*.png``, ``history/*.png`` and the bootstrap
  resamples ``bootstrap/<dataset>_<task>_ids.npy`` (rows index the test records sorted by id,
  listed in ``..._records.npy``) into ``--out`` (default ``./evaluation``); with
  ``--hierarchy scp_statements.csv`` also ``hierarchy_<dataset>_<model>.csv`` (per-node AUCs)
  for ``diagnostic`` runs. F_beta/G_beta use G_beta-optimal thresholds from train predictions,
  else val predictions (recorded as ``threshold_source`` in metrics.json).

Real labelled folder: ``MODEL --dataset FOLDER [--labels CSV] [--models-dir DIR]`` scores one
model (run directory, release directory or released name) on the folder's records (LUDB,
CinC ``# Dx:`` headers or a ``labels.csv``; :mod:`ecg_keras.evaluation.validation`) and writes
``validation_<folder>.json`` / ``.csv`` (per class: AUC, 90 % bootstrap interval, positives)
into ``--out``.

Subcommands ``hierarchy``, ``uncertainty`` and ``attribution`` (the paper's deeper insights) are
dispatched to :mod:`ecg_keras.cli.insights` when they are the first argument.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras.cli import command
from ecg_keras.files import atomic_path, write_text
from ecg_keras.runs import check_predictions
from ecg_keras.tasks import BINARY, DIAGNOSTIC, MULTILABEL, REGRESSION, table_tasks

from ecg_keras.evaluation import bootstrap as bs
from ecg_keras.evaluation import metrics as M
from ecg_keras.evaluation import tables
from ecg_keras.evaluation.scoring import ScoredModel, group_models, score_models, stored_bootstrap
from ecg_keras.evaluation.runs import EvaluationError, check_labels, load_array, read_npy, read_runs

DEFAULT_N_BOOTSTRAP = 1000
#: Column order of the tables (the paper's); other tasks follow in order of appearance.
TASK_ORDER = table_tasks()
LOWER_IS_BETTER = ("mae",)


def _indices(y_true, args, n_samples: int) -> np.ndarray:
    if args.bootstrap_ids:
        idx = read_npy(args.bootstrap_ids, "--bootstrap-ids")
        if idx.ndim != 2 or idx.size == 0:
            raise EvaluationError(f"--bootstrap-ids: {args.bootstrap_ids} must be a non-empty (n_resamples, "
                                  f"n_samples) integer array, got shape {idx.shape}")
        try:
            return bs.load_indices(args.bootstrap_ids, n_samples)
        except ValueError as e:
            raise EvaluationError(f"--bootstrap-ids: {e}") from e
    return bs.draw_bootstrap_indices(y_true, n=args.bootstrap, seed=args.seed)


def run_arrays(args) -> dict:
    y_true = load_array(args.y_true, "--y-true")
    y_pred = load_array(args.y_pred, "--y-pred")
    if y_true.shape != y_pred.shape:
        raise EvaluationError(f"--y-true {y_true.shape} and --y-pred {y_pred.shape} differ in shape")
    check_labels(y_true, f"--y-true {args.y_true}")
    check_predictions(y_pred, f"--y-pred {args.y_pred}")
    idx = _indices(y_true, args, len(y_true))
    if args.save_ids:
        bs.save_indices(args.save_ids, idx)
    res = bs.bootstrap_scores(y_true, y_pred, {"macro_auc": M.macro_auc, "fmax": M.fmax}, idx)
    res["n_bootstrap"] = int(len(idx))
    if args.json:
        _write_json(args.json, res)
    print(json.dumps(res, indent=2))
    return res


# --------------------------------------------------------------------------- run directories

def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(s))


def run_dirs(args) -> dict:
    runs = read_runs(args.runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Path(args.bootstrap_dir) if args.bootstrap_dir else out / "bootstrap"
    groups: dict = {}
    for r in runs:
        groups.setdefault(r.key, []).append(r)
    mapping = None
    if args.hierarchy:
        if not Path(args.hierarchy).is_file():
            raise EvaluationError(f"--hierarchy: {args.hierarchy} does not exist")
        mapping = pd.read_csv(args.hierarchy, index_col=0)

    results: dict = {}      # dataset -> model -> task -> metric -> stats
    info: dict = {}         # dataset -> task -> model -> {runs, threshold_source}
    pngs: list[Path] = []
    for (dataset, task), members in groups.items():
        kind = members[0].kind
        if kind != REGRESSION:
            for r in members:
                for split, p in r.splits.items():
                    where = f"{r.path / 'predictions' / f'{split}.npz'}"
                    check_labels(p.y_true, f"{where} (y_true)", p.ids)
                    check_predictions(p.y_pred, f"{where} (y_pred)", p.ids)
        models = group_models(members)
        test0 = models[0].splits["test"]
        subsets = {"": None}
        if kind in (REGRESSION, BINARY) and test0.healthy is not None:
            subsets = {"": None, **{f"[{k}]": v for k, v in M.subset_masks(test0.healthy).items()
                                    if k != M.EVERY_RECORD}}
        for suffix, mask in subsets.items():
            task_name = task + suffix
            sel = slice(None) if mask is None else mask
            y_true = test0.y_true[sel]
            stem = _safe(f"{dataset}_{task_name}")
            try:
                idx = stored_bootstrap(y_true, kind, test0.ids[sel], args.bootstrap, args.seed, store, stem)
            except ValueError as e:
                raise EvaluationError(f"{dataset}/{task_name}: {e}") from e
            challenge = kind == MULTILABEL and args.challenge == "auto" and suffix == ""
            scored = score_models(models, y_true, idx, kind, challenge=challenge, rows=sel)
            for model in models:
                res, src = scored[model.name]
                test = model.splits["test"]
                results.setdefault(dataset, {}).setdefault(model.name, {})[task_name] = res
                info.setdefault(dataset, {}).setdefault(task_name, {})[model.name] = {
                    "runs": model.runs, "threshold_source": src, "kind": kind,
                    "n_test": int(len(y_true)), "n_bootstrap": int(len(idx))}
                if suffix == "" and mapping is not None and task == DIAGNOSTIC.name:
                    from ecg_keras.evaluation.hierarchy import node_auc_table
                    with atomic_path(out / f"hierarchy_{_safe(dataset)}_{_safe(model.name)}.csv") as tmp:
                        node_auc_table(test.y_true, test.y_pred, members[0].classes, mapping).to_csv(tmp, index=False)
                if suffix == "" and kind != REGRESSION and not args.no_plots:
                    pngs.append(_roc_png(out, dataset, task, model, members[0].classes, args))
        if not args.no_plots:
            for model in models:
                if model.history is not None:
                    from ecg_keras.evaluation.plots import plot_history
                    pngs.append(plot_history(model.history, out / "history" /
                                             f"{_safe(dataset)}_{_safe(task)}_{_safe(model.name)}.png",
                                             title=f"{model.name} {dataset}/{task}"))

    # tables and Figure-2 charts per dataset and metric
    long_frames, md = [], ["# Evaluation results\n",
                           f"Bootstrap: {args.bootstrap} resamples of the test set (seed {args.seed}); "
                           "entries are point(max deviation to the 5%/95% quantiles, x1e-3).\n"]
    for dataset, res in results.items():
        lt = tables.long_table(res)
        lt.insert(0, "dataset", dataset)
        long_frames.append(lt)
        metrics_here = list(dict.fromkeys(lt["metric"]))
        for metric in metrics_here:
            seen = list(dict.fromkeys(lt.loc[lt.metric == metric, "task"]))
            tasks_m = sorted(seen, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER
                                                  else len(TASK_ORDER), seen.index(t)))
            higher = metric not in LOWER_IS_BETTER
            tab = tables.results_table(res, metric=metric, tasks=tasks_m, higher_is_better=higher)
            tab = tab[(tab != tables.MISSING).any(axis=1)]
            with atomic_path(out / f"table_{_safe(dataset)}_{_safe(metric)}.csv") as tmp:
                tab.to_csv(tmp)
            md += [f"\n## {dataset}: {metric}\n\n", tables.to_markdown(tab)]
            if not args.no_plots:
                from ecg_keras.evaluation.plots import plot_ci_bars
                sub = {m: {t: v for t, v in per.items() if metric in v} for m, per in res.items()}
                sub = {m: per for m, per in sub.items() if per}
                pngs.append(plot_ci_bars(sub, out / f"figure2_{_safe(dataset)}_{_safe(metric)}.png",
                                         metric=metric, tasks=tasks_m, title=f"{dataset}: {metric}",
                                         higher_is_better=higher))
    with atomic_path(out / "results_long.csv") as tmp:
        pd.concat(long_frames, ignore_index=True).to_csv(tmp, index=False)
    write_text(out / "results.md", "".join(md))
    payload = {"n_bootstrap": int(args.bootstrap), "seed": int(args.seed), "results": results,
               "info": info}
    _write_json(out / "metrics.json", payload)
    print("".join(md))
    print(f"wrote {out / 'metrics.json'}, {out / 'results.md'}, {out / 'results_long.csv'} "
          f"and {len(pngs)} figure(s) to {out}")
    return payload


def _roc_png(out: Path, dataset, task, model: ScoredModel, classes, args) -> Path:
    from ecg_keras.evaluation.plots import plot_roc_curves
    t = model.splits["test"]
    return plot_roc_curves(t.y_true, t.y_pred, classes,
                           out / "roc" / f"{_safe(dataset)}_{_safe(task)}_{_safe(model.name)}.png",
                           title=f"{model.name} {dataset}/{task}", max_classes=args.max_roc_classes)


# --------------------------------------------------------------------------- entry point

def run_dataset(args) -> dict:
    from ecg_keras.evaluation.validation import validate

    result = validate(args.runs[0], args.dataset, labels=args.labels, n_bootstrap=args.bootstrap, seed=args.seed,
                      models_directory=args.models_dir)
    paths = result.write(args.out)
    print(result.format())
    print(f"wrote {paths[0]} and {paths[1]}")
    return result.to_dict()


def _write_json(path, obj) -> None:
    path = Path(path)
    write_text(path, json.dumps(obj, indent=2, allow_nan=True))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecg-keras evaluate",
        description="Score ECG predictions with bootstrap confidence intervals (PTB-XL protocol).",
        epilog="Modes: RUN_DIR [RUN_DIR ...] [--out DIR]  |  MODEL --dataset FOLDER [--labels CSV]  |  "
               "--y-true Y.npy --y-pred P.npy [--json OUT]  |  "
               "subcommands hierarchy / uncertainty / attribution (ecg-keras evaluate SUBCOMMAND -h)")
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories written by training")
    p.add_argument("--y-true", help="(n_samples, n_classes) .npy of binary labels")
    p.add_argument("--y-pred", help="(n_samples, n_classes) .npy of probabilities")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bootstrap-ids", help="stored (n_resamples, n_samples) index .npy to reuse")
    g.add_argument("--bootstrap", type=int, default=DEFAULT_N_BOOTSTRAP,
                   help=f"number of resamples to draw (default {DEFAULT_N_BOOTSTRAP})")
    p.add_argument("--seed", type=int, default=0, help="seed of the resample draw (default 0)")
    p.add_argument("--save-ids", help="write the resample indices used to this .npy")
    p.add_argument("--json", help="raw mode: write the scores to this JSON file")
    p.add_argument("--out", default="evaluation", help="run mode: output directory (default ./evaluation)")
    p.add_argument("--bootstrap-dir", help="run mode: where resamples are stored/reused (default OUT/bootstrap)")
    p.add_argument("--challenge", choices=("auto", "off"), default="auto",
                   help="run mode: F_beta/G_beta with G_beta-optimal thresholds from train (else val) "
                        "predictions when available (default auto)")
    p.add_argument("--hierarchy", metavar="SCP_STATEMENTS_CSV",
                   help="run mode: for 'diagnostic' runs, also write per-node AUCs of statements, "
                        "subclasses and superclasses (probabilities propagated by clipped sum)")
    p.add_argument("--max-roc-classes", type=int, default=None, help="ROC plots: most frequent classes only")
    p.add_argument("--no-plots", action="store_true", help="run mode: skip PNG figures")
    p.add_argument("--dataset", metavar="FOLDER",
                   help="score one MODEL (run directory, release directory or released name) on a real labelled "
                        "folder: LUDB (ludb.csv), CinC '# Dx:' headers or a labels.csv; per-class AUC with "
                        "90%% bootstrap intervals into OUT/validation_<folder>.json/.csv")
    p.add_argument("--labels", metavar="CSV", help="--dataset: label table (columns record,labels) for the folder")
    p.add_argument("--models-dir", metavar="DIR",
                   help="--dataset: models directory of released names (default: $ECG_KERAS_MODELS_DIR or the "
                        "package's zoo)")
    return p


@command
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ecg_keras.cli import insights  # the subcommands (deeper insights)

    if argv and argv[0] in insights.SUBCOMMANDS:
        return insights.main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error(f"--bootstrap must be at least 1, got {args.bootstrap}")
    raw = args.y_true is not None or args.y_pred is not None
    if raw:
        if args.runs:
            parser.error("give either RUN_DIRs or --y-true/--y-pred, not both")
        if args.y_true is None or args.y_pred is None:
            parser.error("--y-true and --y-pred go together")
        run_arrays(args)
    elif args.dataset is not None:
        if len(args.runs) != 1 or args.bootstrap_ids or args.save_ids or args.json:
            parser.error("--dataset scores exactly one MODEL (run directory, release directory or released "
                         "name); --bootstrap-ids/--save-ids/--json are raw-array options")
        run_dataset(args)
    elif args.labels is not None or args.models_dir is not None:
        parser.error("--labels and --models-dir go with --dataset FOLDER")
    elif args.runs:
        if args.bootstrap_ids or args.save_ids or args.json:
            parser.error("--bootstrap-ids/--save-ids/--json are raw-array options; run mode "
                         "stores resamples under --bootstrap-dir and writes OUT/metrics.json")
        run_dirs(args)
    else:
        parser.print_help()
        return 2
    return 0

"""Training-size sweep (paper Figure 4): finetuned vs trained from scratch on 1/8 ... 8 training folds.

    >>> from ecg_keras.training import sweep
    >>> out = sweep(TrainConfig(task="all", dataset="icbeb2018", arch="xresnet1d101"), "runs/ptbxl-all-...")

Training subsets (nested, deterministic): ``k >= 1`` folds = training folds ``1..k``; a fraction
``1/m`` of a fold = the first ``m * fraction`` of ``m`` iteratively stratified sub-folds of fold 1
(``tasks.stratified_folds`` with ``m = 1 / smallest fraction``), so 1/8 is inside 1/4 inside 1/2
inside fold 1. Validation and test folds are never subsampled.

Per size and seed two runs: ``<out>/<size>/seed<seed>/finetuned`` (:func:`finetune.finetune`,
``phase_epochs``) and ``.../scratch`` (:func:`loop.train`, ``config.epochs``; its standardiser is
fitted on the subset). Complete runs are reused, so an interrupted sweep continues.

Scoring: macro AUC over the classes with positives and negatives in the evaluation set
(``eval_parts``, default the test fold; ``("val", "test")`` pools both, legitimate here because
no run uses its validation fold for any decision — the final epoch is kept). Bootstrap CIs
(5%/95%) use one stored set of resamples (``bootstrap_indices.npy``) for every run; with several
seeds the score per resample is the mean over seeds. ``diff`` is finetuned minus scratch on the
same resamples (paired). Outputs: ``results.csv``, ``results.md``, ``sweep.png``, ``sweep.json``.

With ``config.distribute`` every run trains under that strategy (``multiworker``: every worker
runs the same sweep command; the chief alone writes the runs and the sweep's tables).
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras import tasks
from ecg_keras.runs import resolve
from ecg_keras.datasets.base import Splits, TaskData
from ecg_keras.training.config import TrainConfig
from ecg_keras.training.transfer import PHASE_EPOCHS, finetune, load_transfer_splits

#: Training sizes in folds (the paper's Figure 4: 1/8 ... 8 of the 8 training folds).
TRAIN_SIZES = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8)
N_BOOTSTRAP = 1000
MODES = ("finetuned", "scratch")


def size_label(size: float) -> str:
    f = Fraction(size).limit_denominator(64)
    return f"{f.numerator}-{f.denominator}folds" if f.denominator != 1 else f"{f.numerator}folds"


def _labels(td: TaskData) -> list[list[int]]:
    y = np.asarray(td.y)
    if td.kind == tasks.REGRESSION or y.shape[1] == 0:
        return [[] for _ in range(len(td))]
    return [list(np.flatnonzero(row > 0.5)) for row in y]


def train_subset(train: TaskData, size: float, sizes: Sequence[float] = TRAIN_SIZES, seed: int = 0) -> TaskData:
    """The training records of ``size`` folds (nested subsets, see the module docstring)."""
    from ecg_keras.datasets.tasks import stratified_folds

    folds = np.asarray(train.folds)
    fold_ids = sorted(set(folds.tolist()))
    if size >= 1:
        k = int(round(size))
        if abs(size - k) > 1e-9 or k > len(fold_ids):
            raise ValueError(f"training size {size} folds: whole sizes must be integers <= {len(fold_ids)}")
        return train.subset(np.isin(folds, fold_ids[:k]))
    fractions = [s for s in sizes if s < 1] or [size]
    m = int(round(1 / min(fractions)))
    take = size * m
    if abs(take - round(take)) > 1e-9:
        raise ValueError(f"training size {size} is not a multiple of the smallest fraction 1/{m}")
    first = np.flatnonzero(folds == fold_ids[0])
    sub = stratified_folds(_labels(train.subset(first)), n_folds=m, seed=seed)
    return train.subset(first[sub <= int(round(take))])


def sweep(config: TrainConfig, init_from: str | Path | None, sizes: Sequence[float] = TRAIN_SIZES,
          phase_epochs: Sequence[int] = PHASE_EPOCHS, *, seeds: Sequence[int] | None = None,
          splits: Splits | None = None, output: str | Path | None = None, eval_parts: Sequence[str] = ("test",),
          n_bootstrap: int = N_BOOTSTRAP, train_bn: bool = True, data_path: str | None = None,
          download: bool = False, log=print) -> Path:
    """Run (or reuse) every run of the sweep, score them and write the tables and the figure.

    ``init_from=None`` trains from scratch only. ``config.epochs`` is the scratch runs' epoch
    count, ``phase_epochs`` the finetuned runs'. Returns the sweep directory.
    """
    from ecg_keras.training import distribute as dist, rundir as rd
    from ecg_keras.training.loop import train

    seeds = list(seeds) if seeds else [config.seed]
    synthetic = config.dataset == "synthetic"
    if splits is None:
        splits, data_path, synthetic = load_transfer_splits(config, download=download, log=log)
    out = Path(output or config.output or Path("runs") / f"sweep-{Path(str(config.dataset)).name}-{config.task}-{config.arch}")
    # the other workers of a multi-worker sweep only train
    chief = config.distribute != "multiworker" or dist.is_chief(dist.make_strategy("multiworker"))
    if chief:
        out.mkdir(parents=True, exist_ok=True)
    modes = [m for m in MODES if init_from is not None or m == "scratch"]
    runs = []
    for size in sizes:
        subset = train_subset(splits.train, size, sizes)
        if len(subset) == 0:
            raise ValueError(f"training size {size} folds selects no record")
        sub_splits = Splits(subset, splits.val, splits.test)
        for seed in seeds:
            for mode in modes:
                run_dir = out / size_label(size) / f"seed{seed}" / mode
                cfg = dataclasses.replace(config, seed=seed, output=str(run_dir), verbose=config.verbose,
                                          extra={**config.extra, "sweep": str(out), "train_size_folds": size})
                run = rd.RunDir(run_dir)
                log(f"\n[sweep] {size_label(size)} ({len(subset)} records), seed {seed}: {mode}")
                if not run.is_complete():
                    if mode == "finetuned":
                        finetune(dataclasses.replace(cfg, resume=True), init_from, phase_epochs, splits=sub_splits,
                                 data_path=data_path, train_bn=train_bn, log=log)
                    else:
                        train(dataclasses.replace(cfg, resume=not run.is_empty()), splits=sub_splits,
                              data_path=data_path, log=log)
                runs.append({"size_folds": size, "n_train": len(subset), "seed": seed, "mode": mode,
                             "run_dir": str(run_dir)})
    if not chief:
        return out
    table, meta = score_sweep(runs, out, eval_parts=eval_parts, n_bootstrap=n_bootstrap)
    meta.update({"config": config.to_dict(), "init_from": None if init_from is None else str(init_from),
                 "phase_epochs": list(phase_epochs), "sizes": list(sizes), "seeds": seeds, "synthetic": synthetic,
                 "data_path": data_path, "runs": runs})
    rd.write_json(out / "sweep.json", meta)
    with rd.atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    rd.write_text(out / "results.md", markdown(table, meta))
    with rd.atomic_path(out / "sweep.png") as tmp:
        plot_sweep(table, tmp, title=_title(config, meta))
    return out


def _title(config: TrainConfig, meta: dict) -> str:
    ds = Path(str(config.dataset)).name
    return f"{ds} / {config.task} / {config.arch}: macro AUC vs training size"


def _load_eval(run_dir: str, parts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets, predictions and record ids of ``parts``, read and checked by :class:`ecg_keras.runs.Run`."""
    preds = [resolve(run_dir).predictions(part) for part in parts]
    return (np.concatenate([p.y_true for p in preds]), np.concatenate([p.y_pred for p in preds]),
            np.concatenate([p.ids.astype(str) for p in preds]))


def score_sweep(runs: list[dict], out: Path, eval_parts: Sequence[str] = ("test",),
                n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """One row per (size, mode): macro AUC point / 5% / 95% (mean over seeds per resample) and,
    on the finetuned rows, the paired difference to scratch."""
    from ecg_keras.evaluation import bootstrap_scores, draw_bootstrap_indices, macro_auc, save_indices, summarize
    from ecg_keras.evaluation.scoring import scorable_classes

    y_true, _, ids0 = _load_eval(runs[0]["run_dir"], eval_parts)
    n_pos = (y_true > 0.5).sum(0)
    keep = np.flatnonzero(scorable_classes(y_true))
    if keep.size == 0:
        raise ValueError("no class has both positives and negatives in the evaluation set")
    classes = resolve(runs[0]["run_dir"]).classes
    yk = y_true[:, keep]
    indices = draw_bootstrap_indices(yk, n=n_bootstrap, seed=seed)
    save_indices(out / "bootstrap_indices.npy", indices)

    scores = {}
    for r in runs:
        yt, yp, ids = _load_eval(r["run_dir"], eval_parts)
        if not (np.array_equal(ids, ids0) and np.array_equal(yt, y_true)):
            raise ValueError(f"{r['run_dir']}: evaluated on other records than the rest of the sweep")
        summary, samples = bootstrap_scores(yk, yp[:, keep], {"macro_auc": macro_auc}, indices, return_samples=True)
        scores[(r["size_folds"], r["mode"], r["seed"])] = (summary["macro_auc"]["point"], samples["macro_auc"])

    rows = []
    sizes = sorted({r["size_folds"] for r in runs})
    modes = [m for m in MODES if any(r["mode"] == m for r in runs)]
    for size in sizes:
        n_train = next(r["n_train"] for r in runs if r["size_folds"] == size)
        per_mode = {}
        for mode in modes:
            got = [v for (s, m, _), v in scores.items() if s == size and m == mode]
            point = float(np.mean([p for p, _ in got]))
            samples = np.mean([smp for _, smp in got], axis=0)
            per_mode[mode] = (point, samples)
            st = summarize(point, samples)
            rows.append({"size_folds": size, "n_train": n_train, "mode": mode, "seeds": len(got),
                         "macro_auc": st["point"], "lower": st["lower"], "upper": st["upper"],
                         "per_seed": ";".join(f"{p:.4f}" for p, _ in got)})
        if len(per_mode) == 2:
            (pf, sf), (ps, ss) = per_mode["finetuned"], per_mode["scratch"]
            d = summarize(pf - ps, sf - ss)
            rows[-2].update({"diff": d["point"], "diff_lower": d["lower"], "diff_upper": d["upper"],
                             "p_finetuned_better": float(np.mean(sf - ss > 0))})
    table = pd.DataFrame(rows)
    meta = {"eval_parts": list(eval_parts), "n_eval_records": int(len(y_true)), "n_bootstrap": int(n_bootstrap),
            "classes_scored": [classes[i] for i in keep], "positives": {classes[i]: int(n_pos[i]) for i in keep},
            "classes_not_scored": [classes[i] for i in range(len(classes)) if i not in set(keep.tolist())]}
    return table, meta


def _fmt_ci(point, lower, upper) -> str:
    from ecg_keras.evaluation import format_ci

    return format_ci(point, lower, upper)


def markdown(table: pd.DataFrame, meta: dict) -> str:
    """The sweep table in the paper's ``0.925(08)`` notation."""
    def size_text(s):
        f = Fraction(s).limit_denominator(64)
        return str(f)

    modes = list(dict.fromkeys(table["mode"]))
    head = ["train size (folds)", "train records"] + [f"{m} macro AUC" for m in modes]
    if "diff" in table.columns:
        head += ["finetuned - scratch [5%, 95%]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, g in table.groupby("size_folds", sort=True):
        cells = [size_text(size), str(int(g["n_train"].iloc[0]))]
        for m in modes:
            r = g[g["mode"] == m].iloc[0]
            cells.append(_fmt_ci(r["macro_auc"], r["lower"], r["upper"]))
        if "diff" in table.columns:
            r = g[g["mode"] == "finetuned"].iloc[0]
            cells.append(f"{r['diff']:+.3f} [{r['diff_lower']:+.3f}, {r['diff_upper']:+.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"\nMacro AUC on {meta['n_eval_records']} records ({'+'.join(meta['eval_parts'])}), classes scored: "
            f"{', '.join(f'{c} ({n})' for c, n in meta['positives'].items())}"
            + (f"; not scored (no positive or no negative): {', '.join(meta['classes_not_scored'])}"
               if meta["classes_not_scored"] else "")
            + f". 0.925(08) = point estimate and max deviation to the {meta['n_bootstrap']}-resample bootstrap "
              "5%/95% bounds (1e-3 units).\n")
    return "\n".join(lines) + "\n" + note


def plot_sweep(table: pd.DataFrame, path, title: str | None = None) -> Path:
    """Figure-4 style: macro AUC (with 5-95% bootstrap band) vs training records, log-x, per mode."""
    from ecg_keras.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = {"finetuned": "tab:red", "scratch": "tab:blue"}
    for mode, g in table.groupby("mode", sort=False):
        g = g.sort_values("n_train")
        x = g["n_train"].to_numpy(float)
        ax.plot(x, g["macro_auc"], "o-", color=colors.get(mode), label=mode)
        ax.fill_between(x, g["lower"], g["upper"], color=colors.get(mode), alpha=0.18, linewidth=0)
        for xi, seeds in zip(x, g["per_seed"]):
            vals = [float(v) for v in str(seeds).split(";") if v]
            if len(vals) > 1:
                ax.plot([xi] * len(vals), vals, ".", color=colors.get(mode), alpha=0.5)
    ax.set_xscale("log", base=2)
    sizes = table.drop_duplicates("n_train").sort_values("n_train")
    ax.set_xticks(sizes["n_train"].to_numpy(float))
    ax.set_xticklabels([f"{int(n)}\n({Fraction(s).limit_denominator(64)})" for n, s in
                        zip(sizes["n_train"], sizes["size_folds"])], fontsize=8)
    ax.set_xlabel("training records (training folds)")
    ax.set_ylabel("macro AUC (5%-95% bootstrap band)")
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)

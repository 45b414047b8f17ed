"""``--experiment NAME``: train several architectures on one task and tabulate them.

Runs go to ``<root>/NAME/<arch>`` (root = ``--output`` or ``runs``); the comparison is written to
``<root>/NAME/results.csv`` and ``results.md``. Finished runs are reused, unfinished ones are
resumed with ``--resume``, so a killed experiment continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from ecg_keras.training import rundir as rd
from ecg_keras.training.config import TrainConfig

#: The architectures of the PTB-XL benchmark table (docs/PROTOCOL.md).
BENCHMARK_ARCHS = ("fcn_wang", "resnet1d_wang", "xresnet1d101", "inception1d", "lstm", "lstm_bidir")


def run_experiment(name: str, base: TrainConfig, archs=None, *, download: bool = False, log=print) -> str:
    """Train ``archs`` (default :data:`BENCHMARK_ARCHS`) with ``base``'s other settings; returns the table."""
    from ecg_keras.training.data import load_splits
    from ecg_keras.training.loop import train

    archs = list(archs or BENCHMARK_ARCHS)
    root = Path(base.output or "runs") / name
    splits, data_path = None, None
    rows = []
    for arch in archs:
        out = root / arch
        run = rd.RunDir(out)
        cfg = dataclasses.replace(base, arch=arch, lr=base.lr, output=str(out), extra={**base.extra, "experiment": name},
                                  resume=base.resume or run.is_complete())
        if not run.is_complete():
            if splits is None:
                splits, _, data_path = load_splits(cfg.resolved(), download=download, log=log)
            log(f"\n[{name}] {arch} ({archs.index(arch) + 1}/{len(archs)})")
            train(cfg, splits=splits, data_path=str(data_path), log=log)
        rows.append(_row(arch, run))
    table = pd.DataFrame(rows)
    with rd.atomic_path(root / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    md = _markdown(table, name, base)
    rd.write_text(root / "results.md", md)
    return md


def _row(arch: str, run: rd.RunDir) -> dict:
    metrics = json.loads(run.metrics.read_text())
    row = {"arch": arch, "params": metrics.get("trainable_params")}
    for part in ("val", "test"):
        for key, value in metrics.get(part, {}).items():
            if key not in ("n_records", "error", "classes_scored"):
                row[f"{part}_{key}"] = value
    row["train_s"] = metrics.get("train_seconds")
    row["run_dir"] = str(run.path)
    return row


def _markdown(table: pd.DataFrame, name: str, base: TrainConfig) -> str:
    sort_key = next((c for c in ("test_macro_auc", "test_mae") if c in table.columns), None)
    if sort_key:
        table = table.sort_values(sort_key, ascending=sort_key.endswith("mae"))
    cols = [c for c in table.columns if c != "run_dir"]
    lines = [f"# Experiment {name}: task {base.task}, dataset {base.dataset}, {base.epochs} epochs, seed {base.seed}", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)

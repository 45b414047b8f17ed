"""The grid's Table II (``table.md``, ``table.csv``, ``results_long.csv``) beside the paper's
values, and its Figure-2 style plots."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.training.grid.plan import WAVELET_EPOCHS


def paper_difference(point, paper) -> str:
    """The Δ cell: ours (rounded to 3 digits) minus the paper's value, or empty."""
    if paper is None or point is None or not np.isfinite(point):
        return ""
    return f"{round(float(point), 3) - paper:+.3f}"


def seeds_cell(info: dict) -> str:
    """The seeds cell: the seeds scored and the best one, or the number of ensembled runs."""
    seeds = info.get("seeds")
    if not seeds:
        return f"mean of {len(info['runs'])} runs" if info.get("runs") else ""
    return ",".join(map(str, seeds)) + (f" (best {info['best_seed']})" if len(seeds) > 1 else "")


def write_tables(out: Path, evaluation: dict, *, dataset: str, tasks: Sequence[str], epochs: int,
                 n_bootstrap: int, bootstrap_seed: int, missing: Sequence[str] = ()) -> Path:
    """``table.md``, ``table.csv`` (Table II layout) and ``results_long.csv``; returns table.md."""
    import pandas as pd

    from ecg_keras.evaluation import published, tables
    from ecg_keras.training import rundir as rd

    res, info, notes = evaluation["results"], evaluation["info"], evaluation["notes"]
    tasks = [t for t in tasks if t in res]
    by_model: dict = {}
    for task in tasks:
        for model, per in res[task].items():
            by_model.setdefault(model, {})[task] = per
    order = tables.rank_models(by_model, tasks[0], "macro_auc") if tasks else []
    synthetic = dataset == "synthetic"
    paper_data = {"ptbxl": "PTB-XL", "icbeb2018": "ICBEB2018"}[published.PAPER_DATA[dataset]]
    paper_col = f"paper ({paper_data})"

    def seeds_of(model):
        cells = {seeds_cell(info[t][model]) for t in tasks if model in info.get(t, {})}
        return " / ".join(sorted(c for c in cells if c))

    csv_rows, md = [], []
    title = {"ptbxl": "PTB-XL (Table II)", "icbeb2018": "ICBEB2018", "synthetic": "SYNTHETIC DATA"}[dataset]
    md.append(f"# Benchmark reproduction: {title}\n")
    if synthetic:
        md.append("> **SYNTHETIC DATA.** These runs used ecg_keras' generated PTB-XL-like demo set, not real ECGs. "
                  f"The \"{paper_col}\" columns are the paper's numbers for **PTB-XL**, not for this data: the "
                  "differences only show that the pipeline runs, nothing about the models.\n")
    md.append(f"Macro AUC on the test fold (fold 10) as point(deviation): the point estimate and the largest "
              f"distance to the 5%/95% quantiles of {n_bootstrap} bootstrap resamples (seed {bootstrap_seed}), in "
              f"units of 1e-3, the same resamples for every model. \"{paper_col}\" = {published.CITATION}; "
              "Δ = ours (rounded) − paper. "
              f"{epochs} epochs per network run (Wavelet+NN: at most {min(epochs, WAVELET_EPOCHS)}, best validation "
              "loss); with several seeds, the seed with the best validation macro AUC is reported; the ensemble "
              "averages the reported runs of all models but naive.\n")
    header = ["model", "seeds"] + [c for t in tasks for c in (t, paper_col, "Δ")]
    md += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + [":---", "---:", "---:"] * len(tasks)) + "|"]
    for model in order:
        cells = [published.display_name(model), seeds_of(model)]
        row = {"model": model, "seeds": seeds_of(model), "data": "SYNTHETIC" if synthetic else dataset,
               "paper_data": paper_data}
        for t in tasks:
            st = res[t].get(model, {}).get("macro_auc")
            paper = published.paper_value(dataset, model, t)
            point = st["point"] if st else None
            cells += [tables.format_ci(st) if st else tables.MISSING,
                      f"{paper:.3f}" if paper is not None else "", paper_difference(point, paper)]
            row.update({t: tables.format_ci(st) if st else "", f"{t}_point": point,
                        f"{t}_lower": st["lower"] if st else None, f"{t}_upper": st["upper"] if st else None,
                        f"{t}_paper": paper, f"{t}_diff": paper_difference(point, paper)})
        md.append("| " + " | ".join(cells) + " |")
        csv_rows.append(row)
    others = [m for m in ("fmax", "F_beta", "G_beta") if any(m in per for t in tasks for per in res[t].values())]
    for metric in others:
        sources = sorted({i.get("threshold_source") or "?" for t in tasks for i in info.get(t, {}).values()})
        fitted = f"thresholds maximising G_beta on the {' / '.join(sources)} predictions"
        what = {"fmax": "Fmax (sample-centric, threshold chosen on the test fold itself)",
                "F_beta": f"F_beta (β = 2), {fitted}", "G_beta": f"G_beta (β = 2), {fitted}"}[metric]
        tab = tables.results_table({m: by_model[m] for m in order}, metric=metric, tasks=tasks, sort_by=tasks[0])
        tab.index = pd.Index([published.display_name(m) for m in tab.index], name="model")
        md += ["", f"## {what}", "", "No paper values recorded for this metric.", "", tables.to_markdown(tab).rstrip()]
    if notes or missing:
        md += ["", "## Notes", ""]
        md += [f"- {t}: {n}" for t, n in notes.items()]
        if missing:
            md.append(f"- not complete (left out): {', '.join(missing)}")
    text = "\n".join(md) + "\n"
    path = rd.write_text(out / "table.md", text)
    with rd.atomic_path(out / "table.csv") as tmp:
        pd.DataFrame(csv_rows).to_csv(tmp, index=False)
    long = tables.long_table(by_model)
    long.insert(3, "paper", [published.paper_value(dataset, m, t, k) for m, t, k in
                             zip(long["model"], long["task"], long["metric"])])
    with rd.atomic_path(out / "results_long.csv") as tmp:
        long.to_csv(tmp, index=False)
    return path


def plot_figures(out: Path, evaluation: dict, dataset: str, tasks: Sequence[str]) -> list[Path]:
    """Figure-2 style, one file per task: models ranked by macro AUC, 90% interval bars, the
    paper's value as a diamond."""
    from ecg_keras.evaluation import published, tables
    from ecg_keras.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    paths = []
    for task in tasks:
        res = evaluation["results"].get(task)
        if not res:
            continue
        models = tables.rank_models({m: {task: r} for m, r in res.items()}, task, "macro_auc")
        pts = np.array([res[m]["macro_auc"]["point"] for m in models], float)
        lo = np.array([res[m]["macro_auc"]["lower"] for m in models], float)
        hi = np.array([res[m]["macro_auc"]["upper"] for m in models], float)
        err = np.nan_to_num(np.vstack([np.clip(pts - lo, 0, None), np.clip(hi - pts, 0, None)]))
        y = np.arange(len(models))[::-1]
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(models) + 1.6))
        ax.barh(y, pts, xerr=err, capsize=3, height=0.6, label="ours (90% interval)",
                color=["tab:gray" if m in tables.PINNED_LAST else "tab:blue" for m in models])
        paper = np.array([published.paper_value(dataset, m, task) or np.nan for m in models], float)
        if np.isfinite(paper).any():
            data_name = {"ptbxl": "PTB-XL", "icbeb2018": "ICBEB2018"}[published.PAPER_DATA[dataset]]
            ax.plot(paper, y, "kD", markersize=5, label=f"paper ({data_name})")
        ax.set_yticks(y, [published.display_name(m) for m in models])
        vals = np.concatenate([pts, lo, hi, paper])
        vals = vals[np.isfinite(vals)]
        ax.set_xlim(max(0.0, float(vals.min()) - 0.05), min(1.0, float(vals.max()) + 0.03) + 0.01)
        ax.set_xlabel("macro AUC (test fold)")
        ax.set_title(f"{task}" + ("  —  SYNTHETIC DATA" if dataset == "synthetic" else f"  ({dataset})"))
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        paths.append(save_figure(fig, out / "figures" / f"{dataset}_{task}.png"))
    return paths

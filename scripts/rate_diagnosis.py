"""Why a rhythm model ranks real records as it does: rate, labels and the rate sweep (docs/SYNTHETIC.md).

    python scripts/rate_diagnosis.py ludb --folder ../shared/data/ludb-1.0.1 --pred pred.csv
    python scripts/rate_diagnosis.py sweep --model NAME_OR_RUN --out sweep.csv [--label v3]
    python scripts/rate_diagnosis.py figure --sweep a.csv --sweep b.csv [--table a.csv --table b.csv] --out fig.png

``ludb``: joins a ``ecg-keras predict`` output of LUDB's records with LUDB's own table and beat
annotations (heart rate from the QRS marks of lead II, P-P/R-R range) and prints, for SR, STACH and
SBRAD, every negative that outranks a positive: its rhythm, rate and conduction/morphology
statements, and how many positives it outranks. Reads only the folder and file it is given;
nothing of it is written to the repository.

``sweep``: renders synthetic sinus records of one fixed set of patients with the heart rate swept
from 40 to 160 bpm (the generator's own renderer; nothing real) and writes the model's mean
probability per class and rate, so one can see whether a class's output is monotone in the rate.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("SR", "STACH", "SBRAD", "SARRH", "AFIB")
LUDB_COLUMNS = ("Conduction abnormalities", "Extrasystolies", "Hypertrophies", "Cardiac pacing", "Ischemia",
                "Non-specific repolarization abnormalities", "Other states")


def ludb_table(folder: Path) -> pd.DataFrame:
    """One row per LUDB record: rhythm lines, the other statements, rate and RR range from lead II's QRS marks."""
    import wfdb

    from ecg_keras.datasets.labelmap import to_scp

    meta = pd.read_csv(folder / "ludb.csv").set_index("ID")
    rows = []
    for rid, m in meta.iterrows():
        ann = wfdb.rdann(str(folder / "data" / str(rid)), "ii")
        qrs = ann.sample[np.asarray(ann.symbol) == "N"] / ann.fs
        rr = np.diff(qrs)
        labels, _ = to_scp(s.strip() for s in str(m["Rhythms"]).split("\n"))
        other = "; ".join(str(m[c]).replace("\n", ", ").strip() for c in LUDB_COLUMNS if isinstance(m[c], str))
        rows.append({"record": str(rid), "rhythm": str(m["Rhythms"]).replace("\n", " + ").strip(),
                     "labels": ",".join(sorted(labels)), "hr": 60 / rr.mean() if len(rr) else np.nan,
                     "rr_range_ms": 1000 * np.ptp(rr) if len(rr) else np.nan, "n_qrs": len(qrs), "other": other})
    return pd.DataFrame(rows).set_index("record")


def outranking(table: pd.DataFrame, cls: str) -> pd.DataFrame:
    """Negatives of ``cls`` with a score above at least one positive, and how many positives they outrank."""
    pos = table[table["labels"].str.split(",").map(lambda s: cls in s)]
    neg = table.drop(pos.index)
    p = np.sort(pos[cls].to_numpy())
    neg = neg.assign(outranks=np.searchsorted(p, neg[cls].to_numpy(), side="left"))
    return neg[neg["outranks"] > 0].sort_values("outranks", ascending=False)


def cmd_ludb(args) -> None:
    from sklearn.metrics import roc_auc_score

    table = ludb_table(Path(args.folder))
    pred = pd.read_csv(args.pred)
    key = pred.columns[0]
    pred[key] = pred[key].map(lambda s: Path(str(s)).name.split(".")[0])
    pred = pred.groupby(key)[list(CLASSES)].mean()
    table = table.join(pred, how="inner")
    pd.set_option("display.width", 250, "display.max_colwidth", 90, "display.max_rows", 200)
    for cls in ("STACH", "SR", "SBRAD"):
        y = table["labels"].str.split(",").map(lambda s: cls in s).to_numpy()
        auc = roc_auc_score(y, table[cls])
        print(f"\n## {cls}: AUC {auc:.3f}, {y.sum()} positives; positives:")
        print(table[y][["rhythm", "hr", "rr_range_ms", cls, "other"]].sort_values(cls).round(3).to_string())
        bad = outranking(table, cls)
        pairs = int(bad["outranks"].sum())
        print(f"negatives outranking a positive: {len(bad)} records, {pairs} of {y.sum() * (~y).sum()} pairs")
        by = bad.groupby("rhythm")["outranks"].agg(["count", "sum"]).sort_values("sum", ascending=False)
        print(by.to_string())
        print(bad[["rhythm", "hr", "rr_range_ms", cls, "outranks", "other"]].head(args.top).round(3).to_string())
    if args.save:
        table.to_csv(args.save)


def cmd_sweep(args) -> None:
    import ecg_keras
    from ecg_keras.datasets import synthetic as syn

    meta, specs = syn.draw_dataset(args.patients * 3, seed=args.seed)
    base = [s for s in specs if s.rhythm == "SR" and not s.ectopics][: args.patients]
    rates = np.arange(40, 161, args.step)
    model = ecg_keras.load(args.model)
    rows = []
    for hr in rates:
        sig = [syn.render_record(dataclasses.replace(s, hr=float(hr))) for s in base]
        prob = model.predict(sig, fs=syn.BASE_FS)
        rows.append({"hr": float(hr), **{c: float(prob[c].mean()) for c in CLASSES},
                     **{f"{c}_q10": float(prob[c].quantile(0.1)) for c in CLASSES},
                     **{f"{c}_q90": float(prob[c].quantile(0.9)) for c in CLASSES}})
        print(f"{hr:5.0f} bpm  " + "  ".join(f"{c} {rows[-1][c]:.3f}" for c in CLASSES), flush=True)
    pd.DataFrame(rows).assign(label=args.label).to_csv(args.out, index=False)


def cmd_figure(args) -> None:
    """Sweep curves (one line style per model) and, if given, LUDB scores against the annotated rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = [pd.read_csv(f) for f in args.sweep]
    tables = [pd.read_csv(f, dtype={"record": str}) for f in args.table]
    cols = 3 + bool(tables)
    fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 3.6), constrained_layout=True)
    styles = ["--", "-", ":"]
    for ax, cls in zip(axes, ("SBRAD", "SR", "STACH")):
        for sw, ls in zip(sweeps, styles):
            ax.plot(sw.hr, sw[cls], ls, color="k", label=sw.label.iloc[0])
            ax.fill_between(sw.hr, sw[f"{cls}_q10"], sw[f"{cls}_q90"], color="0.5", alpha=0.15)
        ax.set_yscale("logit" if args.logit else "linear")
        ax.axvspan(50, 60, color="tab:blue", alpha=0.1)
        ax.axvspan(90, 100, color="tab:red", alpha=0.1)
        ax.set(title=f"P({cls}), synthetic sinus records", xlabel="heart rate (bpm)")
        ax.legend(fontsize=7)
    if tables:
        ax = axes[-1]
        for t, sw, marker in zip(tables, sweeps, ("x", "o")):
            pos = t["labels"].fillna("").str.contains("STACH")
            sinus = t["rhythm"].str.startswith("Sinus")
            ax.scatter(t.hr[sinus & ~pos], t.STACH[sinus & ~pos].clip(1e-4, 1 - 1e-4), s=10, marker=marker,
                       color="0.5", label=f"{sw.label.iloc[0]}: other sinus")
            ax.scatter(t.hr[pos], t.STACH[pos].clip(1e-4, 1 - 1e-4), s=40, marker=marker, color="tab:red",
                       label=f"{sw.label.iloc[0]}: 'Sinus tachycardia'")
        ax.set_yscale("logit")
        ax.set(title="P(STACH) on LUDB sinus records", xlabel="rate from LUDB's QRS marks (bpm)")
        ax.legend(fontsize=6)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ludb")
    a.add_argument("--folder", required=True)
    a.add_argument("--pred", required=True)
    a.add_argument("--top", type=int, default=25)
    a.add_argument("--save")
    b = sub.add_parser("sweep")
    b.add_argument("--model", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--label", default="")
    b.add_argument("--patients", type=int, default=40)
    b.add_argument("--step", type=int, default=4)
    b.add_argument("--seed", type=int, default=123)
    c = sub.add_parser("figure")
    c.add_argument("--sweep", action="append", required=True, help="a sweep CSV (repeatable)")
    c.add_argument("--table", action="append", default=[], help="a `ludb --save` CSV per sweep, same order")
    c.add_argument("--logit", action="store_true")
    c.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    {"ludb": cmd_ludb, "sweep": cmd_sweep, "figure": cmd_figure}[args.cmd](args)


if __name__ == "__main__":
    main()

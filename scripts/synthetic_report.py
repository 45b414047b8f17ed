"""Real vs synthetic ECGs on the same statistics (docs/SYNTHETIC.md and its figures).

    python scripts/synthetic_report.py --real LUDB=../shared/data/ludb-1.0.1/data \\
        --real CinC=../shared/data/cinc2021-sample --real CPSC=../shared/data/cpsc2018-sample \\
        --synthetic v2=/tmp/synth-v2 --synthetic v3=/tmp/synth-v3 --out docs/figures --prefix synthetic

Each ``--real NAME=FOLDER`` is any folder ``ecg-keras predict`` reads (WFDB, CPSC .mat, ...);
each ``--synthetic NAME=FOLDER`` is a generated PTB-XL-layout folder (its ``records500``, else
``records100``). Every record is cut to 10 s at 500 Hz and measured the same way: amplitude per
lead, heart rate and RR variability from an R-peak detector, QRS width, P/R and T/R ratios of
the median beat in lead II, baseline wander, high-frequency noise, mains-line peak, spectra and
lead correlations. Writes ``<prefix>_*.png`` and ``<prefix>_stats.csv`` to ``--out`` and prints
a markdown table of medians (interquartile range). Reads only the folders it is given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import butter, find_peaks, sosfiltfilt, welch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecg_keras.datasets.base import LEADS, DataError  # noqa: E402
from ecg_keras.io.records import find_records, read_any, to_model_input  # noqa: E402

FS = 500
N = 10 * FS
_HP = butter(2, 0.67, btype="high", fs=FS, output="sos")
_BP = butter(2, (0.67, 40), btype="band", fs=FS, output="sos")
_LP = butter(2, 0.5, btype="low", fs=FS, output="sos")
_HF = butter(4, 40, btype="high", fs=FS, output="sos")
_QRS = butter(2, (8, 30), btype="band", fs=FS, output="sos")


def r_peaks(x: np.ndarray) -> np.ndarray:
    """R-peak sample indices from the 8-30 Hz energy summed over the leads (Pan-Tompkins-like)."""
    e = (np.diff(sosfiltfilt(_QRS, x, axis=0), axis=0) ** 2).sum(axis=1)
    e = np.convolve(e, np.ones(int(0.08 * FS)) / (0.08 * FS), mode="same")
    peaks, _ = find_peaks(e, height=0.25 * np.percentile(e, 99.5), distance=int(0.28 * FS))
    return peaks


def measure(x: np.ndarray) -> dict:
    """Statistics of one (5000, 12) record in mV at 500 Hz."""
    x = x - np.median(x, axis=0)
    hp, bp = sosfiltfilt(_HP, x, axis=0), sosfiltfilt(_BP, x, axis=0)
    out = {f"amp_{lead}": float(np.percentile(hp[:, j], 99.5) - np.percentile(hp[:, j], 0.5))
           for j, lead in enumerate(LEADS)}
    peaks = r_peaks(x)
    peaks = peaks[(peaks > 0.35 * FS) & (peaks < N - 0.55 * FS)]
    rr = np.diff(peaks) / FS
    out.update(hr=np.nan, rr_cv=np.nan, rmssd_ms=np.nan, qrs_ms=np.nan, p_r=np.nan, t_r=np.nan)
    if len(rr) >= 2:
        out.update(hr=60.0 / rr.mean(), rr_cv=rr.std() / rr.mean(), rmssd_ms=1000 * np.sqrt(np.mean(np.diff(rr) ** 2)))
        # median beat, refined on the largest absolute deflection of lead II within +-40 ms
        beats = np.stack([bp[p - int(0.35 * FS):p + int(0.55 * FS)] for p in peaks])
        tpl = np.median(beats, axis=0)  # (450, 12)
        c = int(0.35 * FS)
        mag = (tpl[c - 50:c + 50] ** 2).sum(axis=1)
        cum = np.cumsum(mag) / mag.sum()
        out["qrs_ms"] = 2.0 * (np.searchsorted(cum, 0.95) - np.searchsorted(cum, 0.05))
        ii = tpl[:, 1] - tpl[c - int(0.05 * FS), 1]  # relative to the PR segment
        r = np.abs(ii[c - 20:c + 20]).max()
        if r > 0:
            out["p_r"] = float(np.abs(ii[c - int(0.3 * FS):c - int(0.08 * FS)]).max() / r)
            out["t_r"] = float(ii[c + int(0.15 * FS):c + int(0.5 * FS)][np.argmax(np.abs(ii[c + int(0.15 * FS):c + int(0.5 * FS)]))] / r)
    out["baseline_mv"] = float(np.median(sosfiltfilt(_LP, x, axis=0).std(axis=0)))
    out["hf_noise_uv"] = float(1000 * np.median(sosfiltfilt(_HF, x, axis=0).std(axis=0)))
    f, p = welch(x[:, 1], fs=FS, nperseg=1024)
    mains = max(p[np.abs(f - m) < 1].max() / np.median(p[(np.abs(f - m) > 2) & (np.abs(f - m) < 6)]) for m in (50, 60))
    out["mains_db"] = float(10 * np.log10(mains))
    out["_psd"] = p
    out["_corr"] = np.corrcoef(hp.T)
    return out


def load(folder: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    sub = [folder / d for d in ("records500", "records100") if (folder / d).is_dir()]
    paths = [p for p in find_records([sub[0] if sub else folder]) if p.suffix in (".hea", ".mat")]
    out = []
    for p in paths[:limit]:
        try:
            x, _ = to_model_input(read_any(p), FS)
        except DataError as e:  # a flat (lost) lead: skipped in every group alike
            print(f"skipped {e}", file=sys.stderr)
            continue
        if len(x) >= N:
            out.append((p.stem, np.asarray(x[:N], np.float64)))
    return out


def table(stats: pd.DataFrame, columns) -> str:
    names = list(dict.fromkeys(stats.dataset))
    rows = ["| statistic | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c in columns:
        cells = []
        for n in names:
            v = stats.loc[stats.dataset == n, c].dropna()
            cells.append(f"{v.median():.3g} ({v.quantile(0.25):.3g}-{v.quantile(0.75):.3g})" if len(v) else "-")
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def figures(stats: pd.DataFrame, out: Path, prefix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(stats.dataset))
    cols = [("hr", "heart rate (bpm)"), ("rr_cv", "RR coefficient of variation"), ("rmssd_ms", "RMSSD (ms)"),
            ("qrs_ms", "QRS width (ms)"), ("amp_II", "lead II amplitude (mV p-p)"), ("t_r", "T/R ratio, lead II"),
            ("p_r", "P/R ratio, lead II"), ("baseline_mv", "baseline wander < 0.5 Hz (mV sd)"),
            ("hf_noise_uv", "noise > 40 Hz (uV sd)")]
    fig, axes = plt.subplots(3, 3, figsize=(13, 10))
    for ax, (c, label) in zip(axes.flat, cols):
        data = [stats.loc[stats.dataset == n, c].dropna() for n in names]
        lo, hi = np.nanpercentile(np.concatenate(data), [1, 99])
        if c in ("rr_cv", "rmssd_ms", "baseline_mv", "hf_noise_uv"):
            bins = np.geomspace(max(lo, 1e-4), hi, 30)
            ax.set_xscale("log")
        else:
            bins = np.linspace(lo, hi, 30)
        for n, d in zip(names, data):
            ax.hist(np.clip(d, bins[0], bins[-1]), bins=bins, histtype="step", density=True, label=n, lw=1.5)
        ax.set_title(label, fontsize=10)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_distributions.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for n in names:
        psd = np.stack(stats.loc[stats.dataset == n, "_psd"].to_list())
        f = np.fft.rfftfreq(1024, 1 / FS)
        axes[0].semilogy(f, np.median(psd, axis=0), label=n)
        amps = stats.loc[stats.dataset == n, [f"amp_{lead}" for lead in LEADS]].median()
        axes[1].plot(range(12), amps.values, marker="o", label=n)
    axes[0].set(xlabel="Hz", ylabel="median PSD of lead II (mV^2/Hz)", xlim=(0, 100))
    axes[1].set(xticks=range(12), xticklabels=LEADS, ylabel="median amplitude (mV p-p)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_spectra_amplitudes.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.4))
    for ax, n in zip(np.atleast_1d(axes), names):
        corr = np.nanmean(np.stack(stats.loc[stats.dataset == n, "_corr"].to_list()), axis=0)
        ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(n, fontsize=9)
        ax.set_xticks(range(12), LEADS, fontsize=6, rotation=90)
        ax.set_yticks(range(12), LEADS, fontsize=6)
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_lead_correlation.png", dpi=80)
    plt.close(fig)


def examples(groups: dict, out: Path, prefix: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), 1, figsize=(13, 1.8 * len(groups)), squeeze=False)
    for ax, (n, recs) in zip(axes[:, 0], groups.items()):
        name, x = recs[len(recs) // 2]
        t = np.arange(N) / FS
        for k, j in enumerate((1, 6, 10)):  # II, V1, V5
            ax.plot(t[:2500], x[:2500, j] - np.median(x[:, j]) - 2.5 * k, lw=0.7)
        ax.set_title(f"{n}: {name} (II, V1, V5)", fontsize=9, loc="left")
        ax.set_yticks([])
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_examples.png", dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--real", action="append", default=[], metavar="NAME=FOLDER")
    p.add_argument("--synthetic", action="append", default=[], metavar="NAME=FOLDER")
    p.add_argument("--max-records", type=int, default=300)
    p.add_argument("--out", default="docs/figures")
    p.add_argument("--prefix", default="synthetic")
    a = p.parse_args(argv)
    groups = {}
    for spec in a.real + a.synthetic:
        name, _, folder = spec.partition("=")
        if not folder or not Path(folder).is_dir():
            print(f"error: {spec}: expected NAME=FOLDER with an existing folder", file=sys.stderr)
            return 2
        groups[name] = load(Path(folder), a.max_records)
    rows = [{"dataset": n, "record": r, **measure(x)} for n, recs in groups.items() for r, x in recs]
    stats = pd.DataFrame(rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    figures(stats, out, a.prefix)
    examples(groups, out, a.prefix)
    stats.drop(columns=["_psd", "_corr"]).to_csv(out / f"{a.prefix}_stats.csv", index=False, float_format="%.4g")
    cols = ["hr", "rr_cv", "rmssd_ms", "qrs_ms", "amp_I", "amp_II", "amp_V1", "amp_V5", "p_r", "t_r",
            "baseline_mv", "hf_noise_uv", "mains_db"]
    print("n records: " + ", ".join(f"{n} {len(r)}" for n, r in groups.items()))
    print(table(stats, cols))
    names = list(groups)
    corr = {n: np.nanmean(np.stack(stats.loc[stats.dataset == n, "_corr"].to_list()), axis=0) for n in names}
    iu = np.triu_indices(12, 1)
    print("\nmean |lead correlation| (off-diagonal): " + ", ".join(f"{n} {np.abs(c[iu]).mean():.2f}" for n, c in corr.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A 12-lead ECG on the usual paper grid, with predictions (and an attribution band).

Layout (the common 3 x 4 print): columns of 2.5 s -- I, II, III | aVR, aVL, aVF | V1, V2, V3 |
V4, V5, V6 -- each showing its own 2.5-s stretch of the first 10 s, and a 10-s lead II rhythm
strip below. Scale 25 mm/s and 10 mm/mV; minor grid lines every 1 mm (0.04 s, 0.1 mV), major
every 5 mm (0.2 s, 0.5 mV); a 1-mV calibration pulse starts every row. The figure is drawn in
millimetres (1 data unit = 1 mm), so it prints at true scale at 100 %.

With ``attribution`` (samples at ``attribution_fs``, 12 leads), every lead's segment gets a band
under its trace coloured by the attribution of the top class over time (red: evidence for the
class, blue: against; smoothed over 40 ms, one colour scale for the whole record).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.datasets.base import LEAD_NAMES as LEADS

LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
MM_PER_S, MM_PER_MV = 25.0, 10.0
SEGMENT_S = 2.5
ROW_MM = 30.0  # vertical space of one row (3 mV)
CAL_MM = 10.0  # room for the calibration pulse at the start of every row
PANEL_MM = 72.0  # side panel with the predictions


def _smooth(a: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return a
    kernel = np.ones(n) / n
    return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, a)


def plot_ecg_paper(signal: np.ndarray, fs: float, out: str | Path, *, title: str = "",
                   predictions: Sequence[tuple[str, float]] = (), model_line: str = "",
                   warning: str | None = None, attribution: np.ndarray | None = None,
                   attribution_fs: float | None = None, attribution_label: str | None = None,
                   dpi: int = 150) -> Path:
    """Write the PNG ``out`` of ``signal`` (samples, 12) in mV, leads in ``LEADS`` order."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    sig = np.asarray(signal, dtype=np.float64)
    total_s = 4 * SEGMENT_S
    n_show = min(len(sig), int(round(total_s * fs)))
    grid_w = CAL_MM + total_s * MM_PER_S
    grid_h = 4 * ROW_MM
    top_mm, bottom_mm = 16.0, 7.0
    fig_w, fig_h = grid_w + PANEL_MM + 6, grid_h + top_mm + bottom_mm
    fig = plt.figure(figsize=(fig_w / 25.4, fig_h / 25.4), dpi=dpi)
    ax = fig.add_axes([3 / fig_w, bottom_mm / fig_h, grid_w / fig_w, grid_h / fig_h])
    ax.set_xlim(0, grid_w)
    ax.set_ylim(0, grid_h)
    ax.set_aspect("equal")
    ax.axis("off")
    # paper grid
    ax.set_facecolor("#fff7f5")
    ax.add_patch(plt.Rectangle((0, 0), grid_w, grid_h, color="#fff7f5", zorder=0))
    for x in np.arange(0, grid_w + 0.01, 1.0):
        major = abs((x / 5) - round(x / 5)) < 1e-6
        ax.axvline(x, color="#f0a8a0" if major else "#fbd9d4", lw=0.6 if major else 0.3, zorder=1)
    for y in np.arange(0, grid_h + 0.01, 1.0):
        major = abs((y / 5) - round(y / 5)) < 1e-6
        ax.axhline(y, color="#f0a8a0" if major else "#fbd9d4", lw=0.6 if major else 0.3, zorder=1)

    attr = None
    if attribution is not None:
        attr = np.asarray(attribution, dtype=np.float64)
        attr = _smooth(attr, max(1, int(round(0.04 * (attribution_fs or fs)))))
        scale = float(np.percentile(np.abs(attr), 99.5)) or 1.0
        norm = TwoSlopeNorm(vmin=-scale, vcenter=0.0, vmax=scale)
    lead_index = {name: i for i, name in enumerate(LEADS)}

    def band(lead: str, t0: float, t1: float, x0: float, y_base: float, height: float):
        if attr is None:
            return
        afs = attribution_fs or fs
        a0, a1 = int(round(t0 * afs)), int(round(t1 * afs))
        values = attr[a0:min(a1, len(attr)), lead_index[lead]] if lead != "sum" else attr[a0:a1].sum(axis=1) / 3.0
        if len(values) == 0:
            return
        x1 = x0 + len(values) / afs * MM_PER_S
        ax.imshow(values[None, :], extent=(x0, x1, y_base, y_base + height), aspect="auto", cmap="RdBu_r",
                  norm=norm, alpha=0.55, zorder=2, interpolation="bilinear")

    def trace(x: np.ndarray, t0: float, x0: float, y0: float):
        t = np.arange(len(x)) / fs
        ax.plot(x0 + t * MM_PER_S, y0 + x * MM_PER_MV, color="black", lw=0.55, zorder=3,
                solid_joinstyle="round")

    def calibration(y0: float):
        xs = [1, 2, 2, 7, 7, 8]
        ys = [y0, y0, y0 + MM_PER_MV, y0 + MM_PER_MV, y0, y0]
        ax.plot(xs, ys, color="black", lw=0.7, zorder=3)

    seg = int(round(SEGMENT_S * fs))
    for r, row in enumerate(LAYOUT):
        y0 = grid_h - (r + 0.5) * ROW_MM  # baseline of the row
        calibration(y0)
        for c, lead in enumerate(row):
            a, b = c * seg, min((c + 1) * seg, n_show)
            x0 = CAL_MM + c * SEGMENT_S * MM_PER_S
            band(lead, c * SEGMENT_S, (c + 1) * SEGMENT_S, x0, y0 - ROW_MM / 2 + 1, 4.0)
            if a < b:
                trace(sig[a:b, lead_index[lead]], c * SEGMENT_S, x0, y0)
            ax.text(x0 + 1.0, y0 + ROW_MM / 2 - 4.5, lead, fontsize=8, fontweight="bold", zorder=4,
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=0.5))
            if c:
                ax.plot([x0, x0], [y0 - 3, y0 + 3], color="black", lw=0.7, zorder=3)
    y0 = ROW_MM / 2  # rhythm strip
    calibration(y0)
    band("II", 0.0, total_s, CAL_MM, 1.0, 4.0)
    trace(sig[:n_show, lead_index["II"]], 0.0, CAL_MM, y0)
    ax.text(CAL_MM + 1.0, y0 + ROW_MM / 2 - 4.5, "II (rhythm)", fontsize=8, fontweight="bold", zorder=4,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=0.5))

    # header, footer and side panel
    fig.text(3 / fig_w, 1 - 5 / fig_h, title, fontsize=10, fontweight="bold", va="top")
    shown = f"first {n_show / fs:.1f} s of {len(sig) / fs:.1f} s" if len(sig) > n_show else f"{len(sig) / fs:.1f} s"
    fig.text(3 / fig_w, 1 - 11 / fig_h, f"25 mm/s, 10 mm/mV; grid 1 mm / 5 mm; {shown}", fontsize=7.5,
             va="top", color="#444444")
    fig.text(3 / fig_w, 2 / fig_h, model_line + "  -  research use only, not a medical device", fontsize=7,
             color="#444444")
    px = (grid_w + 8) / fig_w
    fig.text(px, 1 - 5 / fig_h, "Top predictions", fontsize=10, fontweight="bold", va="top")
    y = 1 - 14 / fig_h
    bar_w = (PANEL_MM - 10) / fig_w
    for name, p in predictions:
        fig.text(px, y, f"{name}", fontsize=9, va="top", fontweight="bold")
        fig.text(px + bar_w, y, f"{p:.3f}", fontsize=9, va="top", ha="right")
        bar = fig.add_axes([px, y - 7 / fig_h, bar_w, 2.2 / fig_h])
        bar.set_xlim(0, 1)
        bar.axis("off")
        bar.barh([0], [1], color="#e6e6e6", height=1)
        bar.barh([0], [p], color="#c0392b" if p >= 0.5 else "#7f8c8d", height=1)
        y -= 12 / fig_h
    if warning:
        fig.text(px, y - 2 / fig_h, warning, fontsize=8, color="#c0392b", va="top", fontweight="bold", wrap=True)
        y -= 14 / fig_h
    if attr is not None and attribution_label:
        fig.text(px, y - 2 / fig_h, f"Shaded bands: {attribution_label}\n(red = for, blue = against)",
                 fontsize=7.5, va="top")
    out = Path(out)
    from ecg_keras.files import atomic_path

    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=dpi, facecolor="white", format=out.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return out

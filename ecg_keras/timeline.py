"""Window-by-window probabilities over a long recording (Holter, EDF): ``predict --timeline``.

The record is read in chunks (EDF and ISHNE range by range: :func:`ecg_keras.io.formats.open_stream`),
cut into consecutive segments of ``segment`` seconds (default 10 s, the length of the records the
models are trained on), each segment predicted with the model's whole-record rule; memory stays
bounded by the chunk, whatever the length of the recording. A segment with NaN/Inf samples or a
flat lead (lead-off is common in Holters) gets ``valid=False`` and the reason, not a prediction.

Output: a table with one row per segment (``start_s``, ``end_s``, ``valid``, ``problem``, one
column per class) and a plot of the probabilities over time in hours, with each class's burden
(the share of valid segments at probability >= ``threshold``, e.g. AF burden over 24 h).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_keras.io.base import LEAD_NAMES, DataError

SEGMENT_S = 10.0
CHUNK_SEGMENTS = 64  # segments read from the file at a time
MODEL_SEGMENTS = 16  # segments per model call: 112 windows of a 10-s segment, under one predict batch
THRESHOLD = 0.5


def _open(path: Path):
    from ecg_keras.io.formats import RecordStream, open_stream
    from ecg_keras.io.records import read_any

    return open_stream(path, read=read_any) if path.is_file() else RecordStream(read_any(path))


def timeline(model, path, *, segment: float = SEGMENT_S, fill_missing: bool = False, progress: bool = True,
             chunk_segments: int = CHUNK_SEGMENTS) -> pd.DataFrame:
    """One row per ``segment``-second piece of the record at ``path`` (see the module docstring).

    ``model``: a :class:`ecg_keras.predict.Predictor` (callable on a list of signals, with
    ``classes`` and ``sampling_rate``). ``attrs["leads"]`` says which leads were derived or
    zero-filled; ``attrs["notes"]`` what the reader assumed. A record shorter than one segment or
    whose leads cannot be matched is a DataError naming the file.
    """
    from tqdm.auto import tqdm

    from ecg_keras.datasets.wfdb_io import resample
    from ecg_keras.io.leads import complete, describe
    from ecg_keras.io.records import check_signal

    path = Path(path)
    stream = _open(path)
    step = int(round(segment * stream.fs))
    n_segments = stream.n_samples // step if step > 0 else 0
    if n_segments == 0:
        raise DataError(f"{path}: {stream.n_samples / stream.fs:.1f} s is shorter than one {segment:g}-s segment")
    rows, note = [], ""
    with tqdm(total=n_segments, desc=f"timeline {path.name}", unit="seg", disable=not progress,
              file=sys.stderr) as bar:
        for first in range(0, n_segments, chunk_segments):
            last = min(first + chunk_segments, n_segments)
            chunk = stream.read(first * step, last * step)
            chunk, derived, filled = complete(chunk, stream.leads, path, LEAD_NAMES, fill_missing=fill_missing)
            note = describe(derived, filled)
            keep = [j for j, lead in enumerate(LEAD_NAMES) if lead not in filled]
            inputs, batch_rows = [], []
            for k in range(last - first):
                piece = chunk[k * step:(k + 1) * step]
                row = {"segment": first + k, "start_s": (first + k) * segment, "end_s": (first + k + 1) * segment,
                       "valid": True, "problem": ""}
                try:
                    check_signal(piece[:, keep], stream.fs, f"{path} at {row['start_s']:g} s",
                                 [LEAD_NAMES[j] for j in keep])
                    inputs.append(np.asarray(resample(piece, stream.fs, model.sampling_rate, path), np.float32))
                except DataError as e:
                    row["valid"], row["problem"] = False, str(e)
                batch_rows.append(row)
            with warnings.catch_warnings():
                if filled:  # zero-filled leads are flat by construction and already flagged
                    warnings.filterwarnings("ignore", message=".*flat line")
                probs = iter([p for i in range(0, len(inputs), MODEL_SEGMENTS)
                              for p in model(inputs[i:i + MODEL_SEGMENTS])])
            for row in batch_rows:
                p = next(probs) if row["valid"] else np.full(len(model.classes), np.nan)
                row.update({c: float(v) for c, v in zip(model.classes, p)})
                rows.append(row)
            bar.update(last - first)
    frame = pd.DataFrame(rows, columns=["segment", "start_s", "end_s", "valid", "problem", *model.classes])
    frame.attrs.update(leads=note, notes=list(stream.notes), fs=stream.fs,
                       dropped_s=(stream.n_samples - n_segments * step) / stream.fs)
    return frame


def burden(frame: pd.DataFrame, classes, threshold: float = THRESHOLD) -> dict[str, float]:
    """Share of valid segments with probability >= ``threshold``, per class (NaN if none is valid)."""
    valid = frame[frame["valid"]]
    return {c: float((valid[c] >= threshold).mean()) if len(valid) else float("nan") for c in classes}


def write(frame: pd.DataFrame, classes, csv_path: Path, png_path: Path, title: str, *, top: int = 3,
          threshold: float = THRESHOLD) -> tuple[Path, Path]:
    """The timeline as CSV and as a PNG of the ``top`` classes (by burden) over time in hours."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from ecg_keras.files import atomic_path

    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    share = burden(frame, classes, threshold)
    shown = sorted(classes, key=lambda c: -np.nan_to_num(share[c], nan=-1))[:max(1, top)]
    hours = frame["start_s"].to_numpy() / 3600.0
    fig, ax = plt.subplots(figsize=(12, 4))
    for c in shown:
        ax.plot(hours, frame[c].to_numpy(), lw=0.8, label=f"{c} (burden {100 * share[c]:.1f}%)")
    invalid = ~frame["valid"].to_numpy()
    if invalid.any():
        ax.scatter(hours[invalid], np.zeros(int(invalid.sum())), marker="|", color="grey", label="invalid segment")
    ax.axhline(threshold, color="k", lw=0.5, ls="--")
    ax.set(xlabel="time (h)", ylabel="probability", ylim=(-0.02, 1.02), title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return csv_path, png_path

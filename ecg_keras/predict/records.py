"""Records in, probabilities out: each record read, checked and predicted in bounded groups
(:func:`run_predictions`), one row per record (:func:`to_frame`), the console table and ``--out``."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import DataError
from ecg_keras.io.records import Record, find_records, read_any, record_name, to_model_input
from ecg_keras.predict.predictor import Predictor, load_model

RESERVED = ("record", "valid", "problem", "fs", "duration_s", "leads")
#: Records are predicted in groups of at most ``batch`` records and this many samples (at the
#: model's rate; 2e6 = 5.6 h at 100 Hz), so memory stays bounded for folders and long records.
MAX_BATCH_SAMPLES = 2_000_000


# --------------------------------------------------------------------------- prediction
@dataclass
class Item:
    """One record through the pipeline (kept for plots; not returned by :func:`ecg_keras.predict.predict`)."""

    name: str
    path: Path | None = None
    problem: str | None = None
    fs: float | None = None
    duration: float | None = None
    x: np.ndarray | None = None  # model input (model rate); released after prediction and on_item
    native: np.ndarray | None = None  # checked signal at the file's rate, model lead order
    probabilities: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    plot: Path | None = None
    leads: str = ""  # leads derived or zero-filled (io.leads.describe)


def _prepare(path: Path | Record, model: Predictor, fs, leads, units, fill_missing: bool = False) -> Item:
    if isinstance(path, Record):  # already read (ecg_keras.load(...).predict on arrays)
        item, rec = Item(name=path.name, path=None), path
    else:
        try:
            name = record_name(path)
        except DataError:
            name = str(path)
        item, rec = Item(name=name, path=path), None
    try:
        rec = rec or read_any(path, fs=fs, leads=leads, units=units)
        item.fs, item.duration, item.notes = rec.fs, rec.duration, rec.notes
        item.x, item.native = to_model_input(rec, model.sampling_rate, fill_missing=fill_missing)
        item.leads = rec.lead_note
        if model.window and len(item.x) < model.window:
            item.notes = [*item.notes, f"{item.name}: {rec.duration:g} s, shorter than the model's "
                          f"{model.window / model.sampling_rate:g}-s window: zero-padded to it"]
    except DataError as e:
        item.problem = str(e)
    except (MemoryError, RecursionError) as e:  # one hostile file must not abort the batch
        item.problem = f"{item.name}: too large or too deeply nested to read ({type(e).__name__})"
    return item


def expand_records(records) -> list[Item | Path | Record]:
    out: list[Item | Path | Record] = []
    for r in ([records] if isinstance(records, (str, Path)) else records):
        if isinstance(r, (Item, Record)):
            out.append(r)
            continue
        try:
            out += find_records([r])
        except DataError as e:
            out.append(Item(name=str(r), problem=str(e)))
    return out


def run_predictions(model, records, *, fs=None, leads=None, units: str = "mV", batch: int = 32,
                    progress: bool | None = None, models_directory=None, on_item=None,
                    fill_missing_leads: bool = False) -> tuple[Predictor, list[Item]]:
    """Load ``model`` and predict ``records`` (paths, folders or :class:`~ecg_keras.io.records.Record`
    objects already read); returns the model and one
    :class:`Item` per record. ``on_item(item, model)`` is called for every record after its
    prediction (plots). ``fill_missing_leads``: leads neither recorded nor derivable are zeros
    (flagged in the ``leads`` column) instead of making the record invalid."""
    from tqdm.auto import tqdm

    model = load_model(model, models_directory)
    todo = expand_records(records)
    if leads is not None and isinstance(leads, str):
        leads = [x.strip() for x in leads.split(",") if x.strip()]
    show = len(todo) > 1 if progress is None else progress
    items: list[Item] = []
    pending: list[Item] = []

    def flush():
        ok = [it for it in pending if it.problem is None]
        if ok:
            probs = _predict_isolated(model, ok)
            for it, p in zip(ok, probs):
                if p is None:
                    continue
                if not np.all(np.isfinite(p)):
                    it.problem = f"{it.name}: the model returned non-finite probabilities"
                else:
                    it.probabilities = p
        for it in pending:
            if on_item is not None:
                on_item(it, model)
            it.x = it.native = None  # signals are not kept: memory stays bounded
        items.extend(pending)
        pending.clear()

    with tqdm(total=len(todo), desc="predicting", unit="rec", disable=not show, file=sys.stderr) as bar:
        for t in todo:
            pending.append(t if isinstance(t, Item) else _prepare(t, model, fs, leads, units, fill_missing_leads))
            bar.update(1)
            samples = sum(len(it.x) for it in pending if it.x is not None)
            if len(pending) >= batch or samples >= MAX_BATCH_SAMPLES:
                flush()
        flush()
    return model, items


def _predict_isolated(model: Predictor, items: list[Item]) -> list:
    """Probabilities of ``items``; if the batch fails, each record alone, so that a record the model
    cannot take becomes one invalid row (its ``problem`` says why) instead of failing the others."""
    try:
        return list(model([it.x for it in items]))
    except Exception as e:  # noqa: BLE001 - engines (TF, ONNX Runtime) raise their own types
        if len(items) == 1:
            items[0].problem = f"{items[0].name}: the model could not be run on it ({type(e).__name__}: {e})"
            return [None]
        return [p for it in items for p in _predict_isolated(model, [it])]


def to_frame(model: Predictor, items: list[Item]) -> pd.DataFrame:
    """One row per record: record, valid, problem, fs, duration_s, then one column per class."""
    rows = []
    for it in items:
        row = {"record": it.name, "valid": it.problem is None, "problem": it.problem or "",
               "fs": it.fs, "duration_s": None if it.duration is None else round(it.duration, 3), "leads": it.leads}
        for j, c in enumerate(model.classes):
            row[c] = float(it.probabilities[j]) if it.probabilities is not None else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RESERVED) + list(model.classes))
    frame.attrs["model"] = model.identity()
    return frame


# --------------------------------------------------------------------------- console
def format_table(frame: pd.DataFrame, classes: Sequence[str], top: int = 3) -> str:
    """Records with their top-K classes (probability), invalid records with the reason."""
    width = max([len("record")] + [len(str(r)) for r in frame["record"]])
    width = min(width, 60)
    k = max(1, min(top, len(classes)))
    header = f"{'record':<{width}}  " + "  ".join(f"{'top ' + str(i + 1):<16}" for i in range(k))
    lines = [header, "-" * len(header)]
    for _, row in frame.iterrows():
        name = str(row["record"])
        name = name if len(name) <= width else "..." + name[-(width - 3):]
        if not row["valid"]:
            lines.append(f"{name:<{width}}  INVALID: {row['problem']}")
            continue
        probs = np.array([row[c] for c in classes], dtype=float)
        order = np.argsort(-probs)[:k]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{classes[j] + ' ' + format(probs[j], '.3f'):<16}"
                                                     for j in order))
    return "\n".join(lines)


#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; others unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def write_output(frame: pd.DataFrame, path: Path) -> Path:
    """``--out``: CSV (text cells that start like a formula are prefixed with ``'``) or JSON; written
    to a temporary file and renamed (never through a planted link)."""
    from ecg_keras.files import atomic_path

    path = Path(path)
    if path.suffix.lower() == ".json":
        classes = frame.attrs["model"]["classes"]
        records = []
        for _, row in frame.iterrows():
            records.append({"record": row["record"], "valid": bool(row["valid"]), "problem": row["problem"] or None,
                            "fs": None if pd.isna(row["fs"]) else float(row["fs"]),
                            "duration_s": None if pd.isna(row["duration_s"]) else float(row["duration_s"]),
                            "leads": row["leads"] or None,
                            "probabilities": None if not row["valid"] else {c: float(row[c]) for c in classes}})
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"model": frame.attrs["model"], "records": records}, indent=2))
    else:
        out = frame.copy()
        ident = frame.attrs["model"]
        out["model"] = ident["name"]
        out["model_sha256"] = ident["sha256"]
        out["training_data"] = "SYNTHETIC" if ident["synthetic"] else ident["training_data"]
        for column in ("record", "problem", "model", "training_data"):
            out[column] = out[column].map(spreadsheet_safe)
        with atomic_path(path) as tmp:
            out.to_csv(tmp, index=False, float_format="%.6g")
    return path

"""The generic WFDB-folder reader and the LUDB reader (record I/O: :mod:`ecg_keras.datasets.wfdb_io`).

Generic folders (``load_wfdb_folder``): every ``*.hea`` below ``root`` is a record whose id is
its path relative to ``root`` without the suffix (``"data/1"``; the bare stem is accepted in
label tables when unique). So is every file in a hospital export format
(:mod:`ecg_keras.io.formats`: DICOM, HL7 aECG / GE MUSE / Philips XML, SCP-ECG, EDF, ISHNE;
found by suffix, binary ones also by content whatever their names), read whole, its leads
matched by name and the limb leads derived when missing (:func:`ecg_keras.io.leads.complete`);
such records are not cached. Labels, as a ``labels`` column holding a list of strings, come from

* ``labels=None``: the folder's :data:`LABELS_FILE` (``labels.csv``) when it has one (a label
  table as below), else the ``# Dx:`` header comment lines of PhysioNet/CinC Challenge headers
  (comma-separated SNOMED-CT codes, kept as strings), ``# Age:`` and ``# Sex:`` lines too;
* ``labels=DataFrame`` or a CSV path: one row per record, indexed by record id (or with a
  ``record`` column) and either a ``labels`` column (list, or a string separated by ``,`` ``;``
  or newlines) or 0/1 indicator columns, one per label. Only the records listed are loaded.

The generic dataset answers the task ``"all"`` (see ``tasks.make_task``); ``age``/``sex`` work
when the label table or headers provide them. Folds are ten deterministic stratified folds over
the labels (``tasks.stratified_folds``), patient_id = record id.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import DataError, RecordSet, read_table
from ecg_keras.datasets.wfdb_io import load_record_signals, read_header_text, require_dir, sex_code, to_float

LUDB_RATE = 500
LABELS_FILE = "labels.csv"  # the label table of a generic folder, used when no labels= is given


# --------------------------------------------------------------------------- generic folder
def _find_records(root: Path) -> list[Path]:
    return sorted(p.with_suffix("") for p in root.rglob("*.hea"))


def find_exports(root: Path) -> list[Path]:
    """Files of the hospital export formats below ``root``: by suffix, and binary ones (DICOM, EDF,
    ISHNE, SCP) by content whatever their names (PACS exports are often named by UID)."""
    from ecg_keras.io.formats import SUFFIXES, sniff

    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and
                  (p.suffix.lower() in SUFFIXES or (p.suffix.lower() not in (".hea", ".dat", ".mat", ".csv") and
                                                    not p.with_suffix(".hea").is_file() and
                                                    sniff(p) in ("dicom", "edf", "ishne", "scp"))))


def _read_export(path: Path, target_fs: int | None) -> tuple[np.ndarray, dict]:
    """(signal (samples, 12) float32 at ``target_fs`` (None: native), header-like dict fs/age/sex)."""
    from ecg_keras.datasets.base import LEAD_NAMES
    from ecg_keras.datasets.wfdb_io import resample
    from ecg_keras.io.formats import read_format
    from ecg_keras.io.leads import complete

    rec = read_format(path)
    signal, _, _ = complete(rec.signal, rec.leads, path, LEAD_NAMES)
    if target_fs is not None:
        signal = resample(signal, rec.fs, target_fs, path)
    info = {"fs": rec.fs, "dx": []}
    if rec.age is not None:
        info["age"] = rec.age
    if rec.sex is not None:
        info["sex"] = rec.sex
    return np.asarray(signal, np.float32), info


def _record_id(root: Path, record: Path) -> str:
    return record.relative_to(root).as_posix()


def _split_labels(value) -> list[str]:
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [v.strip() for v in re.split(r"[,;\n]", str(value)) if v.strip()]


def _read_label_table(labels) -> pd.DataFrame:
    if isinstance(labels, pd.DataFrame):
        table = labels.copy()
    else:
        table = read_table(labels, "label table")
        if "record" not in table.columns:
            table = table.set_index(table.columns[0])
    if "record" in table.columns:
        table = table.set_index("record")
    table.index = table.index.map(str)
    if "labels" in table.columns:
        table["labels"] = [_split_labels(v) for v in table["labels"]]
    else:
        indicator = [c for c in table.columns if c not in ("age", "sex", "patient_id")]
        try:
            onehot = table[indicator].fillna(0).astype(float)
        except (TypeError, ValueError):
            raise DataError("label table needs a 'labels' column or 0/1 indicator columns") from None
        table = table.drop(columns=indicator)
        table["labels"] = [[c for c in indicator if row[c] > 0] for _, row in onehot.iterrows()]
    return table


def load_wfdb_folder(root, labels=None, sampling_rate: int | None = None, cache_dir=None,
                     name: str | None = None, n_jobs: int | None = 1) -> RecordSet:
    """Every WFDB record below ``root`` with labels from ``# Dx:`` headers or a label table.

    ``sampling_rate=None`` keeps the native rate (all records must share it); otherwise every
    record is resampled to it. The RecordSet name defaults to ``"wfdb-<folder name>"``; its
    task is ``"all"`` over the ``labels`` column. ``n_jobs``: worker processes for a cold read
    (None = CPU count, 1 = serial; see ``load_record_signals``).
    """
    from ecg_keras.datasets.tasks import stratified_folds

    root = require_dir(root, "WFDB records")
    found = _find_records(root)
    exports = find_exports(root)
    if not found and not exports:
        raise DataError(f"{root}: no WFDB header (*.hea) files and no ECG exports (DICOM, XML, SCP, EDF, ISHNE) found")
    ids = [_record_id(root, r) for r in found]
    headers = {i: read_header_text(r) for i, r in zip(ids, found)}
    by_id = dict(zip(ids, found))
    export_signals = {}
    for path in exports:
        rid = _record_id(root, path.with_suffix(""))
        if rid in by_id:
            rid = _record_id(root, path)
        export_signals[rid], headers[rid] = _read_export(path, sampling_rate)
        by_id[rid] = path
        ids.append(rid)

    if labels is None and (root / LABELS_FILE).is_file():
        labels = root / LABELS_FILE
    if labels is None:
        table = pd.DataFrame(index=pd.Index(ids, name="record"))
        table["labels"] = [list(headers[i].get("dx", [])) for i in ids]
    else:
        table = _read_label_table(labels)
        stems: dict[str, list[str]] = {}
        for i in ids:
            stems.setdefault(Path(i).name, []).append(i)
        mapped = []
        for rid in table.index:
            if rid in by_id:
                mapped.append(rid)
            elif len(stems.get(rid, [])) == 1:
                mapped.append(stems[rid][0])
            else:
                raise DataError(f"{root}: record {rid!r} of the label table has no WFDB header file")
        table.index = pd.Index(mapped, name="record")
        ids = mapped
    table.index.name = "record"
    for col in ("age", "sex"):
        if col not in table.columns:
            table[col] = [headers[i].get(col, np.nan) for i in ids]
    table["sex"] = [sex_code(v) if not isinstance(v, float) else v for v in table["sex"]]
    table["age"] = pd.to_numeric(table["age"], errors="coerce")
    table["patient_id"] = ids
    table["filename"] = ids

    rates = {headers[i]["fs"] for i in ids}
    if sampling_rate is None:
        if len(rates) != 1:
            raise DataError(f"{root}: records have different sampling rates {sorted(rates)}; "
                            f"pass sampling_rate= to resample them to one rate")
        native = rates.pop()
        target, expected = None, native
        rate = int(round(native))
    else:
        target, expected, rate = int(sampling_rate), None, int(sampling_rate)
    wfdb_ids = [i for i in ids if i not in export_signals]
    signals = load_record_signals(name or f"wfdb-{root.name}", root, [by_id[i] for i in wfdb_ids],
                                  expected_fs=expected, target_fs=target, cache_dir=cache_dir,
                                  fixed_length=None, n_jobs=n_jobs) if wfdb_ids else []
    if export_signals:
        wfdb_signals = dict(zip(wfdb_ids, signals))
        signals = [export_signals[i] if i in export_signals else wfdb_signals[i] for i in ids]
        if len({len(x) for x in signals}) == 1:
            signals = np.stack(signals)
    table["strat_fold"] = stratified_folds(table["labels"].tolist(), n_folds=10, seed=0)
    return RecordSet(name or f"wfdb-{root.name}", rate, signals, table, None, False)


# --------------------------------------------------------------------------- LUDB
def _clean(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def ludb_rhythms(value) -> list[str]:
    """'Sinus rhythm\\nWandering atrial pacemaker' -> ['Sinus rhythm', 'Wandering atrial pacemaker']."""
    return [v.strip().rstrip(".").strip() for v in _clean(value).split("\n") if v.strip().rstrip(".")]


def load_ludb(root, sampling_rate: int = LUDB_RATE, cache_dir=None, n_jobs: int | None = 1) -> RecordSet:
    """LUDB 1.0.1 (``ludb.csv`` + ``data/N.hea``): 200 records, 10 s, 500 Hz.

    Labels: the ``Rhythms`` column split at line breaks (multi-label: e.g. "Sinus rhythm" and
    "Wandering atrial pacemaker"); task ``"rhythm"``. Signals (n, 10 * sampling_rate, 12).
    ``n_jobs``: worker processes for a cold read (see ``load_record_signals``).
    """
    from ecg_keras.datasets.tasks import stratified_folds

    root = require_dir(root, "LUDB")
    csv = root / "ludb.csv"
    table = read_table(csv, "LUDB table ludb.csv", ("ID", "Sex", "Age", "Rhythms"))
    meta = pd.DataFrame(index=pd.Index(table["ID"].astype(int).to_numpy(), name="record"))
    meta["patient_id"] = meta.index.to_numpy()
    meta["age"] = [to_float(_clean(v)) for v in table["Age"]]
    meta["sex"] = [sex_code(_clean(v)) for v in table["Sex"]]
    meta["labels"] = [ludb_rhythms(v) for v in table["Rhythms"]]
    for col in table.columns:
        if col not in ("ID", "Sex", "Age"):
            meta[col] = [_clean(v) for v in table[col]]
    meta["filename"] = [f"data/{i}" for i in meta.index]
    records = [root / "data" / str(i) for i in meta.index]
    signals = load_record_signals("ludb", root, records, expected_fs=LUDB_RATE,
                                  target_fs=int(sampling_rate), cache_dir=cache_dir, fixed_length=True,
                                  n_jobs=n_jobs)
    meta["strat_fold"] = stratified_folds(meta["labels"].tolist(), n_folds=10, seed=0)
    return RecordSet("ludb", int(sampling_rate), signals, meta, None, False)

"""PTB-XL reader for the PhysioNet layout (docs/PROTOCOL.md "Data").

``root`` holds ``ptbxl_database.csv`` (index ``ecg_id``; ``scp_codes`` a dict literal),
``scp_statements.csv`` (index = SCP code) and the WFDB records named by ``filename_lr``
(``records100/``, 100 Hz) or ``filename_hr`` (``records500/``, 500 Hz).

A root containing a file named ``SYNTHETIC`` (written by
``ecg_keras.datasets.synthetic.generate_synthetic_ptbxl``) gives a RecordSet named
``"ptbxl-synthetic"`` with ``synthetic=True``, so generated data is never reported as PTB-XL.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_keras.datasets.base import DataError, RecordSet, read_table
from ecg_keras.datasets.tasks import check_scp_codes
from ecg_keras.datasets.wfdb_io import load_record_signals, require_dir

RATES = {100: "filename_lr", 500: "filename_hr"}
SYNTHETIC_MARKER = "SYNTHETIC"
DATABASE_COLUMNS = ("patient_id", "age", "sex", "scp_codes", "strat_fold")
STATEMENT_COLUMNS = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")


def read_scp_statements(path) -> pd.DataFrame:
    """``scp_statements.csv`` indexed by SCP code."""
    statements = read_table(path, "scp_statements.csv", STATEMENT_COLUMNS, index_col=0)
    statements.index = statements.index.map(str)
    return statements


def _parse_codes(text, rid, path: Path) -> dict:
    try:
        codes = ast.literal_eval(text) if isinstance(text, str) else {}
    except (ValueError, SyntaxError):
        raise DataError(f"{path}: record {rid}: scp_codes {text!r} is not a dict literal") from None
    if not isinstance(codes, dict):
        raise DataError(f"{path}: record {rid}: scp_codes {text!r} is not a dict literal")
    return {str(k): v for k, v in codes.items()}


def read_database(path, rate_column: str | None = None) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ``ecg_id`` with ``scp_codes`` parsed to dicts."""
    path = Path(path)
    db = read_table(path, "ptbxl_database.csv", DATABASE_COLUMNS + ((rate_column,) if rate_column else ()),
                    index_col="ecg_id")
    if len(db) == 0:
        raise DataError(f"{path}: no records")
    db["scp_codes"] = [_parse_codes(t, rid, path) for rid, t in zip(db.index, db["scp_codes"])]
    folds = pd.to_numeric(db["strat_fold"], errors="coerce")
    bad = ~folds.isin(range(1, 11))
    if bad.any():
        rid = db.index[np.flatnonzero(bad.to_numpy())[0]]
        raise DataError(f"{path}: record {rid} has strat_fold {db.loc[rid, 'strat_fold']!r}, expected 1..10")
    db["strat_fold"] = folds.astype(np.int64)
    return db


def is_synthetic(root) -> bool:
    return (Path(root) / SYNTHETIC_MARKER).exists()


def load_ptbxl(root, sampling_rate: int = 100, cache_dir=None, n_jobs: int | None = 1) -> RecordSet:
    """PTB-XL at 100 Hz (``records100``, (n, 1000, 12)) or 500 Hz (``records500``, (n, 5000, 12)).

    Signals are float32 in mV, lead order ``LEADS``, read once (exactly as ``wfdb.rdsamp`` reads
    them; plain format-16 records through the fast reader ``fastwfdb``) and then served from the
    cache (``cache_dir``: None = default under ``default_data_root()``, False = no cache, or a
    folder). ``n_jobs``: worker processes for the first read (None = CPU count, 1 = serial).
    """
    if sampling_rate not in RATES:
        raise ValueError(f"PTB-XL comes at {sorted(RATES)} Hz, not {sampling_rate}")
    root = require_dir(root, "PTB-XL")
    column = RATES[sampling_rate]
    db = read_database(root / "ptbxl_database.csv", column)
    statements = read_scp_statements(root / "scp_statements.csv")
    check_scp_codes(db, statements, str(root / "ptbxl_database.csv"))
    records = []
    for rid, name in zip(db.index, db[column]):
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{root / 'ptbxl_database.csv'}: record {rid} has no {column}")
        records.append(root / name.strip())
    files = [Path(f"{r}.hea") for r in records] + [Path(f"{r}.dat") for r in records]
    synthetic = is_synthetic(root)
    name = "ptbxl-synthetic" if synthetic else "ptbxl"
    signals = load_record_signals(name, root, records, expected_fs=sampling_rate, target_fs=None,
                                  cache_dir=cache_dir, fixed_length=True, signal_files=files, n_jobs=n_jobs)
    return RecordSet(name, sampling_rate, signals, db, statements, synthetic)

"""ECG dataset readers: PTB-XL, ICBEB2018, LUDB, generic WFDB folders; tasks and splits.

    from ecg_keras import datasets
    records = datasets.load_ptbxl("~/data/ptbxl", sampling_rate=100)
    task = datasets.make_task(records, "superdiagnostic")
    splits = datasets.split(task)            # strat_fold 1-8 / 9 / 10

``load(name_or_path)`` picks the reader from a dataset name (looked up under
``default_data_root()``) or from the files in a folder. The synthetic PTB-XL generator lives in
``ecg_keras.datasets.synthetic`` and is imported lazily (``generate_synthetic_ptbxl``).
"""
from __future__ import annotations

from pathlib import Path

from ecg_keras.datasets.base import LEADS, DataError, RecordSet, Splits, TaskData
from ecg_keras.datasets.cache import clear_cache, default_data_root
from ecg_keras.datasets.download import download
from ecg_keras.datasets.icbeb import load_icbeb2018
from ecg_keras.datasets.ptbxl import load_ptbxl
from ecg_keras.datasets.tasks import TASKS, available_tasks, make_task, split, stratified_folds
from ecg_keras.datasets import wfdb_folder
from ecg_keras.datasets.wfdb_folder import load_ludb, load_wfdb_folder

__all__ = [
    "LEADS", "DataError", "RecordSet", "Splits", "TaskData", "TASKS",
    "load", "load_ptbxl", "load_icbeb2018", "load_wfdb_folder", "load_ludb",
    "make_task", "split", "available_tasks", "stratified_folds",
    "default_data_root", "download", "clear_cache", "detect", "generate_synthetic_ptbxl",
]

_LOADERS = {"ptbxl": load_ptbxl, "icbeb2018": load_icbeb2018, "ludb": load_ludb, "wfdb": load_wfdb_folder}


def detect(root) -> str:
    """Which reader fits a folder: ``ptbxl``, ``icbeb2018``, ``ludb`` or ``wfdb``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if (root / "ptbxl_database.csv").is_file():
        return "ptbxl"
    if (root / "ludb.csv").is_file():
        return "ludb"
    if (root / "REFERENCE.csv").is_file() or next(root.rglob("REFERENCE.csv"), None) is not None:
        return "icbeb2018"
    if next(root.rglob("*.hea"), None) is not None or wfdb_folder.find_exports(root):
        return "wfdb"
    raise DataError(f"{root}: no known dataset layout (ptbxl_database.csv, ludb.csv, REFERENCE.csv, *.hea or ECG "
                    "exports: DICOM, XML, SCP, EDF, ISHNE)")


def load(name_or_path, sampling_rate: int | None = None, cache_dir=None) -> RecordSet:
    """Load a dataset by name (``ptbxl``, ``icbeb2018``, ``ludb`` under ``default_data_root()``)
    or by folder (reader chosen by ``detect``). ``sampling_rate=None`` = the reader's default."""
    path = Path(str(name_or_path)).expanduser()
    if not path.exists() and str(name_or_path) in _LOADERS:
        path = default_data_root() / str(name_or_path)
        if not path.exists():
            raise DataError(f"{path}: dataset {name_or_path!r} not found; "
                            f"run `ecg-keras data download {name_or_path}`")
        from ecg_keras.datasets.download import SOURCES, find_root

        if name_or_path in SOURCES:
            path = find_root(path, SOURCES[str(name_or_path)].marker) or path
    kind = detect(path)
    kwargs = {"cache_dir": cache_dir}
    if sampling_rate is not None:
        kwargs["sampling_rate"] = sampling_rate
    return _LOADERS[kind](path, **kwargs)


def __getattr__(name):
    if name == "generate_synthetic_ptbxl":
        from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

        return generate_synthetic_ptbxl
    raise AttributeError(f"module 'ecg_keras.datasets' has no attribute {name!r}")

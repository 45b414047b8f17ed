"""Resolve ``--dataset``/``--data-dir`` to a RecordSet and the task's train/val/test splits."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ecg_keras import tasks
from ecg_keras.datasets.base import DataError, RecordSet, Splits, TaskData
from ecg_keras.datasets.synthetic import GENERATOR_VERSION
from ecg_keras.training.config import TrainConfig

# versioned, so that a dataset from an older generator is never silently reused
SYNTHETIC_DIR = f"ptbxl-synthetic-v{GENERATOR_VERSION}"
DEFAULT_DIRS = {"ptbxl": "ptbxl", "icbeb2018": "icbeb2018", "synthetic": SYNTHETIC_DIR}
MARKERS = {"ptbxl": "ptbxl_database.csv", "icbeb2018": "REFERENCE.csv", "synthetic": "ptbxl_database.csv"}


class MissingDataset(DataError):
    """The dataset is not on disk; the message says how to get it."""


def dataset_root(config: TrainConfig) -> Path:
    from ecg_keras.datasets.cache import default_data_root

    if config.dataset in DEFAULT_DIRS:
        return Path(config.data_dir).expanduser() if config.data_dir else default_data_root() / DEFAULT_DIRS[config.dataset]
    return Path(config.dataset).expanduser()


def _find_root(path: Path, marker: str) -> Path | None:
    from ecg_keras.datasets.download import find_root

    return find_root(path, marker) if path.is_dir() else None


def missing_message(config: TrainConfig, path: Path) -> str:
    name = {"ptbxl": "PTB-XL", "icbeb2018": "ICBEB2018 (CPSC 2018)"}[config.dataset]
    lines = [f"{name} was not found at {path}.", "", "To get it, either:"]
    if config.dataset == "ptbxl":
        lines += [
            "  * download it (1.7 GB, CC-BY 4.0, from PhysioNet) into that folder:",
            f"      ecg-keras data download ptbxl --dest {path}",
            "    or add --download to this command;",
            "  * or fetch https://physionet.org/content/ptb-xl/1.0.3/ yourself and pass its folder "
            "(the one holding ptbxl_database.csv) with --data-dir, or set $ECG_KERAS_DATA to the parent "
            "of a 'ptbxl' folder.",
        ]
    else:
        lines += [
            "  * download it (CPSC 2018 training set, research use):",
            f"      ecg-keras data download icbeb2018 --dest {path}",
            "    or add --download to this command;",
            "  * or pass a folder holding REFERENCE.csv and the A####.mat files (or the CinC 2020 cpsc_2018 "
            "layout) with --data-dir.",
        ]
    lines += ["", "Or try the pipeline now on SYNTHETIC data (generated locally, ~1 minute, no download):",
              f"      ecg-keras train --task {config.task if config.task in tasks.statement_tasks() else tasks.DEFAULT_TASK} "
              "--dataset synthetic --arch resnet1d_wang --epochs 5"]
    return "\n".join(lines)


def load_records(config: TrainConfig, download: bool = False, log=print) -> tuple[RecordSet, Path]:
    """The RecordSet named by ``config.dataset`` and its root folder (the synthetic set is
    generated if missing)."""
    path = dataset_root(config)
    from ecg_keras.datasets.cache import cache_option

    cache = cache_option(config.cache_dir)
    if config.dataset == "synthetic":
        root = _find_root(path, MARKERS["synthetic"])
        if root is None:
            from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

            log(f"Generating a SYNTHETIC PTB-XL-like dataset ({config.synthetic_records} records) at {path} ...")
            root = Path(generate_synthetic_ptbxl(path, n_records=config.synthetic_records, seed=0))
        from ecg_keras.datasets.ptbxl import load_ptbxl

        return load_ptbxl(root, sampling_rate=config.sampling_rate, cache_dir=cache), root
    if config.dataset in ("ptbxl", "icbeb2018"):
        root = _find_root(path, MARKERS[config.dataset])
        if root is None and download:
            from ecg_keras.datasets.download import download as fetch

            root = fetch(config.dataset, path)
        if root is None:
            raise MissingDataset(missing_message(config, path))
        if config.dataset == "ptbxl":
            from ecg_keras.datasets.ptbxl import load_ptbxl

            return load_ptbxl(root, sampling_rate=config.sampling_rate, cache_dir=cache), root
        from ecg_keras.datasets.icbeb import load_icbeb2018

        return load_icbeb2018(root, sampling_rate=config.sampling_rate, cache_dir=cache), root
    if not path.is_dir():
        raise DataError(f"--dataset {config.dataset!r} is neither one of ptbxl, icbeb2018, synthetic nor a folder")
    from ecg_keras.datasets import load  # the one layout detector: PTB-XL, ICBEB, LUDB or any WFDB folder

    return load(path, sampling_rate=config.sampling_rate, cache_dir=cache), path


def load_splits(config: TrainConfig, download: bool = False, log=print) -> tuple[Splits, RecordSet, Path]:
    """Train/val/test of ``config.task`` on ``config.dataset``, the RecordSet and its root."""
    from ecg_keras.datasets.tasks import make_task, split

    records, root = load_records(config, download=download, log=log)
    task_data = make_task(records, config.task)
    return split(task_data, scheme=config.split, seed=config.seed), records, Path(root).resolve()


def fingerprint(splits: Splits) -> dict:
    """Hashes that identify the exact data of a run (ids, folds, targets, signals per split)."""
    from ecg_keras.datasets.cache import iter_chunks

    out = {}
    for part in ("train", "val", "test"):
        td: TaskData = getattr(splits, part)
        h = hashlib.blake2b(digest_size=16)
        h.update(np.asarray(td.ids).astype(str).astype("U").tobytes())
        h.update(np.ascontiguousarray(td.y, dtype=np.float32).tobytes())
        for chunk in iter_chunks(td.signals):  # the bytes of all records in order, in bounded memory
            h.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
        out[part] = {"n_records": len(td), "blake2b": h.hexdigest()}
    return out

"""Parse-once signal cache: float32 ``.npy`` files, memory-mapped on load.

A cache entry is a directory ``<cache_dir>/<dataset>-<rate>hz-<hash>/`` holding

* ``signals.npy``: (n, length, 12) for fixed-length datasets, or (total, 12) with the records
  concatenated for variable-length ones, plus ``lengths.npy`` (n,);
* ``info.json``: number of records, layout, dataset, sampling rate, cache format version.

The hash covers the cache format version, the dataset name, the sampling rate, any extra
processing parameters and the ordered list of source files with their sizes and mtimes, so
editing, adding or removing a file gives a new entry. An entry is built in a temporary directory
next to it and renamed into place in one step, so a crash never leaves a half-written entry.
A later load opens the arrays with ``mmap_mode="r"`` and never touches the source files.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ecg_keras.datasets.base import DataError

CACHE_VERSION = 1
DATA_ENV = "ECG_KERAS_DATA"
PROGRESS_MIN_RECORDS = 200  # show a progress bar when reading at least this many records

Reader = Callable[[int], np.ndarray]


def default_data_root() -> Path:
    """Where datasets and the signal cache live: ``$ECG_KERAS_DATA`` or ``~/.ecg_keras/datasets``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".ecg_keras" / "datasets"


def default_cache_dir() -> Path:
    return default_data_root() / "cache"


@dataclass(frozen=True)
class CacheKey:
    dataset: str
    sampling_rate: int
    digest: str

    @property
    def dirname(self) -> str:
        return f"{self.dataset}-{self.sampling_rate}hz-{self.digest}"


def make_key(dataset: str, sampling_rate: int, files: Sequence[Path], root: Path,
             extra: str = "") -> CacheKey:
    """Key over the ordered file list (paths relative to ``root``, sizes, mtimes).

    Raises DataError naming the first missing file.
    """
    h = hashlib.sha256(f"v{CACHE_VERSION}|{dataset}|{sampling_rate}|{extra}".encode())
    root = Path(root)
    for f in files:
        try:
            st = os.stat(f)
        except FileNotFoundError:
            raise DataError(f"{f}: file is missing") from None
        try:
            rel = Path(f).relative_to(root).as_posix()
        except ValueError:
            rel = str(f)
        h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    return CacheKey(safe, int(sampling_rate), h.hexdigest()[:16])


def resolve_cache_dir(cache_dir) -> Path | None:
    """``None`` -> default cache dir, ``False`` -> no caching, else the given path."""
    if cache_dir is False:
        return None
    return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()


def load_signals(read: Reader, n: int, *, key: CacheKey | None, cache_dir, fixed_length: bool | None,
                 desc: str = "reading records", names: Sequence[str] | None = None,
                 sidecar: Callable[[], dict] | None = None):
    """Signals of ``n`` records, from the cache when possible, else via ``read(i)`` (then cached).

    ``read(i)`` returns record ``i`` as float32 (length, 12). ``fixed_length``: True = all
    records must have the same length (DataError otherwise, naming ``names[i]``), result is an
    (n, length, 12) array; False = result is a list; None = an array when all lengths agree,
    else a list. ``sidecar()``, called after reading, returns small JSON-able data found while
    reading (e.g. demographics) stored with the entry; see ``read_sidecar``.
    """
    if n == 0:
        raise DataError(f"{desc}: no records to read")
    directory = resolve_cache_dir(cache_dir)
    if directory is None or key is None:
        return _read_all(read, n, None, fixed_length, desc, names)
    entry = directory / key.dirname
    cached = _open_entry(entry, n)
    if cached is not None:
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    if entry.exists():  # stale or damaged entry under the same key: rebuild it
        shutil.rmtree(entry, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key.dirname}.tmp-", dir=directory))
    try:
        _read_all(read, n, tmp, fixed_length, desc, names)
        if sidecar is not None:
            (tmp / "sidecar.json").write_text(json.dumps(sidecar()))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process finished the same entry first
            if _open_entry(entry, n) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    cached = _open_entry(entry, n)
    if cached is None:
        raise DataError(f"{entry}: cache entry unreadable right after writing it")
    return cached


def open_cached(key: CacheKey | None, cache_dir, n: int):
    """The cached signals of ``key`` if a valid entry exists, else None (never reads sources)."""
    directory = resolve_cache_dir(cache_dir)
    if directory is None or key is None:
        return None
    return _open_entry(directory / key.dirname, n)


def read_sidecar(key: CacheKey | None, cache_dir) -> dict | None:
    """The ``sidecar`` data stored with an entry, or None."""
    directory = resolve_cache_dir(cache_dir)
    if directory is None or key is None:
        return None
    try:
        return json.loads((directory / key.dirname / "sidecar.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def clear_cache(cache_dir=None) -> int:
    """Remove every cache entry under ``cache_dir`` (default cache dir); returns how many."""
    directory = resolve_cache_dir(cache_dir)
    if directory is None or not directory.is_dir():
        return 0
    count = 0
    for entry in directory.iterdir():
        if entry.is_dir() and ((entry / "info.json").exists() or entry.name.startswith(".")):
            shutil.rmtree(entry, ignore_errors=True)
            count += 1
    return count


def _progress(n: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(range(n), desc=desc, unit="rec", disable=n < PROGRESS_MIN_RECORDS, file=sys.stderr,
                leave=False)


def _name(names, i: int) -> str:
    return str(names[i]) if names is not None else f"record #{i}"


def _check(x: np.ndarray, names, i: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 12:
        raise DataError(f"{_name(names, i)}: signal of shape {x.shape}, expected (length, 12)")
    return x


def _read_all(read: Reader, n: int, out_dir: Path | None, fixed_length: bool | None, desc: str, names):
    """Read every record; write the cache files into ``out_dir`` when given."""
    if fixed_length:
        first = _check(read(0), names, 0)
        shape = (n,) + first.shape
        if out_dir is None:
            arr = np.empty(shape, np.float32)
        else:
            arr = np.lib.format.open_memmap(out_dir / "signals.npy", mode="w+", dtype=np.float32, shape=shape)
        arr[0] = first
        for i in _progress(n, desc):
            if i == 0:
                continue
            x = _check(read(i), names, i)
            if x.shape != first.shape:
                raise DataError(f"{_name(names, i)}: {x.shape[0]} samples, expected {first.shape[0]} "
                                f"like the other records of this fixed-length dataset")
            arr[i] = x
        if out_dir is None:
            return arr
        arr.flush()
        del arr
        _write_info(out_dir, n, "fixed")
        return None

    records = [_check(read(i), names, i) for i in _progress(n, desc)]
    lengths = np.array([len(r) for r in records], np.int64)
    same = bool((lengths == lengths[0]).all())
    as_array = same and fixed_length is None
    if out_dir is None:
        return np.stack(records) if as_array else records
    if as_array:
        _save_npy(out_dir / "signals.npy", np.stack(records))
        _write_info(out_dir, n, "fixed")
    else:
        _save_npy(out_dir / "signals.npy", np.concatenate(records, axis=0))
        _save_npy(out_dir / "lengths.npy", lengths)
        _write_info(out_dir, n, "variable")
    return None


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr)
        f.flush()
        os.fsync(f.fileno())


def _write_info(out_dir: Path, n: int, layout: str) -> None:
    info = {"version": CACHE_VERSION, "n_records": n, "layout": layout}
    (out_dir / "info.json").write_text(json.dumps(info))


def _open_entry(entry: Path, n: int):
    """The cached signals, or None when the entry is absent, stale or unreadable."""
    try:
        info = json.loads((entry / "info.json").read_text())
        if info.get("version") != CACHE_VERSION or info.get("n_records") != n:
            return None
        data = np.load(entry / "signals.npy", mmap_mode="r")
        if info["layout"] == "fixed":
            return data if data.shape[0] == n and data.ndim == 3 else None
        lengths = np.load(entry / "lengths.npy")
        if len(lengths) != n or int(lengths.sum()) != data.shape[0]:
            return None
        ends = np.cumsum(lengths)
        return [data[e - l:e] for e, l in zip(ends, lengths)]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None

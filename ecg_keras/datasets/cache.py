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
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ecg_keras.datasets.base import DataError

CACHE_VERSION = 1
DATA_ENV = "ECG_KERAS_DATA"
PROGRESS_MIN_RECORDS = 200  # show a progress bar when reading at least this many records
PARALLEL_MIN_RECORDS = 2000  # below this many records a process pool costs more than it saves
MAX_CHUNK = 64  # records per worker task (bounds the progress-bar step and memory in flight)

Reader = Callable[[int], np.ndarray]
# ``job(start, stop)`` -> (picklable function, args); ``function(*args)`` returns (or yields)
# the records ``start..stop-1`` in order, like ``read``. It runs in a worker process.
ChunkJob = Callable[[int, int], tuple]


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
                 sidecar: Callable[[], dict] | None = None, job: ChunkJob | None = None,
                 n_jobs: int | None = 1):
    """Signals of ``n`` records, from the cache when possible, else via ``read(i)`` (then cached).

    ``read(i)`` returns record ``i`` as float32 (length, 12). ``fixed_length``: True = all
    records must have the same length (DataError otherwise, naming ``names[i]``), result is an
    (n, length, 12) array; False = result is a list; None = an array when all lengths agree,
    else a list. ``sidecar()``, called after reading, returns small JSON-able data found while
    reading (e.g. demographics) stored with the entry; see ``read_sidecar``.

    Parallel reading: with ``job`` (see ``ChunkJob``; it must compute what ``read`` computes)
    and ``n_jobs`` > 1 (None = the usable CPU count), at least ``PARALLEL_MIN_RECORDS`` records
    are read in chunks by a process pool; results keep their order and the first error is
    raised as in a serial read.
    """
    if n == 0:
        raise DataError(f"{desc}: no records to read")
    n_jobs = effective_n_jobs(n_jobs) if job is not None else 1
    directory = resolve_cache_dir(cache_dir)
    if directory is None or key is None:
        return _read_all(read, n, None, fixed_length, desc, names, job, n_jobs)
    entry = directory / key.dirname
    cached = _open_entry(entry, n)
    if cached is not None:
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    if entry.exists():  # stale or damaged entry under the same key: rebuild it
        shutil.rmtree(entry, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key.dirname}.tmp-", dir=directory))
    try:
        _read_all(read, n, tmp, fixed_length, desc, names, job, n_jobs)
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


def effective_n_jobs(n_jobs: int | None) -> int:
    """``None`` -> the number of CPUs this process may use; otherwise at least 1."""
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)
    return max(1, int(n_jobs))


def _fork_available() -> bool:
    """fork is the start method used on Linux: no re-import of ``__main__`` (scripts without a
    ``__name__ == "__main__"`` guard work), fast start-up, and the workers share the output array."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _pool(n_jobs: int, n_tasks: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("fork" if _fork_available() else None)
    return ProcessPoolExecutor(max_workers=max(1, min(n_jobs, n_tasks)), mp_context=context)


def _progress(n: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=n, desc=desc, unit="rec", disable=n < PROGRESS_MIN_RECORDS, file=sys.stderr,
                leave=False)


def _name(names, i: int) -> str:
    return str(names[i]) if names is not None else f"record #{i}"


def _check(x: np.ndarray, names, i: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 12:
        raise DataError(f"{_name(names, i)}: signal of shape {x.shape}, expected (length, 12)")
    return x


def _check_length(x: np.ndarray, first_shape: tuple, names, i: int) -> None:
    if x.shape != first_shape:
        raise DataError(f"{_name(names, i)}: {x.shape[0]} samples, expected {first_shape[0]} "
                        f"like the other records of this fixed-length dataset")


def _parallel(job: ChunkJob | None, n_jobs: int, n: int) -> bool:
    return job is not None and n_jobs > 1 and n >= max(PARALLEL_MIN_RECORDS, 2)


def _chunks(start: int, n: int, n_jobs: int) -> list[tuple[int, int]]:
    size = max(1, min(MAX_CHUNK, math.ceil((n - start) / (4 * n_jobs))))
    return [(a, min(a + size, n)) for a in range(start, n, size)]


def _run_chunks(pool: ProcessPoolExecutor, bounds, task: Callable[[int, int], tuple]):
    """Yield ``(a, b, result)`` per chunk in order, keeping ``2 * workers`` chunks in flight;
    the first failing chunk (in order) raises. ``task(a, b)`` -> (function, args)."""
    in_flight = 2 * pool._max_workers
    futures = [pool.submit(*task(a, b)) for a, b in bounds[:in_flight]]
    for k, (a, b) in enumerate(bounds):
        try:
            result = futures[k].result()
        except DataError as e:  # as from a serial read: no remote traceback attached
            raise DataError(str(e)) from None
        futures[k] = None  # release the chunk once consumed
        if k + in_flight < len(bounds):
            futures.append(pool.submit(*task(*bounds[k + in_flight])))
        yield a, b, result


def _records(read: Reader, n: int, desc: str, names, job: ChunkJob | None, n_jobs: int) -> Iterator[np.ndarray]:
    """Records 0..n-1 in order, checked; serially via ``read`` or in chunks via ``job`` in a pool
    (the records travel back from the workers pickled)."""
    with _progress(n, desc) as bar:
        if not _parallel(job, n_jobs, n):
            for i in range(n):
                x = _check(read(i), names, i)
                bar.update(1)
                yield x
            return
        bounds = _chunks(0, n, n_jobs)
        pool = _pool(n_jobs, len(bounds))
        try:
            for a, b, chunk in _run_chunks(pool, bounds, lambda a, b: (_chunk_list, *job(a, b))):
                for i, x in zip(range(a, b), chunk):
                    yield _check(x, names, i)
                bar.update(b - a)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _chunk_list(fn: Callable, args: tuple) -> list[np.ndarray]:
    """Worker: the records of one chunk as a list."""
    return list(fn(*args))


# The output array a forked worker writes into (set in the parent before the pool forks).
_SHARED_OUT: np.ndarray | None = None


def _chunk_fill(fn: Callable, args: tuple, start: int, first_shape: tuple, names) -> None:
    """Worker: check the records of one chunk and write them into ``_SHARED_OUT[start:]``,
    failing at the first bad record like a serial read."""
    out = _SHARED_OUT
    for i, x in enumerate(fn(*args), start=start):
        x = _check(x, names, i)
        _check_length(x, first_shape, names, i)
        out[i] = x


def _shared_empty(shape: tuple) -> np.ndarray:
    """A float32 array in anonymous shared memory (visible to forked workers)."""
    import mmap

    nbytes = int(np.prod(shape)) * 4
    return np.frombuffer(mmap.mmap(-1, max(nbytes, 1)), dtype=np.float32, count=int(np.prod(shape))).reshape(shape)


def _fill_parallel(read: Reader, n: int, out_dir: Path | None, desc: str, names, job: ChunkJob,
                   n_jobs: int) -> np.ndarray:
    """Fixed-length read with forked workers writing straight into the (shared) output array,
    so only tiny results cross process boundaries."""
    global _SHARED_OUT
    with _progress(n, desc) as bar:
        first = _check(read(0), names, 0)
        shape = (n,) + first.shape
        if out_dir is None:
            arr = _shared_empty(shape)
        else:
            arr = np.lib.format.open_memmap(out_dir / "signals.npy", mode="w+", dtype=np.float32, shape=shape)
        arr[0] = first
        bar.update(1)
        bounds = _chunks(1, n, n_jobs)
        _SHARED_OUT = arr
        try:
            pool = _pool(n_jobs, len(bounds))
            try:
                task = lambda a, b: (_chunk_fill, *job(a, b), a, first.shape,  # noqa: E731
                                     None if names is None else _Names(names, a, b))
                for a, b, _ in _run_chunks(pool, bounds, task):
                    bar.update(b - a)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            _SHARED_OUT = None
    return arr


class _Names:
    """``names[a:b]`` indexed by the global record number (what a worker needs for messages)."""

    def __init__(self, names, a: int, b: int):
        self.a, self.names = a, [str(x) for x in names[a:b]]

    def __getitem__(self, i: int) -> str:
        return self.names[i - self.a]


def _finish_fixed(arr: np.ndarray, out_dir: Path | None, n: int) -> np.ndarray | None:
    """The in-memory array, or None once the memmapped cache file is flushed and described."""
    if out_dir is None:
        return arr
    arr.flush()
    _write_info(out_dir, n, "fixed")
    return None


def _read_all(read: Reader, n: int, out_dir: Path | None, fixed_length: bool | None, desc: str, names,
              job: ChunkJob | None = None, n_jobs: int = 1):
    """Read every record; write the cache files into ``out_dir`` when given."""
    if fixed_length and _parallel(job, n_jobs, n) and _fork_available():
        return _finish_fixed(_fill_parallel(read, n, out_dir, desc, names, job, n_jobs), out_dir, n)
    records = _records(read, n, desc, names, job, n_jobs)
    if fixed_length:
        try:
            first = next(records)
            shape = (n,) + first.shape
            if out_dir is None:
                arr = np.empty(shape, np.float32)
            else:
                arr = np.lib.format.open_memmap(out_dir / "signals.npy", mode="w+", dtype=np.float32,
                                                shape=shape)
            arr[0] = first
            for i, x in enumerate(records, start=1):
                _check_length(x, first.shape, names, i)
                arr[i] = x
        finally:
            records.close()  # stops a pool at once when a record fails
        return _finish_fixed(arr, out_dir, n)

    try:
        records = list(records)
    finally:
        if not isinstance(records, list):
            records.close()  # stops a pool at once when a record fails
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

"""Parse-once signal cache: float32 ``.npy`` files, memory-mapped on load.

A cache entry is a directory ``<cache_dir>/<dataset>-<rate>hz-<hash>/`` holding

* ``signals.npy``: (n, length, 12) for fixed-length datasets, or (total, 12) with the records
  concatenated for variable-length ones, plus ``lengths.npy`` (n,);
* ``info.json``: number of records, layout, cache format version and, per array file, its
  size in bytes and CRC-32 (``{"files": {"signals.npy": {"size": ..., "crc32": ...}}}``).

The hash covers the cache format version, the dataset name, the sampling rate, any extra
processing parameters and the ordered list of source files with their sizes and mtimes, so
editing, adding or removing a file gives a new entry. An entry is built in a temporary directory
next to it and renamed into place in one step, so a crash never leaves a half-written entry.
A later load checks every array file against its size and CRC-32 record (one sequential read,
about 0.25 s per GB) and opens the arrays with ``mmap_mode="r"``; it never touches the source
files. An entry whose record does not match (a 0-byte file, corruption that keeps the size, an
entry of an older format) is rebuilt.

Training reads the entries without mapping them whole: a subset of the memory map (a task's
training split) is a :class:`~ecg_keras.datasets.base.RecordView`, and :class:`RecordReader`
(``ecg_keras.datasets.streaming``) reads windows and chunks of records with ``pread``
(docs/RESULTS.md section 13: one epoch of PTB-XL at 500 Hz in bounded memory).

Files are written with ordinary writes (never through a memory map), so a full disk raises an
``OSError`` (ENOSPC) instead of a SIGBUS. Whenever the cache cannot be written -- a read-only or
unwritable cache directory, a full disk -- a :class:`CacheWarning` is issued, the temporary folder
is removed and the signals are read without the cache.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ecg_keras.datasets.base import DataError
from ecg_keras.datasets.cache_entry import (ARRAY_FILES, CACHE_VERSION, CacheKey, create_new,  # noqa: F401
                                            file_record, make_key, open_entry, write_info)
from ecg_keras.datasets.streaming import CHUNK_BYTES, RecordReader, iter_chunks, mapped_position  # noqa: F401
from ecg_keras.errors import ECGKerasError
from ecg_keras.paths import follow_umask

DATA_ENV = "ECG_KERAS_DATA"
PROGRESS_MIN_RECORDS = 200  # show a progress bar when reading at least this many records
PARALLEL_MIN_RECORDS = 2000  # below this many records a process pool costs more than it saves
MAX_CHUNK = 64  # records per worker task (bounds the progress-bar step and memory in flight)

Reader = Callable[[int], np.ndarray]
# ``job(start, stop)`` -> (picklable function, args); ``function(*args)`` returns (or yields)
# the records ``start..stop-1`` in order, like ``read``. It runs in a worker process.
ChunkJob = Callable[[int, int], tuple]


class CacheWarning(UserWarning):
    """The signal cache could not be used or written; the data were read without it."""


class CacheWriteError(ECGKerasError):
    """Writing a cache entry failed (e.g. ENOSPC); the message names the file."""


def default_data_root() -> Path:
    """Where datasets and the signal cache live: ``$ECG_KERAS_DATA`` or ``~/.ecg_keras/datasets``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".ecg_keras" / "datasets"


def default_cache_dir() -> Path:
    return default_data_root() / "cache"



def cache_option(value):
    """A ``--cache-dir`` value as the readers take it: None/"" = the default cache, "off" (or
    "none", "false", "0") = no cache (False), else the folder."""
    if value is None or value is False or str(value).strip() == "":
        return False if value is False else None
    return False if str(value).strip().lower() in ("off", "none", "false", "0") else str(value)


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
    cached = open_entry(entry, n)
    if cached is not None:
        return cached
    uncached = (read, n, None, fixed_length, desc, names, job, n_jobs)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale(entry, directory)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key.dirname}.tmp-", dir=directory))
        follow_umask(tmp, 0o777)  # mkdtemp makes it 0700: others sharing the data root could not read it
    except OSError as e:
        _warn(f"signal cache {directory} is not writable ({e}); reading {desc.removeprefix('reading ')} "
              f"without the cache")
        return _read_all(*uncached)
    try:
        _read_all(read, n, tmp, fixed_length, desc, names, job, n_jobs)
        try:
            if sidecar is not None:
                with create_new(tmp / "sidecar.json") as f:
                    f.write(json.dumps(sidecar()).encode())
            write_info(tmp, n)
        except OSError as e:
            raise CacheWriteError(f"{tmp}: {e}") from None
        try:
            os.rename(tmp, entry)
        except OSError as e:  # another process finished the same entry first?
            if open_entry(entry, n) is None:
                raise CacheWriteError(f"{entry}: cannot move the new entry into place ({e})") from None
    except CacheWriteError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        _warn(f"cannot write the signal cache ({e}); reading {desc.removeprefix('reading ')} without the cache")
        return _read_all(*uncached)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    cached = open_entry(entry, n)
    if cached is None:
        raise DataError(f"{entry}: cache entry unreadable right after writing it")
    return cached


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=3)


def _remove_stale(entry: Path, directory: Path) -> None:
    """Move a stale or damaged entry out of the way and delete it (OSError when that fails)."""
    if not entry.exists():
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{entry.name}.stale-", dir=directory))
    os.rename(entry, aside / entry.name)
    shutil.rmtree(aside, ignore_errors=True)


def open_cached(key: CacheKey | None, cache_dir, n: int):
    """The cached signals of ``key`` if a valid entry exists, else None (never reads sources)."""
    directory = resolve_cache_dir(cache_dir)
    if directory is None or key is None:
        return None
    return open_entry(directory / key.dirname, n)


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


def _chunk_fill(fn: Callable, args: tuple, start: int, first_shape: tuple, names, path=None,
                data_offset: int = 0) -> None:
    """Worker: check the records of one chunk and write them into ``_SHARED_OUT[start:]`` (or,
    with ``path``, at their place in that ``.npy`` file with ordinary writes), failing at the
    first bad record like a serial read."""
    out = _SHARED_OUT
    fd = None
    try:
        if path is not None:
            fd = _os_call(os.open, path, path, os.O_WRONLY)
        for i, x in enumerate(fn(*args), start=start):
            x = _check(x, names, i)
            _check_length(x, first_shape, names, i)
            if fd is None:
                out[i] = x
            else:
                _pwrite_all(fd, x.tobytes(), data_offset + i * x.nbytes, path)
    finally:
        if fd is not None:
            os.close(fd)


def _os_call(fn, path, *args):
    try:
        return fn(*args)
    except OSError as e:
        raise CacheWriteError(f"{path}: {e}") from None


def _pwrite_all(fd: int, data: bytes, offset: int, path) -> None:
    view = memoryview(data)
    while view:
        written = _os_call(os.pwrite, path, fd, view, offset)
        view, offset = view[written:], offset + written


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
        path, offset = None, 0
        if out_dir is None:
            arr = _shared_empty(shape)
            arr[0] = first
        else:  # workers write their records into the file with pwrite (no memory map)
            arr = None
            path = str(out_dir / "signals.npy")
            with _NpyWriter(out_dir / "signals.npy", shape) as w:
                w.write(first)
                offset = w.data_offset
        bar.update(1)
        bounds = _chunks(1, n, n_jobs)
        _SHARED_OUT = arr
        try:
            pool = _pool(n_jobs, len(bounds))
            try:
                task = lambda a, b: (_chunk_fill, *job(a, b), a, first.shape,  # noqa: E731
                                     None if names is None else _Names(names, a, b), path, offset)
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


class _NpyWriter:
    """A float32 ``.npy`` file of ``shape`` written record by record with ordinary writes; any
    OSError (ENOSPC, EFBIG, EACCES) becomes a :class:`CacheWriteError` naming the file."""

    def __init__(self, path: Path, shape: tuple):
        self.path, self.shape = Path(path), tuple(int(d) for d in shape)
        self.f = _os_call(create_new, self.path, self.path)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                  "shape": self.shape}
        _os_call(np.lib.format.write_array_header_1_0, self.path, self.f, header)
        self.data_offset = self.f.tell()

    def write(self, x: np.ndarray) -> None:
        _os_call(self.f.write, self.path, np.ascontiguousarray(x, dtype="<f4").tobytes())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                _os_call(self.f.flush, self.path)
                _os_call(os.fsync, self.path, self.f.fileno())
        finally:
            try:
                self.f.close()
            except OSError as e:
                if exc[0] is None:
                    raise CacheWriteError(f"{self.path}: {e}") from None
        return False


def _finish_fixed(arr: np.ndarray | None, out_dir: Path | None, n: int) -> np.ndarray | None:
    """The in-memory array, or None when the records went into the cache file."""
    return arr if out_dir is None else None


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
                arr[0] = first
                for i, x in enumerate(records, start=1):
                    _check_length(x, first.shape, names, i)
                    arr[i] = x
                return arr
            with _NpyWriter(out_dir / "signals.npy", shape) as w:
                w.write(first)
                for i, x in enumerate(records, start=1):
                    _check_length(x, first.shape, names, i)
                    w.write(x)
            return None
        finally:
            records.close()  # stops a pool at once when a record fails

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
        with _NpyWriter(out_dir / "signals.npy", (n,) + records[0].shape) as w:
            for x in records:
                w.write(x)
    else:
        with _NpyWriter(out_dir / "signals.npy", (int(lengths.sum()), records[0].shape[1])) as w:
            for x in records:
                w.write(x)
        _save_npy(out_dir / "lengths.npy", lengths)
    return None



def _save_npy(path: Path, arr: np.ndarray) -> None:
    try:
        with create_new(path) as f:
            np.save(f, arr)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise CacheWriteError(f"{path}: {e}") from None



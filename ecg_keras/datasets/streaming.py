"""Streamed reads of records: :class:`RecordReader` reads windows and chunks of records with
``pread`` from an entry of the signal cache (``ecg_keras.datasets.cache``) or slices records in
memory, so a pass over the data stays in bounded memory."""
from __future__ import annotations

import mmap
import os
import weakref
from typing import Iterator

import numpy as np

from ecg_keras.datasets.base import DataError

#: Bytes of records one step of a streamed pass (:meth:`RecordReader.chunks`) holds in memory.
CHUNK_BYTES = 1 << 24


def mapped_position(a) -> tuple[str, int] | None:
    """``(file, byte offset)`` of a C-contiguous little-endian float32 view into a memory-mapped
    file (an entry of this cache), else None."""
    mm = getattr(a, "_mmap", None)
    if (not isinstance(a, np.memmap) or mm is None or a.filename is None or a.dtype != np.dtype("<f4")
            or not a.flags.c_contiguous or a.size == 0):
        return None
    start = np.frombuffer(mm, np.uint8).__array_interface__["data"][0]
    mapped_from = a.offset - a.offset % mmap.ALLOCATIONGRANULARITY
    return str(a.filename), mapped_from + a.__array_interface__["data"][0] - start


class RecordReader:
    """Windows and streamed passes over records without copying or mapping them whole.

    ``signals``: an (n, length, leads) array, a :class:`~ecg_keras.datasets.base.RecordView` or a
    list of (length_i, leads) arrays. Records that live in a memory-mapped cache file are read with
    ``pread`` into fresh buffers, so neither a training epoch nor a pass over the data leaves the file's
    pages mapped into the process (resident memory stays bounded by the batches in flight; the kernel's
    page cache keeps the file hot). Records in memory are sliced.
    """

    def __init__(self, signals):
        from ecg_keras.datasets.base import RecordView

        n = len(signals)
        if n == 0:
            raise ValueError("no records given")
        self._array = self._records = self._offsets = None
        self._fixed = isinstance(signals, RecordView) or (isinstance(signals, np.ndarray) and signals.ndim == 3)
        if self._fixed:
            base, index = ((signals.base, signals.index) if isinstance(signals, RecordView)
                           else (signals, np.arange(n, dtype=np.int64)))
            length, self.leads = int(base.shape[1]), int(base.shape[2])
            self.lengths = np.full(n, length, dtype=np.int64)
            where = mapped_position(base)
            if where is not None:
                self._file, record_bytes = where[0], length * self.leads * 4
                self._offsets = where[1] + index * record_bytes
            else:
                self._array, self._index = base, index
        else:
            records = [signals[i] for i in range(n)]
            leads = {r.shape[-1] for r in records}
            if len(leads) != 1 or any(r.ndim != 2 for r in records):
                raise ValueError(f"every record must be (length, leads) with one lead count; got lead counts "
                                 f"{sorted(leads)}")
            self.leads = leads.pop()
            self.lengths = np.array([len(r) for r in records], dtype=np.int64)
            where = [mapped_position(r) for r in records]
            if all(w is not None and w[0] == where[0][0] for w in where):
                self._file, self._offsets = where[0][0], np.array([w[1] for w in where], dtype=np.int64)
            else:
                self._records = records
        self._fd = None
        if self._offsets is not None:
            self._fd = os.open(self._file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            weakref.finalize(self, os.close, self._fd)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def streamed(self) -> bool:
        """True when the records are read from a file (not held in memory)."""
        return self._fd is not None

    def _read(self, i: int, start: int, n: int, out: np.ndarray) -> None:
        """Samples ``start .. start + n - 1`` of record ``i`` into ``out`` (float32, C-contiguous)."""
        if self._fd is not None:
            view, offset = memoryview(out).cast("B"), int(self._offsets[i]) + start * self.leads * 4
            while view:
                got = os.preadv(self._fd, [view], offset)
                if got <= 0:
                    raise DataError(f"{self._file}: ended early (cache entry truncated while in use?)")
                view, offset = view[got:], offset + got
        elif self._array is not None:
            out[...] = self._array[self._index[i], start:start + n]
        else:
            out[...] = self._records[i][start:start + n]

    def windows(self, records: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
        """Raw (b, window, leads) float32 windows of ``records`` from ``starts``; samples past the end
        of a record (records shorter than ``window``) are 0."""
        out = np.zeros((len(records), window, self.leads), np.float32)
        for k, (i, start) in enumerate(zip(np.asarray(records).tolist(), np.asarray(starts).tolist())):
            n = min(window, int(self.lengths[i]) - start)
            self._read(i, start, n, out[k, :n])
        return out

    def record(self, i: int) -> np.ndarray:
        """Record ``i`` as a float32 array of its own."""
        out = np.empty((int(self.lengths[i]), self.leads), np.float32)
        self._read(i, 0, len(out), out)
        return out

    def chunks(self, max_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
        """Every record in order, a float32 array at a time: (k, length, leads) blocks of about
        ``max_bytes`` for fixed-length records, one (length_i, leads) record at a time otherwise."""
        if not self._fixed:
            for i in range(len(self)):
                yield self.record(i)
            return
        length = int(self.lengths[0])
        per = max(1, max_bytes // max(1, length * self.leads * 4))
        for a in range(0, len(self), per):
            b = min(a + per, len(self))
            if self._array is not None and self._fd is None:
                yield np.asarray(self._array[self._index[a:b]], dtype=np.float32)
                continue
            out = np.empty((b - a, length, self.leads), np.float32)
            for k in range(a, b):
                self._read(k, 0, length, out[k - a])
            yield out


def iter_chunks(signals, max_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
    """:meth:`RecordReader.chunks` of ``signals``: a pass over them in bounded memory."""
    return RecordReader(signals).chunks(max_bytes)

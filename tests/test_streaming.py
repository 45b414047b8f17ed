"""Windows streamed from the signal cache: subsets of the memory map are views, batches equal the
in-memory pipeline's bit for bit, memory does not grow with the records, and workers read disjoint
parts of every batch."""
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from ecg_keras.datasets.base import RecordSet, RecordView, Splits, TaskData
from ecg_keras.datasets.cache import CHUNK_BYTES, RecordReader, iter_chunks
from ecg_keras.standardize import Standardizer
from ecg_keras.training.data import fingerprint
from ecg_keras.windows import eval_dataset, eval_windows, train_dataset


def _mapped(tmp_path, n=40, length=1000, seed=0):
    """An (n, length, 12) float32 .npy opened as the cache opens its entries."""
    x = (np.random.default_rng(seed).normal(size=(n, length, 12)) * 0.3 + 0.1).astype(np.float32)
    np.save(tmp_path / "signals.npy", x)
    return x, np.load(tmp_path / "signals.npy", mmap_mode="r")


def _batches(ds):
    return [tuple(t.numpy() for t in b) if isinstance(b, tuple) else b.numpy() for b in ds]


def test_subsets_of_the_cache_map_are_views_and_batches_equal_in_memory(tmp_path):
    x, mapped = _mapped(tmp_path)
    meta = pd.DataFrame({"id": range(len(x))}).set_index("id")
    records = RecordSet("demo", 100, mapped, meta)
    keep = np.arange(3, 40, 2)
    sub = records.subset(keep)
    assert isinstance(sub.signals, RecordView) and sub.signals.shape == (len(keep), 1000, 12)
    task = TaskData("t", ["a"], sub.signals, np.ones((len(keep), 1), np.float32), np.arange(len(keep)),
                    np.zeros(len(keep)), 100)
    train = task.subset(np.arange(len(keep)) % 4 != 0)
    assert isinstance(train.signals, RecordView) and train.signals.base is mapped
    in_memory = np.asarray(train.signals)
    np.testing.assert_array_equal(in_memory, x[keep][np.arange(len(keep)) % 4 != 0])
    assert RecordReader(train.signals).streamed and not RecordReader(in_memory).streamed

    std = Standardizer.fit(train.signals)
    assert std == Standardizer.fit(in_memory)
    y = np.random.default_rng(1).random((len(train), 3)).astype(np.float32)
    streamed = _batches(train_dataset(train.signals, y, batch_size=4, standardizer=std, seed=5, epochs=2))
    held = _batches(train_dataset(in_memory, y, batch_size=4, standardizer=std, seed=5, epochs=2))
    assert len(streamed) == len(held) == 2 * 4
    for (a, b), (c, d) in zip(streamed, held):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    ds, rec = eval_dataset(train.signals, batch_size=7, standardizer=std)
    want, rec_np = eval_windows(in_memory, standardizer=std)
    np.testing.assert_array_equal(np.concatenate(_batches(ds)), want)
    np.testing.assert_array_equal(rec, rec_np)
    np.testing.assert_array_equal(want[3], std.transform(in_memory[0, 375:625]))

    # the run's data fingerprint reads the records in chunks: the same digest as the whole array
    parts = Splits(train, task.subset([0]), task.subset([1, 2]))
    copies = Splits(*(TaskData(t.task, t.classes, np.asarray(t.signals), t.y, t.ids, t.folds, 100)
                      for t in (parts.train, parts.val, parts.test)))
    assert fingerprint(parts) == fingerprint(copies)
    assert sum(len(c) for c in iter_chunks(train.signals, max_bytes=3 * 48_000)) == len(train)


def _status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    pytest.skip(f"no {key} in /proc/self/status")


def test_an_epoch_maps_no_record_pages_and_allocates_batches_only(tmp_path):
    """One epoch over 96 MB of cached records: the pages are read, never mapped into the process
    (its resident file pages do not grow), and Python-side allocations stay at a few batches."""
    n, length = 500, 4000
    x = np.zeros((n, length, 12), np.float32)
    x[:, :, 0] = np.arange(n, dtype=np.float32)[:, None]
    np.save(tmp_path / "signals.npy", x)
    del x
    mapped = np.load(tmp_path / "signals.npy", mmap_mode="r")
    view = RecordView(mapped, np.arange(n))
    y = np.arange(n, dtype=np.float32)[:, None]
    file_pages = _status("RssFile")
    tracemalloc.start()
    try:
        ds = train_dataset(view, y, batch_size=32, sampling_rate=100, seed=0, epochs=1)
        seen = [(xb.numpy()[:, 0, 0], yb.numpy()[:, 0]) for xb, yb in ds]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(np.concatenate([s[1] for s in seen]).tolist()) == list(range(n))
    for first, label in seen:  # each window came from its label's record
        np.testing.assert_array_equal(first, label)
    # the finite check's pass holds two chunks at most; the epoch itself a few 1.2 MB batches
    assert peak < 2.5 * CHUNK_BYTES < 0.5 * mapped.nbytes, f"{peak / 1e6:.0f} MB allocated for 96 MB of records"
    assert _status("RssFile") - file_pages < 20e6


def test_two_workers_read_disjoint_parts_of_every_batch(tmp_path, monkeypatch):
    """shard=(2, k): worker k reads only the windows of its slice of each global batch; the two
    slices are disjoint and together are the single worker's batch, in order."""
    _, mapped = _mapped(tmp_path, n=37)
    y = np.arange(37, dtype=np.float32)[:, None]
    reads = {}
    original = RecordReader.windows

    def logged(self, records, starts, window):
        reads.setdefault(current, []).extend(np.asarray(records).tolist())
        return original(self, records, starts, window)

    monkeypatch.setattr(RecordReader, "windows", logged)
    result = {}
    for current in ("all", 0, 1):
        shard = (1, 0) if current == "all" else (2, current)
        result[current] = _batches(train_dataset(mapped, y, batch_size=8, seed=2, epochs=2, shard=shard))
    assert len(result[0]) == len(result[1]) == len(result["all"]) == 2 * 5
    for whole, a, b in zip(result["all"], result[0], result[1]):
        np.testing.assert_array_equal(np.concatenate([a[0], b[0]]), whole[0])
        np.testing.assert_array_equal(np.concatenate([a[1], b[1]]), whole[1])
        assert not set(a[1][:, 0].tolist()) & set(b[1][:, 0].tolist())
    # each worker read each record once per epoch, and only the records of its own slices
    assert len(reads[0]) + len(reads[1]) == len(reads["all"]) == 2 * 37
    assert sorted(reads[0] + reads[1]) == sorted(reads["all"])
    assert sorted(reads[0]) == sorted(int(v) for a in result[0] for v in a[1][:, 0])


def test_variable_length_records_of_the_cache_stream_record_by_record(tmp_path):
    """The variable-length layout (one flat file, a list of views): every pass and window reads each
    record with its own length."""
    lengths = [700, 1000, 260, 1300]
    flat = np.random.default_rng(3).normal(size=(sum(lengths), 12)).astype(np.float32)
    np.save(tmp_path / "signals.npy", flat)
    mapped = np.load(tmp_path / "signals.npy", mmap_mode="r")
    ends = np.cumsum(lengths)
    records = [mapped[e - n:e] for e, n in zip(ends, lengths)]
    reader = RecordReader(records)
    assert reader.streamed
    chunks = list(reader.chunks())
    assert [len(c) for c in chunks] == lengths
    np.testing.assert_array_equal(np.concatenate(chunks), flat)
    copies = [np.array(r) for r in records]
    assert Standardizer.fit(records) == Standardizer.fit(copies)
    std = Standardizer.fit(copies)
    want, rec = eval_windows(copies, standardizer=std)
    got, rec2 = eval_windows(records, standardizer=std)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(rec, rec2)

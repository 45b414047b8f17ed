"""Signal cache entries: size/CRC-32 record, rebuild of damaged entries, unwritable caches, full disk.

Everything here runs on small in-memory "datasets" read through ``cache.load_signals`` (no real
data needed); the disk-full cases run in a subprocess with a file-size limit (RLIMIT_FSIZE with
SIGXFSZ ignored makes ``write`` fail with EFBIG, the same OSError path as ENOSPC).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ecg_keras.datasets import cache
from ecg_keras.datasets.base import DataError

REPO = Path(__file__).resolve().parents[1]


def _records(n: int, variable: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((100 + (7 * i if variable else 0), 12)).astype(np.float32) for i in range(n)]


class Source:
    """A dataset of ``records`` whose reads are counted."""

    def __init__(self, records):
        self.records, self.reads = records, 0

    def __call__(self, i):
        self.reads += 1
        return self.records[i]


def _load(source: Source, cache_dir, fixed: bool | None):
    key = cache.CacheKey("toy", 100, "0123456789abcdef")
    return cache.load_signals(source, len(source.records), key=key, cache_dir=cache_dir, fixed_length=fixed,
                              desc="reading toy")


def _same(got, records) -> None:
    assert len(got) == len(records)
    for a, b in zip(got, records):
        np.testing.assert_array_equal(np.asarray(a), b)


def _entry(cache_dir: Path) -> Path:
    entries = [p for p in cache_dir.iterdir()]
    assert len(entries) == 1 and not entries[0].name.startswith("."), entries
    return entries[0]


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "variable"])
def test_entry_records_size_and_crc(tmp_path, fixed):
    records = _records(5, variable=not fixed)
    _same(_load(Source(records), tmp_path, fixed), records)
    entry = _entry(tmp_path)
    info = json.loads((entry / "info.json").read_text())
    assert info["version"] == cache.CACHE_VERSION
    names = ["signals.npy"] if fixed else ["signals.npy", "lengths.npy"]
    assert sorted(info["files"]) == sorted(names)
    for name in names:
        assert info["files"][name] == cache.file_record(entry / name)
        assert info["files"][name]["size"] == (entry / name).stat().st_size
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o777 & ~mask  # readable by whoever shares the data root


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x55  # same size, different content
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_zero, _flip_last_byte], ids=["zero-bytes", "same-size-corruption"])
@pytest.mark.parametrize("name", ["signals.npy", "lengths.npy"])
def test_damaged_entry_is_detected_and_rebuilt(tmp_path, damage, name):
    records = _records(6, variable=True)
    first = Source(records)
    _same(_load(first, tmp_path, False), records)
    assert first.reads == 6
    size_before = (_entry(tmp_path) / name).stat().st_size
    damage(_entry(tmp_path) / name)
    if damage is _flip_last_byte:
        assert (_entry(tmp_path) / name).stat().st_size == size_before
    assert cache.open_cached(cache.CacheKey("toy", 100, "0123456789abcdef"), tmp_path, 6) is None
    again = Source(records)
    _same(_load(again, tmp_path, False), records)  # never the damaged data, never EOFError
    assert again.reads == 6  # rebuilt from the sources
    third = Source(records)
    _same(_load(third, tmp_path, False), records)
    assert third.reads == 0  # the rebuilt entry is valid
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_old_format_entry_is_rebuilt(tmp_path):
    records = _records(3, variable=False)
    _load(Source(records), tmp_path, True)
    info_path = _entry(tmp_path) / "info.json"
    info = json.loads(info_path.read_text())
    del info["files"]
    info_path.write_text(json.dumps({**info, "version": 1}))
    again = Source(records)
    _same(_load(again, tmp_path, True), records)
    assert again.reads == 3


def test_unwritable_cache_dir_falls_back_with_a_warning(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    records = _records(4, variable=False)
    with pytest.warns(cache.CacheWarning, match="not writable"):
        got = _load(Source(records), blocker / "cache", True)
    _same(got, records)
    assert blocker.read_text() == "not a directory"


def test_read_only_cache_dir_falls_back_with_a_warning(tmp_path, monkeypatch):
    """As a read-only mount answers: every create in the cache directory fails with EROFS/EACCES."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(cache.tempfile, "mkdtemp", refuse)
    records = _records(4, variable=True)
    with pytest.warns(cache.CacheWarning, match="not writable.*Permission denied"):
        got = _load(Source(records), tmp_path, False)
    _same(got, records)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_chmod_read_only_cache_dir(tmp_path):
    cache_dir = tmp_path / "ro"
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    try:
        with pytest.warns(cache.CacheWarning):
            _same(_load(Source(_records(3, False)), cache_dir, True), _records(3, False))
    finally:
        cache_dir.chmod(0o755)


def test_read_only_cache_with_a_valid_entry_is_used(tmp_path, monkeypatch):
    records = _records(3, variable=False)
    _load(Source(records), tmp_path, True)
    monkeypatch.setattr(cache.tempfile, "mkdtemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "no")))
    again = Source(records)
    _same(_load(again, tmp_path, True), records)
    assert again.reads == 0


def test_reader_error_still_raises_and_leaves_nothing(tmp_path):
    records = _records(4, variable=False)

    def read(i):
        if i == 2:
            raise DataError("record 2: broken")
        return records[i]

    with pytest.raises(DataError, match="record 2: broken"):
        cache.load_signals(read, 4, key=cache.CacheKey("toy", 100, "0" * 16), cache_dir=tmp_path,
                           fixed_length=True)
    assert list(tmp_path.iterdir()) == []


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, warnings
    from pathlib import Path
    import numpy as np
    from ecg_keras.datasets import cache

    mode, cache_dir = sys.argv[1], Path(sys.argv[2])
    fixed = mode != "variable"
    if mode == "parallel":
        cache.PARALLEL_MIN_RECORDS = 2
    rng = np.random.default_rng(0)
    records = [rng.standard_normal((2000 + (0 if fixed else 13 * i), 12)).astype(np.float32) for i in range(40)]

    def read(i):
        return records[i]

    def job(a, b):
        return (lambda idx: [records[i] for i in idx]), (list(range(a, b)),)

    cache_dir.mkdir()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cache.load_signals(read, len(records), key=cache.CacheKey("toy", 100, "f" * 16), cache_dir=cache_dir,
                                 fixed_length=fixed, desc="reading toy", job=job if mode == "parallel" else None,
                                 n_jobs=2)
    assert len(got) == 40 and all(np.array_equal(np.asarray(a), b) for a, b in zip(got, records))
    print("WARNINGS", [str(w.message) for w in caught if issubclass(w.category, cache.CacheWarning)])
    print("LEFT", sorted(p.name for p in cache_dir.iterdir()))
""")


@pytest.mark.parametrize("mode", ["fixed", "variable"])
def test_disk_full_while_building_falls_back_and_cleans_up(tmp_path, mode):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, mode, str(tmp_path / "c")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]  # no SIGBUS (135), no traceback
    assert "cannot write the signal cache" in proc.stdout and "File too large" in proc.stdout, proc.stdout
    assert "LEFT []" in proc.stdout  # the .tmp-* folder is gone


# --------------------------------------------------------------------------- --cache-dir
def test_cache_option_values():
    assert cache.cache_option(None) is None and cache.cache_option("") is None
    assert cache.cache_option("off") is False and cache.cache_option("None") is False
    assert cache.cache_option(False) is False
    assert cache.cache_option("/x/y") == "/x/y"


def test_train_cache_dir_option(data_env, tmp_path):
    from ecg_keras.cli.train import config_from_args, parser
    from ecg_keras.training.data import load_records

    args = ["--task", "rhythm", "--dataset", "synthetic", "--cache-dir", str(tmp_path / "mycache")]
    cfg, given = config_from_args(parser().parse_args(args))
    assert cfg.cache_dir == str(tmp_path / "mycache") and "cache_dir" in given
    records, _ = load_records(cfg, log=lambda *a: None)
    assert len(list((tmp_path / "mycache").glob("ptbxl-synthetic-100hz-*"))) == 1
    default = cache.default_cache_dir()
    before = sorted(default.glob("*")) if default.exists() else []
    cfg_off, _ = config_from_args(parser().parse_args(args[:-1] + ["off"]))
    off, _ = load_records(cfg_off, log=lambda *a: None)
    assert not isinstance(off.signals, np.memmap)  # read without a cache
    assert (sorted(default.glob("*")) if default.exists() else []) == before
    np.testing.assert_array_equal(np.asarray(records.signals), off.signals)


def test_evaluate_attribution_has_cache_dir():
    from ecg_keras.cli.insights import build_parser

    ns = build_parser().parse_args(["attribution", "RUN", "--class", "X", "--data-dir", "D", "--cache-dir", "off",
                                    "--record", "1", "--out", "o.png"])
    assert ns.cache_dir == "off"


_PARALLEL_RECORDS = _records(12, variable=False)


def _chunk(start: int, stop: int):
    return [_PARALLEL_RECORDS[i] for i in range(start, stop)]


def test_disk_full_in_parallel_workers_falls_back(tmp_path, monkeypatch):
    """Forked workers write their records with pwrite; ENOSPC there -> warning, uncached read, no .tmp-*."""
    import errno

    if not cache._fork_available():
        pytest.skip("parallel cache filling needs fork")
    monkeypatch.setattr(cache, "PARALLEL_MIN_RECORDS", 0)
    monkeypatch.setattr(cache, "MAX_CHUNK", 2)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.os, "pwrite", full)
    key = cache.CacheKey("toy", 100, "a" * 16)
    with pytest.warns(cache.CacheWarning, match="No space left on device"):
        got = cache.load_signals(lambda i: _PARALLEL_RECORDS[i], 12, key=key, cache_dir=tmp_path, fixed_length=True,
                                 job=lambda a, b: (_chunk, (a, b)), n_jobs=2)
    _same(got, _PARALLEL_RECORDS)
    assert list(tmp_path.iterdir()) == []

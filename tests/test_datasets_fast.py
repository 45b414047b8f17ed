"""Fast WFDB reading: the format-16 fast path equals wfdb.rdsamp, parallel reading equals serial."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
import wfdb.io.header

from conftest import shared_path
from ecg_keras.datasets import DataError, cache, fastwfdb, load_ptbxl, load_wfdb_folder
from ecg_keras.datasets.throughput import measure_throughput
from ecg_keras.datasets.wfdb_io import read_record

sys.path.insert(0, str(Path(__file__).parent))
from ptbxl_fixture import LEAD_NAMES, record_signal, write_ptbxl_fixture, write_record  # noqa: E402


@pytest.fixture(autouse=True)
def _data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("ECG_KERAS_DATA", str(tmp_path / "data_root"))


def assert_same_as_wfdb(record) -> None:
    """fastwfdb.rdsamp(record) is wfdb.rdsamp(record): same bits, same fields and field types."""
    fast = fastwfdb.rdsamp(record)
    assert fast is not None, f"{record}: not taken by the fast path"
    sig, fields = fast
    ref_sig, ref_fields = wfdb.rdsamp(str(record))
    assert sig.dtype == ref_sig.dtype == np.float64 and sig.shape == ref_sig.shape
    np.testing.assert_array_equal(sig.view(np.uint64), ref_sig.view(np.uint64))  # bit for bit, NaNs too
    assert fields == ref_fields
    assert {k: type(v) for k, v in fields.items()} == {k: type(v) for k, v in ref_fields.items()}


def test_regexes_are_wfdbs():
    assert fastwfdb.RX_RECORD.pattern == wfdb.io.header.rx_record.pattern
    assert fastwfdb.RX_SIGNAL.pattern == wfdb.io.header.rx_signal.pattern
    assert fastwfdb.RX_RECORD.flags == wfdb.io.header.rx_record.flags
    assert fastwfdb.RX_SIGNAL.flags == wfdb.io.header.rx_signal.flags


def test_fast_reader_equals_rdsamp_on_fixture(tmp_path, scp_statements_csv):
    root = write_ptbxl_fixture(tmp_path / "ptbxl", scp_statements_csv, n_records=6)
    records = sorted(p.with_suffix("") for p in root.rglob("*.hea"))
    assert len(records) == 12
    for record in records:
        assert_same_as_wfdb(record)
    x = record_signal(3, 250)
    x[5, 2] = x[7, 11] = np.nan  # digital NaN (-32768)
    write_record(tmp_path / "nan", x, 250, comments=["Dx: 1,2", "Age: 5", "Sex: Female"])
    assert_same_as_wfdb(tmp_path / "nan")
    write_record(tmp_path / "lower", x, 500, lead_names=[n.lower() for n in LEAD_NAMES], units="uV")
    assert_same_as_wfdb(tmp_path / "lower")


def _rewrite_header(record: Path, edit) -> None:
    hea = Path(f"{record}.hea")
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join([lines[0]] + [edit(j, ln) for j, ln in enumerate(lines[1:13])] + lines[13:]) + "\n")


def test_fast_reader_gains_baselines_defaults(tmp_path):
    record = tmp_path / "r"
    write_record(record, record_signal(1, 100), 100)
    # LUDB style: integer gains, nonzero baselines, lower-case names
    _rewrite_header(record, lambda j, ln: ln.replace("1000.0(0)/mV", f"{1200 + 37 * j}({j - 5})/mV"))
    assert_same_as_wfdb(record)
    # no baseline -> ADC zero; no units -> mV; base time and date; fs "100.0"
    write_record(record, record_signal(2, 100), 100)
    _rewrite_header(record, lambda j, ln: ln.replace("1000.0(0)/mV 16 0", f"1000.0 16 {j - 3}"))
    hea = Path(f"{record}.hea")
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join([lines[0].replace(" 100 ", " 100.0 ") + " 10:11:12 05/06/2001"] + lines[1:]) + "\n")
    assert_same_as_wfdb(record)
    # byte offset, CinC .mat style "16x1+24"
    write_record(record, record_signal(3, 100), 100)
    dat = Path(f"{record}.dat")
    dat.with_suffix(".mat").write_bytes(b"\x01" * 24 + dat.read_bytes())
    dat.unlink()
    _rewrite_header(record, lambda j, ln: ln.replace("r.dat 16 ", "r.mat 16x1+24 "))
    assert_same_as_wfdb(record)


@pytest.mark.parametrize("damage", ["fmt212", "two_files", "truncated_dat", "long_dat", "missing_dat",
                                    "missing_hea", "garbage", "few_lines", "skew", "zero_gain", "multi_segment"])
def test_fast_reader_declines_unusual_records(tmp_path, damage):
    """Anything but a plain single-file format-16 record is left to wfdb (None)."""
    record = tmp_path / "r"
    write_record(record, record_signal(1, 100), 100)
    hea, dat = Path(f"{record}.hea"), Path(f"{record}.dat")
    if damage == "fmt212":
        _rewrite_header(record, lambda j, ln: ln.replace(" 16 1000", " 212 1000"))
    elif damage == "two_files":
        _rewrite_header(record, lambda j, ln: ln.replace("r.dat", "s.dat") if j == 11 else ln)
    elif damage == "truncated_dat":
        dat.write_bytes(dat.read_bytes()[:-2])
    elif damage == "long_dat":
        dat.write_bytes(dat.read_bytes() + b"\0\0")
    elif damage == "missing_dat":
        dat.unlink()
    elif damage == "missing_hea":
        hea.unlink()
    elif damage == "garbage":
        hea.write_text("r 12 abc\ngarbage line\n")
    elif damage == "few_lines":
        hea.write_text("\n".join(hea.read_text().splitlines()[:5]) + "\n")
    elif damage == "skew":
        _rewrite_header(record, lambda j, ln: ln.replace(" 16 1000", " 16:3 1000"))
    elif damage == "zero_gain":
        _rewrite_header(record, lambda j, ln: ln.replace("1000.0(0)", "0(0)"))
    elif damage == "multi_segment":
        lines = hea.read_text().splitlines()
        hea.write_text("\n".join(["r/2 12 100 1000"] + lines[1:]) + "\n")
    assert fastwfdb.rdsamp(record) is None


def test_fast_reader_switch_and_replaced_rdsamp(tmp_path, monkeypatch):
    record = tmp_path / "r"
    write_record(record, record_signal(1, 100), 100)
    assert fastwfdb.enabled() and not fastwfdb.rdsamp_replaced()
    calls = []
    real = wfdb.rdsamp
    monkeypatch.setattr(wfdb, "rdsamp", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert fastwfdb.rdsamp_replaced() and not fastwfdb.enabled()
    read_record(record, 100)
    assert len(calls) == 1  # a replaced rdsamp sees every read
    monkeypatch.setattr(wfdb, "rdsamp", real)
    monkeypatch.setenv(fastwfdb.ENV, "0")
    assert not fastwfdb.enabled()


def test_fast_reader_equals_rdsamp_on_real_records():
    ptbxl = shared_path("ptb-xl-sample", "records100", "00000")
    assert_same_as_wfdb(ptbxl / "00001_lr")
    ludb = sorted(p.with_suffix("") for p in shared_path("ludb-1.0.1", "data").glob("*.hea"))
    assert len(ludb) == 200
    for record in ludb:
        assert_same_as_wfdb(record)


def test_fast_reader_equals_rdsamp_on_cinc_mat_records():
    records = sorted(p.with_suffix("") for p in shared_path("cinc2021-sample").glob("*.hea"))
    assert records
    for record in records:
        assert_same_as_wfdb(record)


def test_read_record_same_with_and_without_fast_path(tmp_path, monkeypatch):
    ludb = shared_path("ludb-1.0.1", "data")
    fast = [read_record(ludb / str(i), 500, 100) for i in (1, 2, 3)]
    monkeypatch.setenv(fastwfdb.ENV, "0")
    slow = [read_record(ludb / str(i), 500, 100) for i in (1, 2, 3)]
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- parallel reading
N = 23


@pytest.fixture(scope="module")
def ptbxl23(tmp_path_factory, scp_statements_csv):
    return write_ptbxl_fixture(tmp_path_factory.mktemp("ptbxl23"), scp_statements_csv, n_records=N)


@pytest.fixture
def small_chunks(monkeypatch):
    """Parallel even for a few records, in chunks of 3 (several chunks per worker, in flight);
    yields the list of worker counts of the process pools started."""
    monkeypatch.setattr(cache, "PARALLEL_MIN_RECORDS", 0)
    monkeypatch.setattr(cache, "MAX_CHUNK", 3)
    pools, real = [], cache._pool

    def spy(n_jobs, n_tasks):
        pool = real(n_jobs, n_tasks)
        pools.append(pool._max_workers)
        return pool

    monkeypatch.setattr(cache, "_pool", spy)
    return pools


@pytest.mark.parametrize("fs", [100, 500])
def test_parallel_equals_serial_in_order(ptbxl23, tmp_path, small_chunks, fs):
    serial = load_ptbxl(ptbxl23, sampling_rate=fs, cache_dir=False, n_jobs=1)
    assert small_chunks == []
    parallel = load_ptbxl(ptbxl23, sampling_rate=fs, cache_dir=False, n_jobs=2)
    assert small_chunks == [2]
    assert parallel.signals.shape == serial.signals.shape == (N, 10 * fs, 12)
    assert parallel.signals.dtype == np.float32
    np.testing.assert_array_equal(parallel.signals, serial.signals)
    for i in range(N):  # each record where it belongs
        np.testing.assert_allclose(parallel.signals[i], record_signal(i + 1, fs), atol=1e-6)
    cached = load_ptbxl(ptbxl23, sampling_rate=fs, cache_dir=tmp_path / "c", n_jobs=2)
    assert isinstance(cached.signals, np.memmap)
    np.testing.assert_array_equal(cached.signals, serial.signals)
    again = load_ptbxl(ptbxl23, sampling_rate=fs, cache_dir=tmp_path / "c", n_jobs=1)
    np.testing.assert_array_equal(again.signals, serial.signals)


def test_parallel_variable_length_in_order(tmp_path, small_chunks):
    root = tmp_path / "folder"
    for i in range(11):
        write_record(root / f"r{i:02d}", record_signal(i, 250, duration=2.0 + 0.1 * i), 250)
    serial = load_wfdb_folder(root, cache_dir=False, n_jobs=1)
    parallel = load_wfdb_folder(root, cache_dir=False, n_jobs=2)
    assert small_chunks == [2]
    assert isinstance(parallel.signals, list) and len(parallel.signals) == 11
    assert [len(x) for x in parallel.signals] == [round(250 * (2.0 + 0.1 * i)) for i in range(11)]
    for a, b in zip(parallel.signals, serial.signals):
        np.testing.assert_array_equal(a, b)
    cached = load_wfdb_folder(root, cache_dir=tmp_path / "c", n_jobs=2)
    for a, b in zip(cached.signals, serial.signals):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damage, match", [
    ("nan", r"00008_lr\.hea: 3 NaN/inf samples"),
    ("length", r"00008_lr\.hea: 900 samples, expected 1000"),
    ("garbage", r"00008_lr\.hea: sampling frequency 'abc' is not a plausible"),
])
@pytest.mark.parametrize("cached", [False, True])
def test_parallel_errors_like_serial(tmp_path, scp_statements_csv, small_chunks, damage, match, cached):
    root = write_ptbxl_fixture(tmp_path / "p", scp_statements_csv, n_records=14, sampling_rates=(100,))
    record = root / "records100/00000/00008_lr"
    x = record_signal(8, 100)
    if damage == "nan":
        x[10:13, 8] = np.nan
        write_record(record, x, 100)
    elif damage == "length":
        write_record(record, x[:900], 100)
    else:
        Path(f"{record}.hea").write_text("00008_lr 12 abc\ngarbage line\n")
    # a later record is bad too: the first bad one (in order) is reported, as serially
    write_record(root / "records100/00000/00012_lr", record_signal(12, 100)[:800], 100)
    messages = []
    for n_jobs in (1, 2):
        cache_dir = tmp_path / f"c{n_jobs}" if cached else False
        with pytest.raises(DataError, match=match) as info:
            load_ptbxl(root, cache_dir=cache_dir, n_jobs=n_jobs)
        messages.append(str(info.value))
        assert "Traceback" not in messages[-1]
        assert not cached or list(cache_dir.glob("*")) == []  # no entry, no temporary folder
    assert messages[0] == messages[1] and small_chunks == [2]


def test_throughput_measure(tmp_path):
    r = measure_throughput(n_records=12, sampling_rates=(100,), repeats=1, n_jobs=1, workdir=tmp_path)
    assert r["n_records"] == 12 and r["n_jobs"] == 1 and r["fast_wfdb"]
    assert r["cold"][100] > 0 and r["cached"][100] > 0
    assert set(r["seconds"][100]) == {"cold", "cached"}
    assert list(tmp_path.iterdir()) == []  # generated data removed


def test_n_jobs_default_is_cpu_count():
    assert cache.effective_n_jobs(None) >= 1 and cache.effective_n_jobs(0) == 1 and cache.effective_n_jobs(3) == 3

"""Property-based robustness of every record reader (hypothesis): corrupt input -> DataError only.

Generated inputs: random header bytes, plausible WFDB headers with wrong fields (lengths, formats,
gains, lead counts, huge sample counts), truncated or oversized signal files, random and
truncated ``.mat``/``.npy`` files, random CSV text, huge values. The property: a reader returns a
valid result or raises ``DataError`` -- never another exception, never a hang (each example runs
under a deadline), and a failed cached read leaves neither a cache entry nor a temporary folder.
Issue 23 adds header fields that do not parse (rate, gain), .npy header shapes beyond the file and
wide CSVs (bounded time). Examples are derandomised (the same ones on every run) and few, so the
module takes well under a minute; ``ECG_KERAS_FUZZ_EXAMPLES=500`` runs a deeper random search.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecg_keras.datasets import fastwfdb
from ecg_keras.datasets.base import DataError
from ecg_keras.datasets.icbeb import read_cpsc_mat
from ecg_keras.datasets.ptbxl import read_database
from ecg_keras.datasets.wfdb_folder import load_wfdb_folder
from ecg_keras.datasets.wfdb_io import read_header_text, read_record
from ecg_keras.io.records import check_signal, read_any, to_model_input

# $ECG_KERAS_FUZZ_EXAMPLES=500 for a deeper (random, not derandomised) search by hand.
_DEEP = int(os.environ.get("ECG_KERAS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 40, deadline=5000, derandomize=not _DEEP, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FORMATS = ["16", "212", "8", "80", "24", "32", "61", "160", "310", "311", "999", "", "16x2", "16:3", "16+7"]


def _expect_data_error_or_result(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except DataError as e:
        assert str(e), "a DataError must say what is wrong"
        return None


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="fuzz-"))


# --------------------------------------------------------------------------- WFDB
@st.composite
def wfdb_record(draw):
    """(header text, signal bytes): a plausible header with random damage and a random-length .dat."""
    n_sig = draw(st.sampled_from([12, 12, 12, 1, 0, 13, 3]))
    sig_len = draw(st.sampled_from([100, 100, 0, 1, 99, 10**9, 10**15]))
    fs = draw(st.sampled_from(["500", "100", "0", "-5", "abc", "", "1e400", "500/2", "250(3)"]))
    lines = [f"rec {n_sig} {fs} {sig_len}".strip()]
    for j in range(n_sig):
        fmt = draw(st.sampled_from(FORMATS)) if draw(st.booleans()) else "16"
        gain = draw(st.sampled_from(["200", "200(5)/mV", "0", "-1", "1000/uV", "1e308", "x", "200/furlong", ""]))
        name = LEADS[j] if j < 12 and draw(st.booleans()) else draw(st.sampled_from(LEADS + ["aVR", "X", ""]))
        lines.append(f"rec.dat {fmt} {gain} 16 0 0 0 0 {name}")
    if draw(st.booleans()):
        lines = lines[:draw(st.integers(0, len(lines)))]
    text = "\n".join(lines) + "\n"
    n_bytes = draw(st.sampled_from([0, 1, 2 * 12 * 100, 2 * 12 * 100 - 1, 2 * 12 * 100 + 5, 3 * 12 * 50]))
    data = draw(st.binary(min_size=min(n_bytes, 64), max_size=min(n_bytes, 64)))
    signal = (data * (n_bytes // max(len(data), 1) + 1))[:n_bytes] if data else bytes(n_bytes)
    if draw(st.booleans()):  # huge values
        signal = np.full(n_bytes // 2, 32767, "<i2").tobytes() + signal[2 * (n_bytes // 2):]
    return text, signal


def _write_wfdb(folder: Path, header: bytes | str, signal: bytes | None) -> Path:
    (folder / "rec.hea").write_bytes(header.encode("latin-1", "replace") if isinstance(header, str) else header)
    if signal is not None:
        (folder / "rec.dat").write_bytes(signal)
    return folder / "rec"


@FUZZ
@given(header=st.binary(max_size=300), signal=st.one_of(st.none(), st.binary(max_size=300)))
def test_wfdb_random_header_bytes(header, signal):
    folder = _tmp()
    try:
        rec = _write_wfdb(folder, header, signal)
        assert fastwfdb.rdsamp(rec) is None or isinstance(fastwfdb.rdsamp(rec), tuple)  # never raises
        _expect_data_error_or_result(read_header_text, rec)
        _expect_data_error_or_result(read_record, rec)
        _expect_data_error_or_result(read_any, rec)
        _expect_data_error_or_result(load_wfdb_folder, folder, cache_dir=False)
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("header", [b"x 12\n", b"x 12\nx.dat 16 200 16 0 0 0 0 I\n", b"r 1 nan 10\n",
                                    b"r 1 0 10\nr.dat 16 200 16 0 0 0 0 I\n", b"\x00\xff\xfe 7\n"])
def test_wfdb_header_without_sampling_rate_names_the_file(tmp_path, header):
    """Issue #19: a WFDB header of random bytes gave a TypeError that named no file."""
    rec = _write_wfdb(tmp_path, header, b"")
    with pytest.raises(DataError, match=r"rec\.hea"):
        load_wfdb_folder(tmp_path, cache_dir=False)
    with pytest.raises(DataError, match=r"rec\.hea"):
        read_record(rec)


@FUZZ
@given(wfdb_record())
def test_wfdb_damaged_headers_and_signal_files(record):
    text, signal = record
    folder = _tmp()
    try:
        rec = _write_wfdb(folder, text, signal)
        fast = fastwfdb.rdsamp(rec)
        assert fast is None or isinstance(fast, tuple)
        _expect_data_error_or_result(read_any, rec)
        _expect_data_error_or_result(read_header_text, rec)
        got = _expect_data_error_or_result(read_record, rec)
        if got is not None:
            assert got.dtype == np.float32 and np.isfinite(got).all()
        got = _expect_data_error_or_result(read_record, rec, target_fs=100)
        if got is not None:
            assert got.ndim == 2 and got.shape[1] == 12 and np.isfinite(got).all()
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(wfdb_record())
def test_cached_folder_read_leaves_no_partial_entry(record):
    text, signal = record
    root, cache_dir = _tmp(), _tmp()
    try:
        good = np.zeros((100, 12), "<i2")
        good[::7] = 50
        (root / "good.hea").write_text("good 12 500 100\n" + "".join(
            f"good.dat 16 200/mV 16 0 0 0 0 {lead}\n" for lead in LEADS))
        (root / "good.dat").write_bytes(good.tobytes())
        _write_wfdb(root, text, signal)
        rs = _expect_data_error_or_result(load_wfdb_folder, root, cache_dir=cache_dir)
        left = [p.name for p in cache_dir.iterdir()]
        assert not [n for n in left if n.startswith(".")], left  # no .tmp-* folder
        if rs is None:
            assert left == []
        else:
            assert len(left) == 1 and (cache_dir / left[0] / "info.json").is_file()
    finally:
        shutil.rmtree(root)
        shutil.rmtree(cache_dir)


# --------------------------------------------------------------------------- .mat
def _cpsc_bytes(data) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"ECG": {"sex": "Male", "age": 60, "data": data}})
    return buf.getvalue()


VALID_MAT = _cpsc_bytes(np.random.default_rng(0).standard_normal((12, 300)))


@FUZZ
@given(st.one_of(
    st.binary(max_size=400),
    st.integers(0, len(VALID_MAT)).map(lambda n: VALID_MAT[:n]),
    st.tuples(st.integers(0, len(VALID_MAT) - 1), st.binary(min_size=1, max_size=8)).map(
        lambda t: VALID_MAT[:t[0]] + t[1] + VALID_MAT[t[0] + len(t[1]):]),
    st.sampled_from([(11, 300), (12, 0), (300, 12), (12,), (12, 5)]).map(lambda s: _cpsc_bytes(np.ones(s))),
    st.just(_cpsc_bytes(np.full((12, 50), 1e300))),
    st.just(_cpsc_bytes(np.array([["a"] * 5] * 12))),
))
def test_cpsc_mat(content):
    folder = _tmp()
    try:
        path = folder / "A0001.mat"
        path.write_bytes(content)
        got = _expect_data_error_or_result(read_cpsc_mat, path)
        if got is not None:
            assert np.isfinite(got[0]).all()
        rec = _expect_data_error_or_result(read_any, path)
        if rec is not None:
            _expect_data_error_or_result(to_model_input, rec, 100)
    finally:
        shutil.rmtree(folder)


# --------------------------------------------------------------------------- .npy / .csv
def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


VALID_NPY = _npy_bytes(np.random.default_rng(0).standard_normal((200, 12)).astype(np.float32))


@FUZZ
@given(content=st.one_of(
    st.binary(max_size=300),
    st.integers(0, len(VALID_NPY)).map(lambda n: VALID_NPY[:n]),
    st.sampled_from([(0, 12), (200,), (12, 200), (200, 11), (2, 3, 4), (200, 12)]).map(
        lambda s: _npy_bytes(np.ones(s))),
    st.sampled_from([1e300, np.inf, np.nan, -1e38, 0.0]).map(lambda v: _npy_bytes(np.full((200, 12), v))),
    st.just(_npy_bytes(np.array([["x"] * 12] * 20))),
    st.just(_npy_bytes(np.zeros((20, 12), dtype=[("a", "f4")]))),
), fs=st.sampled_from([None, 500.0, 0.0, -1.0, float("nan"), 1e9]))
def test_npy(content, fs):
    folder = _tmp()
    try:
        path = folder / "x.npy"
        path.write_bytes(content)
        rec = _expect_data_error_or_result(read_any, path, fs=fs)
        if rec is not None:
            got = _expect_data_error_or_result(to_model_input, rec, 100)
            if got is not None:
                assert np.isfinite(got[0]).all()
    finally:
        shutil.rmtree(folder)


CSV_TOKENS = ["I", "II", "aVR", "AVR", "V2", "time", "0.1", "-3", "1e400", "nan", "", "x", ",", ";", "\t",
              "\n", "\"", "0.002", "5"]


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.lists(st.sampled_from(CSV_TOKENS), max_size=80).map("".join)),
       fs=st.sampled_from([None, 500.0]), leads=st.sampled_from([None, LEADS, ["I", "I"], ["Q"]]))
def test_csv(text, fs, leads):
    folder = _tmp()
    try:
        path = folder / "x.csv"
        path.write_bytes(text.encode("utf-8", "replace"))
        rec = _expect_data_error_or_result(read_any, path, fs=fs, leads=leads)
        if rec is not None:
            _expect_data_error_or_result(to_model_input, rec, 100)
    finally:
        shutil.rmtree(folder)


# --------------------------------------------------------------------------- PTB-XL table
@FUZZ
@given(st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(
    ["ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold", "filename_lr", ",", "\n", "1", "11",
     "\"{'NORM': 100}\"", "\"{[]: 1}\"", "\"[[[[\"", "\"{'A': {}}\"", "x", "\"\""]), max_size=60).map(
        lambda t: "".join(t).encode())))
def test_ptbxl_database_table(content):
    folder = _tmp()
    try:
        path = folder / "ptbxl_database.csv"
        path.write_bytes(content)
        _expect_data_error_or_result(read_database, path, "filename_lr")
    finally:
        shutil.rmtree(folder)


def test_check_signal_names_record_and_lead():
    x = np.random.default_rng(0).standard_normal((1000, 12))
    x[10, 7] = np.nan
    with pytest.raises(DataError, match=r"rec9: non-finite samples \(NaN/Inf\) in lead\(s\) V2; 1 sample\(s\), "
                                        r"the first at sample 10 \(0.020 s\)"):
        check_signal(x, 500, "rec9")
    x[10, 7] = 0
    x[:, 3] = 0.2
    with pytest.raises(DataError, match=r"rec9: flat line \(peak-to-peak below 0.01 mV over 2.0 s\) in lead\(s\) aVR"):
        check_signal(x, 500, "rec9")
    x[:, 3] = np.linspace(0, 1, 1000)
    x[5, 0] = 5000.0
    with pytest.raises(DataError, match="rec9: lead I reaches 5000 mV.*units"):
        check_signal(x, 500, "rec9")


def test_file_and_batch_paths_refuse_nan_with_the_same_message():
    """One checker: a record read from a file (predict's ``to_model_input``) and the records given
    to ``predict_records`` / the LiteRT runner (``windows.check_signals``) are refused alike."""
    from ecg_keras.io.records import LEAD_NAMES, Record
    from ecg_keras.windows import check_signals

    x = np.random.default_rng(0).standard_normal((1000, 12))
    x[10, 7] = x[20, 9] = np.nan
    with pytest.raises(DataError) as from_file:
        to_model_input(Record("record 1", Path("r.npy"), x, 100.0, list(LEAD_NAMES)), 100)
    with pytest.raises(DataError) as from_batch:
        check_signals([np.ones((1000, 12)), x])
    expected = ("record 1: non-finite samples (NaN/Inf) in lead(s) V2, V4; 2 sample(s), the first at sample 10{}; "
                "the models do not answer such input (lead-off or a corrupted file?)")
    assert str(from_file.value) == expected.format(" (0.100 s)")  # the file's rate is known
    assert str(from_batch.value) == expected.format("")


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(
    ["Recording", "First_label", "Second_label", "Third_label", ",", "\n", "A0001", "A0002", "1", "9", "10", "0",
     "1.5", "x", "-3", "\"\"", "nan"]), max_size=60).map(lambda t: "".join(t).encode())))
def test_icbeb_reference_table(content):
    from ecg_keras.datasets.icbeb import read_reference

    folder = _tmp()
    try:
        path = folder / "REFERENCE.csv"
        path.write_bytes(content)
        _expect_data_error_or_result(read_reference, path)
    finally:
        shutil.rmtree(folder)


def test_mat_with_a_damaged_struct_size_is_refused_at_once(tmp_path):
    """Found by this module: one flipped byte made loadmat build a 33-million-element struct (~10 s)."""
    import time

    path = tmp_path / "A0001.mat"
    path.write_bytes(VALID_MAT[:163] + b"\x02" + VALID_MAT[164:])
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"A0001.mat: 'ECG' is a struct of shape \(33554433, 1\)"):
        read_cpsc_mat(path)
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- issue 23: fields, headers, widths
_BAD_FS = st.one_of(st.sampled_from(["nan", "NaN", "inf", "-inf", "-500", "0", "1", "49.9", "1e9", "abc", "5e", "--1",
                                     "0x1F4", "500abc", "1_000"]),
                    st.floats(max_value=49.0).map(repr),
                    st.text(alphabet="abcxyz!%&", min_size=1, max_size=6))
_BAD_GAIN = st.one_of(st.sampled_from(["0", "-1000", "nan", "inf", "-inf", "0(0)", "-200(5)", "x", "1e", "(0)"]),
                      st.floats(max_value=0.0).map(repr))


@FUZZ
@given(fs=_BAD_FS, gain=st.one_of(st.none(), _BAD_GAIN), lead=st.integers(0, 11))
def test_wfdb_fields_that_do_not_parse_are_refused_from_the_text(fs, gain, lead):
    """A rate or gain that does not parse, is not finite or is implausible is refused before wfdb
    substitutes its default (250 Hz, 200 adu/mV): DataError naming the header, never a result."""
    from ecg_keras.datasets.synthetic import write_wfdb

    folder = _tmp()
    try:
        write_wfdb(folder / "rec", np.sin(np.arange(600) / 9.0)[:, None] * np.linspace(0.5, 1.5, 12), 500)
        lines = (folder / "rec.hea").read_text().splitlines()
        lines[0] = lines[0].replace(" 500 ", f" {fs} ", 1)
        if gain is not None:
            lines[1 + lead] = lines[1 + lead].replace("1000.0(0)", gain, 1)
        (folder / "rec.hea").write_text("\n".join(lines) + "\n")
        for read in (read_any, read_record):
            with pytest.raises(DataError, match=r"rec\.hea: (sampling frequency|signal \d+ .* has gain)"):
                read(folder / "rec")
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(shape=st.one_of(st.tuples(st.integers(10**6, 10**15), st.integers(1, 10**4)),
                       st.tuples(st.integers(1, 10**4), st.integers(10**6, 10**15))),
       descr=st.sampled_from(["<f8", "<f4", "<i2", "|b1", "<c16"]), tail=st.integers(0, 256))
def test_npy_header_shapes_beyond_the_file_are_refused_before_reading(shape, descr, tail):
    folder = _tmp()
    try:
        path = folder / "x.npy"
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
            f.write(b"\0" * tail)
        with pytest.raises(DataError, match=r"x\.npy: (the \.npy header claims|array of dtype)"):
            read_any(path, fs=500)
    finally:
        shutil.rmtree(folder)


@settings(FUZZ, max_examples=_DEEP or 8, deadline=10_000)
@given(columns=st.integers(1_001, 30_000), rows=st.integers(1, 4), header=st.booleans(),
       cell=st.sampled_from(["0.5", "-1e3", "nan", "", "x", "1e400"]))
def test_wide_csv_is_bounded_in_time(columns, rows, header, cell):
    """Wide CSVs (a per-column loop took > 400 s at 100,000 columns): a result or a DataError
    within the example deadline."""
    folder = _tmp()
    try:
        path = folder / "x.csv"
        body = "\n".join(",".join([cell] + ["0.25"] * (columns - 1)) for _ in range(rows))
        head = ",".join(f"c{j}" for j in range(columns)) + "\n" if header else ""
        path.write_text(head + body + "\n")
        _expect_data_error_or_result(read_any, path, fs=500)
    finally:
        shutil.rmtree(folder)

"""Property-based robustness of the hospital-format readers (hypothesis), as test_readers_fuzz.py
does for WFDB/.mat/.npy/.csv: a valid file of each format, truncated, overwritten with random
bytes at random places or with bytes inserted, gives a Record or a DataError naming the file --
never another exception, never a hang (deadline per example). Derandomised and few examples;
``ECG_KERAS_FUZZ_EXAMPLES=500`` searches deeper.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from format_writers import LEADS, WRITERS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecg_keras.datasets.base import DataError
from ecg_keras.io.formats import open_stream, sniff
from ecg_keras.io.records import read_any, to_model_input

_DEEP = int(os.environ.get("ECG_KERAS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 25, deadline=5000, derandomize=not _DEEP, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


def _valid_files() -> dict[str, bytes]:
    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(0)
    raw = (rng.normal(0, 200, (500, 12))).astype(np.int16)  # 1 s: one EDF data record
    folder = Path(tempfile.mkdtemp(prefix="fuzz-valid-"))
    try:
        files = {k: write(folder / f"x{suffix}", raw, 5.0, 500.0, LEADS).read_bytes()
                 for k, (write, suffix) in WRITERS.items()}
    finally:
        shutil.rmtree(folder)
    files["dicom"] = Path(get_testdata_file("waveform_ecg.dcm")).read_bytes()
    return files


VALID = _valid_files()
SUFFIX = {"edf": ".edf", "hl7": ".xml", "muse": ".xml", "philips": ".xml", "scp": ".scp", "ishne": ".ecg",
          "dicom": ".dcm"}


@st.composite
def damaged(draw, kind):
    data = bytearray(VALID[kind])
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["truncate", "overwrite", "insert", "field"]))
        if how == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif how == "overwrite" and data:
            at = draw(st.integers(0, len(data) - 1))
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(chunk)] = chunk
        elif how == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:  # a header-sized field: the first 600 bytes hold every format's header
            at = draw(st.integers(0, min(len(data), 600) - 1))
            data[at:at + 4] = draw(st.sampled_from([b"\xff\xff\xff\x7f", b"\0\0\0\0", b"\xff\xff\xff\xff", b"9999",
                                                    b"-1  ", b"1e99"]))
    return bytes(data)


def _check(kind: str, data: bytes):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        path = folder / f"rec{SUFFIX[kind]}"
        path.write_bytes(data)
        sniff(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rec = read_any(path)
            except DataError as e:
                assert "rec" in str(e), f"the message must name the file: {e}"
                return
            assert rec.signal.ndim == 2 and rec.signal.shape[1] == len(rec.leads) and rec.fs > 0
            try:
                to_model_input(rec, 100, fill_missing=True)
            except DataError:
                pass
            try:
                stream = open_stream(path)
                stream.read(0, 10)
            except DataError:
                pass
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("kind", sorted(SUFFIX))
def test_valid_fixture_reads(kind):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        path = folder / f"rec{SUFFIX[kind]}"
        path.write_bytes(VALID[kind])
        assert read_any(path).signal.shape[1] == 12
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("kind", sorted(SUFFIX))
def test_damaged_files_give_data_error(kind):
    _check(kind, VALID[kind])  # warm: the first read imports the parser (seconds), not a hang
    given(damaged(kind))(FUZZ(lambda data: _check(kind, data)))()


@FUZZ
@given(st.binary(max_size=700), st.sampled_from(sorted(set(SUFFIX.values())) + [""]))
def test_random_bytes_any_suffix(data, suffix):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        path = folder / f"rec{suffix}"
        path.write_bytes(data)
        try:
            read_any(path)
        except DataError as e:
            assert "rec" in str(e)
    finally:
        shutil.rmtree(folder)

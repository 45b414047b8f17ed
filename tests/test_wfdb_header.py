"""Issue 23 item 4: WFDB header fields are validated from the header text, before wfdb substitutes
its defaults (250 Hz for an unparsable rate, 200 adu/mV for gain 0)."""
import re
import shutil

import numpy as np
import pytest

from conftest import shared_path
from ecg_keras.datasets.base import DataError
from ecg_keras.datasets.synthetic import write_wfdb
from ecg_keras.datasets.wfdb_io import check_header, read_record
from ecg_keras.io.records import read_any


def _record(tmp_path, fs=500):
    t = np.arange(2000) / fs
    x = np.sin(2 * np.pi * 1.2 * t)[:, None] * np.linspace(0.5, 1.5, 12)[None, :]
    write_wfdb(tmp_path / "r", x, fs)
    return tmp_path / "r"


def _edit(rec, line: int, old: str, new: str):
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    lines[line] = re.sub(old, new, lines[line], count=1)
    hea.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("fs_field, why", [("nan", "sampling frequency 'nan'"), ("-500", "'-500'"),
                                           ("1", "'1'"), ("inf", "'inf'"), ("5e9", "'5e9'"), ("abc", "'abc'")])
def test_rate_that_does_not_parse_or_is_implausible_is_refused(tmp_path, fs_field, why):
    rec = _record(tmp_path)
    _edit(rec, 0, r" 500 ", f" {fs_field} ")
    for read in (read_any, read_record):
        with pytest.raises(DataError, match=re.escape(why)):
            read(rec)


def test_missing_rate_is_refused_not_read_at_250_hz(tmp_path):
    rec = _record(tmp_path)
    _edit(rec, 0, r" 500 2000", "")
    with pytest.raises(DataError, match="no sampling frequency"):
        read_any(rec)


@pytest.mark.parametrize("gain", ["0", "-1000", "0(0)", "nan", "x"])
def test_zero_negative_or_unparsable_gain_is_refused(tmp_path, gain):
    rec = _record(tmp_path)
    _edit(rec, 3, r"1000\.0\(0\)", gain)
    with pytest.raises(DataError, match=r"signal 3 \(III\) has gain"):
        read_any(rec)


@pytest.mark.parametrize("old, new, why", [(r"^r 12", "r x", "number of signals 'x'"),
                                           (r"^r 12", "r 13", "announces 13 signals but 12"),
                                           (r" 2000$", " -5", "number of samples '-5'")])
def test_signal_count_and_length_fields(tmp_path, old, new, why):
    rec = _record(tmp_path)
    _edit(rec, 0, old, new)
    with pytest.raises(DataError, match=re.escape(why)):
        read_any(rec)


def test_valid_header_reads_and_ludb_headers_pass(tmp_path):
    rec = _record(tmp_path)
    assert check_header(rec)["fs"] == 500 and read_any(rec).fs == 500
    ludb = shared_path("ludb-1.0.1", "data", "1.hea")
    for f in ("1.hea", "1.dat"):
        shutil.copy(ludb.parent / f, tmp_path / f)
    assert read_any(tmp_path / "1").fs == 500
    _edit(tmp_path / "1", 0, r" 500 ", " nan ")  # the sed on LUDB record 1
    with pytest.raises(DataError, match="sampling frequency 'nan'"):
        read_any(tmp_path / "1")

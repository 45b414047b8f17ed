"""Fast path for plain single-file format-16 WFDB records (PTB-XL, LUDB, CinC ``.mat``).

``wfdb.rdsamp`` (wfdb 4.3 with pandas 3) spends ~35-45 ms per record in its header parser
(``pandas.DataFrame.loc`` lookups for every field of every signal line) while the signal itself
takes well under a millisecond. ``rdsamp(record)`` here returns exactly what
``wfdb.rdsamp(record)`` returns -- the same float64 ``(sig_len, n_sig)`` array, bit for bit, and
the same ``fields`` dict -- for the common case, and ``None`` for anything else, in which case
the caller uses ``wfdb.rdsamp`` (so every unusual or damaged record gets wfdb's own behaviour
and error messages).

Accepted ("plain") records, everything else -> ``None``:

* single-segment header whose record line has a sampling frequency and a signal length and no
  counter frequency / base counter; base time and date only if wfdb would parse them;
* ``n_sig >= 1`` signal lines, exactly as many as the record line says, all in one signal file
  (not ``~``), format ``16`` with at most one sample per frame, no skew, the same byte offset;
* nonzero ADC gain;
* the signal file holds exactly ``byte_offset + 2 * n_sig * sig_len`` bytes (a truncated or
  oversized file goes to the slow path, which reports it).

The header is tokenised with the same regular expressions as wfdb 4.3 (``RX_RECORD`` /
``RX_SIGNAL``; ``tests/test_datasets_fast.py`` checks they still equal wfdb's) and the same
defaults (baseline = ADC zero when absent, units ``mV``). The conversion is wfdb's ``dac``:
``(float64(d) - baseline) / gain``, NaN where ``d == -32768``.

The fast path is skipped when ``wfdb.rdsamp`` has been replaced (a test double, a profiler, a
user patch), so such a replacement still sees every read, and when ``$ECG_KERAS_FAST_WFDB`` is
``0``. wfdb itself is not imported here (importing it takes ~1.5 s).
"""
from __future__ import annotations

import datetime
import os
import re
import sys
from pathlib import Path

import numpy as np

ENV = "ECG_KERAS_FAST_WFDB"
DIGITAL_NAN_16 = -32768

# Copies of wfdb.io.header.rx_record / rx_signal (wfdb 4.3.1).
RX_RECORD = re.compile(
    r"""
    [ \t]* (?P<record_name>[-\w]+)
           /?(?P<n_seg>\d*)
    [ \t]+ (?P<n_sig>\d+)
    [ \t]* (?P<fs>\d*\.?\d*)
           /*(?P<counter_freq>-?\d*\.?\d*)
           \(?(?P<base_counter>-?\d*\.?\d*)\)?
    [ \t]* (?P<sig_len>\d*)
    [ \t]* (?P<base_time>\d{,2}:?\d{,2}:?\d{,2}\.?\d{,6})
    [ \t]* (?P<base_date>\d{,2}/?\d{,2}/?\d{,4})
    """,
    re.VERBOSE,
)
RX_SIGNAL = re.compile(
    r"""
    [ \t]* (?P<file_name>~?[-\w]*\.?[\w]*)
    [ \t]+ (?P<fmt>\d+)
           x?(?P<samps_per_frame>\d*)
           :?(?P<skew>\d*)
           \+?(?P<byte_offset>\d*)
    [ \t]* (?P<adc_gain>-?\d*\.?\d*e?[\+-]?\d*)
           \(?(?P<baseline>-?\d*)\)?
           /?(?P<units>[\w\^\-\?%\/]*)
    [ \t]* (?P<adc_res>\d*)
    [ \t]* (?P<adc_zero>-?\d*)
    [ \t]* (?P<init_value>-?\d*)
    [ \t]* (?P<checksum>-?\d*)
    [ \t]* (?P<block_size>\d*)
    [ \t]* (?P<sig_name>[\S]?[^\t\n\r\f\v]*)
    """,
    re.VERBOSE,
)


def rdsamp_replaced() -> bool:
    """True when ``wfdb.rdsamp`` is not wfdb's own function (monkeypatched, wrapped)."""
    wfdb = sys.modules.get("wfdb")
    if wfdb is None:  # not imported, so not replaced either
        return False
    original = getattr(sys.modules.get("wfdb.io.record"), "rdsamp", None)
    return original is None or getattr(wfdb, "rdsamp", None) is not original


def enabled() -> bool:
    """False when switched off by ``$ECG_KERAS_FAST_WFDB=0`` or when ``wfdb.rdsamp`` is replaced."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return not rdsamp_replaced()


def parse_header(text: str) -> dict | None:
    """Fields of a plain single-file format-16 header (see the module docstring), else None."""
    lines, comments = [], []
    for line in text.splitlines():  # wfdb.io.header.parse_header_content
        line = line.strip()
        if line.startswith("#"):
            comments.append(line)
        elif line:
            lines.append(line)
    if len(lines) < 2:
        return None
    m = RX_RECORD.match(lines[0])
    if m is None:
        return None
    r = m.groupdict()
    if r["n_seg"] or not r["fs"] or not r["sig_len"] or r["counter_freq"] or r["base_counter"]:
        return None
    try:
        n_sig, sig_len, fs = int(r["n_sig"]), int(r["sig_len"]), float(r["fs"])
        base_time = _wfdb_strptime(r["base_time"]) if r["base_time"] else None
        base_date = (datetime.datetime.strptime(r["base_date"], "%d/%m/%Y").date()
                     if r["base_date"] else None)
    except ValueError:
        return None
    if n_sig < 1 or sig_len < 1 or len(lines) != 1 + n_sig:
        return None
    if round(fs, 8) == float(int(fs)):  # wfdb casts fs to int when close
        fs = int(fs)
    file_names, offsets = set(), set()
    gain, baseline, units, sig_name = [], [], [], []
    for line in lines[1:]:
        s = RX_SIGNAL.match(line)
        if s is None:
            return None
        g = s.groupdict()
        if (g["fmt"] != "16" or g["samps_per_frame"] not in ("", "1") or g["skew"]
                or not g["file_name"] or g["file_name"].startswith("~") or not g["adc_gain"]):
            return None
        try:
            a = float(g["adc_gain"])
            if g["baseline"]:
                b = int(g["baseline"])
            else:
                b = int(g["adc_zero"]) if g["adc_zero"] else 0
            offset = int(g["byte_offset"]) if g["byte_offset"] else 0
            for field in ("adc_res", "adc_zero", "init_value", "checksum", "block_size"):
                if g[field]:
                    int(g[field])  # wfdb int()s these; an invalid one goes to wfdb
        except ValueError:
            return None
        if a == 0 or not np.isfinite(a):
            return None
        file_names.add(g["file_name"])
        offsets.add(offset)
        gain.append(a)
        baseline.append(b)
        units.append(g["units"] or "mV")
        sig_name.append(g["sig_name"])
    if len(file_names) != 1 or len(offsets) != 1:
        return None
    return {"file_name": file_names.pop(), "byte_offset": offsets.pop(), "n_sig": n_sig, "sig_len": sig_len,
            "fs": fs, "base_time": base_time, "base_date": base_date, "adc_gain": gain,
            "baseline": baseline, "units": units, "sig_name": sig_name,
            "comments": [c.strip(" \t#") for c in comments]}


def _wfdb_strptime(time_string: str) -> datetime.time:
    """wfdb.io.header.wfdb_strptime."""
    n_colons = time_string.count(":")
    fmt = {0: "%S", 1: "%M:%S", 2: "%H:%M:%S"}.get(n_colons)
    if fmt is None:
        raise ValueError(time_string)
    if "." in time_string:
        fmt += ".%f"
    return datetime.datetime.strptime(time_string, fmt).time()


def rdsamp(record: Path | str) -> tuple[np.ndarray, dict] | None:
    """``wfdb.rdsamp(record)`` for a plain record (identical result), else ``None``.

    Never raises for a damaged or unusual record (missing, unreadable, truncated or oversized
    files give ``None``), so the caller's wfdb fallback reports the problem.
    """
    record = str(record)
    try:
        with open(f"{record}.hea", "rb") as f:
            text = f.read().decode("ascii", errors="ignore")  # as wfdb.rdheader reads it
    except OSError:
        return None
    header = parse_header(text)
    if header is None:
        return None
    n_sig, sig_len = header["n_sig"], header["sig_len"]
    dat = os.path.join(os.path.dirname(record), header["file_name"])
    count = n_sig * sig_len
    try:
        with open(dat, "rb") as f:
            if os.fstat(f.fileno()).st_size != header["byte_offset"] + 2 * count:
                return None
            f.seek(header["byte_offset"])
            raw = f.read(2 * count)
    except OSError:
        return None
    if len(raw) != 2 * count:
        return None
    d = np.frombuffer(raw, dtype="<i2").reshape(sig_len, n_sig)
    sig = d.astype(np.float64)
    np.subtract(sig, np.asarray(header["baseline"], dtype=np.int64), sig)
    np.divide(sig, np.asarray(header["adc_gain"], dtype=np.float64), sig)
    nan = d == DIGITAL_NAN_16
    if nan.any():
        sig[nan] = np.nan
    fields = {key: header[key] for key in ("fs", "sig_len", "n_sig", "base_date", "base_time", "units",
                                           "sig_name", "comments")}
    return sig, fields

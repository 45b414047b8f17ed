"""One ECG record from a file, in mV with named leads, checked, at the model's rate and lead order.

Readers (every problem is a :class:`~ecg_keras.datasets.base.DataError` naming the file):

* WFDB: ``NAME.hea`` (+ its signal files; ``.dat`` or CinC ``.mat``), given as ``NAME``,
  ``NAME.hea`` or the signal file. Sampling rate, lead names and units (mV, uV, V) come from
  the header (read by ``ecg_keras.datasets.wfdb_io``: the fast format-16 reader, else wfdb).
* CPSC 2018 / ICBEB ``.mat`` (struct ``ECG`` with ``data`` 12 x N in mV, 500 Hz, standard
  lead order), read by ``ecg_keras.datasets.icbeb.read_cpsc_mat``.
* ``.npy``: a (samples, leads) array (a (leads, samples) one is transposed); needs ``fs``.
* ``.csv``: one column per lead, one row per sample. A header row names the leads; a ``time``
  column (seconds) gives the sampling rate when ``fs`` is not passed and is otherwise dropped.

``.npy`` and ``.csv`` are in ``units`` (default mV). Files that cannot name their leads are taken
in the standard order I, II, III, aVR, aVL, aVF, V1-V6 (``Record.notes`` says so) unless
``leads`` is passed.

Checks before a model sees a record (:func:`check_signal`, the one signal check of the package:
:func:`ecg_keras.windows.check_signals` applies it to every record given to ``predict_records``
and the LiteRT runner): every lead finite (NaN/Inf come from lead-off and damaged files), no flat
lead (peak-to-peak below ``FLAT_MV`` over the whole record: a disconnected or zeroed lead),
amplitudes below ``MAX_MV`` (larger values mean wrong units).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.io.base import LEAD_NAMES, DataError
from ecg_keras.io.base import UNITS, Record  # noqa: F401  (re-exported)
from ecg_keras.io.base import check_fs as _check_fs
from ecg_keras.io.base import scale as _scale
from ecg_keras.io.formats import SUFFIXES as FORMAT_SUFFIXES
from ecg_keras.io.formats import FORMATS, read_format, sniff
from ecg_keras.io.leads import canonical, complete, describe, normal

FLAT_MV = 0.01  # a lead whose peak-to-peak amplitude over the record is below 10 uV is flat
MAX_MV = 100.0  # |x| above this is not an ECG in mV (wrong units or corrupt data)
CPSC_RATE = 500
TIME_COLUMNS = ("time", "t", "time_s", "seconds", "sec", "s")
INDEX_COLUMNS = ("sample", "index", "unnamed: 0", "")
SUFFIXES = (".hea", ".mat", ".npy", ".csv")
#: Every suffix that only says how a record is stored (this module's and the hospital formats'):
#: dropped when a record's name becomes a file name.
NAME_SUFFIXES = SUFFIXES + FORMAT_SUFFIXES


# --------------------------------------------------------------------------- finding records
def _kind(path: Path) -> tuple[str, Path]:
    """("wfdb" | "cpsc" | "npy" | "csv", path to read) of a record argument."""
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return "wfdb", path.with_suffix("")
    if Path(f"{path}.hea").is_file():
        return "wfdb", path
    if suffix in (".dat", ".mat") and path.with_suffix(".hea").is_file():
        return "wfdb", path.with_suffix("")
    if not path.exists():
        raise DataError(f"{path}: no such record (no file, and no WFDB header {path}.hea)")
    fmt = sniff(path) if path.is_file() else None
    if fmt is not None:
        return fmt, path
    if suffix == ".mat":
        return "cpsc", path
    if suffix in (".npy", ".csv"):
        return suffix[1:], path
    raise DataError(f"{path}: unknown record format (expected a WFDB record, .mat, .npy, .csv or "
                    f"{', '.join(d for d, _ in FORMATS.values())})")


def find_records(paths: Sequence[str | Path]) -> list[Path]:
    """The records named by ``paths``; a folder stands for every record below it (in natural order).

    In a folder a ``.mat`` or ``.dat`` next to a ``.hea`` of the same name belongs to that WFDB
    record; DICOM, EDF, ISHNE and SCP files are also found by content whatever their names. A path that is neither a folder nor a record gives a DataError.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for f in sorted(p.rglob("*"), key=_natural):
                s = f.suffix.lower()
                if not f.is_file() or not (s in NAME_SUFFIXES or _binary_export(f)):
                    continue
                if s == ".mat" and f.with_suffix(".hea").is_file():
                    continue
                found.append(f)
            if not found:
                kinds = ", ".join("*" + x for x in NAME_SUFFIXES)
                raise DataError(f"{p}: no records ({kinds}) in this folder")
            out += found
        else:
            _kind(p)
            out.append(p)
    return out


def _binary_export(path: Path) -> bool:
    """A DICOM, EDF, ISHNE or SCP file under another name (PACS exports are often named by UID);
    not a WFDB signal file. XML files are only taken with their suffix (a folder's .html is not one)."""
    return not path.with_suffix(".hea").is_file() and sniff(path) in ("dicom", "edf", "ishne", "scp")


def _natural(path: Path) -> list:
    """Sort key: digit runs compare as numbers (data/2 before data/10)."""
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.as_posix())]


def record_name(path: Path) -> str:
    """Display name: the path without the WFDB suffixes (``data/1`` for ``data/1.hea``)."""
    kind, p = _kind(path)
    return str(p) if kind == "wfdb" else str(path)


# --------------------------------------------------------------------------- readers
def read_any(path: str | Path, fs: float | None = None, leads: Sequence[str] | None = None,
             units: str = "mV") -> Record:
    """Read one record (see the module docstring). ``fs``/``leads``/``units`` apply to files
    that cannot say (``.npy``, ``.csv``); for WFDB and ``.mat`` a different ``fs`` is an error."""
    path = Path(path)
    kind, p = _kind(path)
    try:
        if kind == "wfdb":
            rec = _read_wfdb(p)
        elif kind == "cpsc":
            rec = _read_cpsc(p)
        elif kind == "npy":
            rec = _read_npy(p, fs, leads, units)
        elif kind == "csv":
            rec = _read_csv(p, fs, leads, units)
        else:
            rec = read_format(p, kind)
    except DataError:
        raise
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # noqa: BLE001 - any other failure of a third-party parser
        raise DataError(f"{p}: cannot read ({type(e).__name__}: {e})") from None
    if fs is not None and kind not in ("npy", "csv") and not math.isclose(float(fs), rec.fs):
        raise DataError(f"{p}: the file says {rec.fs:g} Hz but --fs {float(fs):g} was given")
    if leads is not None and kind not in ("npy", "csv"):
        rec.notes.append("--leads ignored: the file names its leads")
    return rec


def _as_2d(sig, where) -> np.ndarray:
    try:
        sig = np.asarray(sig, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the signal is not numeric") from None
    if sig.ndim != 2 or sig.shape[0] == 0 or sig.shape[1] == 0:
        raise DataError(f"{where}: signal of shape {sig.shape}, expected (samples, leads)")
    return sig


def _read_wfdb(record: Path) -> Record:
    from ecg_keras.datasets.wfdb_io import check_header, header_path, rdsamp

    hea = header_path(record)
    header = check_header(record)  # fs, gain, length, lead count from the text, before wfdb's defaults
    sig, fields = rdsamp(record, hea)
    if not isinstance(fields, dict):
        raise DataError(f"{hea}: not a WFDB header")
    sig = _as_2d(sig, hea)
    fs = _check_fs(fields.get("fs"), hea)
    names = [str(n).strip() for n in (fields.get("sig_name") or [])]
    if len(names) != sig.shape[1]:
        raise DataError(f"{hea}: {len(names)} lead names for {sig.shape[1]} signals")
    units = list(fields.get("units") or ["mV"] * len(names))
    if len(units) != len(names):
        raise DataError(f"{hea}: {len(units)} units for {len(names)} leads")
    scale = np.array([_scale(u, hea, n) for u, n in zip(units, names)])
    if sig.shape[1] != header["n_sig"] or not math.isclose(fs, header["fs"]):
        raise DataError(f"{hea}: read {sig.shape[1]} signals at {fs:g} Hz but the header states {header['n_sig']} at "
                        f"{header['fs']:g} Hz")
    return Record(str(record), hea, sig * scale, fs, names, list(header["notes"]))


def _read_cpsc(path: Path) -> Record:
    from ecg_keras.datasets.icbeb import read_cpsc_mat

    sig, _, _ = read_cpsc_mat(path, check=False)  # check_signal names the lead and time instead
    return Record(str(path), path, _as_2d(sig, path), float(CPSC_RATE), list(LEAD_NAMES))


def _oriented(arr: np.ndarray, n_leads: int, where) -> np.ndarray:
    if arr.shape[1] != n_leads and arr.shape[0] == n_leads:
        return arr.T
    if arr.shape[1] != n_leads:
        raise DataError(f"{where}: {arr.shape[1]} columns but {n_leads} leads "
                        f"({'--leads' if n_leads != 12 else 'the standard 12'})")
    return arr


def _file_leads(leads, n_columns: int, where, notes: list) -> list[str]:
    if leads is not None:
        return [str(x).strip() for x in leads]
    if n_columns in (12,):
        notes.append("lead order not stated in the file: assumed I, II, III, aVR, aVL, aVF, V1-V6 "
                     "(pass --leads to state it)")
        return list(LEAD_NAMES)
    raise DataError(f"{where}: {n_columns} columns and no lead names; pass --leads")


def npy_header(path: Path) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from a ``.npy`` header, checked against the file's size before any data is
    read: a header claiming more data than the file holds (e.g. shape (10**12, 12)) is a DataError."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
            shape, _, dtype = read(f) if read else npy._read_array_header(f, version)
            data_bytes = os.fstat(f.fileno()).st_size - f.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise DataError(f"{path}: not a readable .npy array ({type(e).__name__}: {e})") from None
    if dtype.hasobject or dtype.kind not in "iuf":  # bool is a mask, not mV; complex/str/object no signal
        raise DataError(f"{path}: array of dtype {dtype}, expected integer or floating-point samples")
    need = math.prod(shape) * dtype.itemsize
    if need > data_bytes:
        raise DataError(f"{path}: the .npy header claims shape {shape} ({need} bytes of {dtype}) but the file holds "
                        f"{data_bytes} bytes of data (truncated or damaged)")
    return shape, dtype


def _read_npy(path: Path, fs, leads, units) -> Record:
    npy_header(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array ({type(e).__name__}: {e})") from None
    arr = _as_2d(arr, path)
    if fs is None:
        raise DataError(f"{path}: a .npy file does not store its sampling rate; pass --fs HZ")
    notes: list[str] = []
    n = len(leads) if leads is not None else (12 if 12 in arr.shape else arr.shape[1])
    arr = _oriented(arr, n, path)
    names = _file_leads(leads, arr.shape[1], path, notes)
    return Record(str(path), path, arr * _scale(units, path, "all"), _check_fs(fs, path), names, notes)


def _is_number(text) -> bool:
    try:
        float(str(text))
        return True
    except ValueError:
        return False


def _read_csv(path: Path, fs, leads, units) -> Record:
    import pandas as pd

    sep, n_columns = _delimiter(path)
    try:
        if n_columns > WIDE_COLUMNS:  # e.g. leads as rows: pandas' parser is quadratic-ish in columns
            table, header = _read_wide_csv(path, sep)
        else:
            table = pd.read_csv(path, sep=sep)
            header = not all(_is_number(c) for c in table.columns)
            if not header:
                table = pd.read_csv(path, sep=sep, header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, csv_error()) as e:
        raise DataError(f"{path}: not a readable CSV table ({type(e).__name__}: {e})") from None
    notes: list[str] = []
    cols = [str(c).strip() for c in table.columns]
    time = None
    keep = []
    for c, raw in zip(cols, table.columns):
        low = c.lower()
        if header and low in TIME_COLUMNS:
            time = pd.to_numeric(table[raw], errors="coerce").to_numpy(float)
        elif header and (low in INDEX_COLUMNS or low.startswith("unnamed:")):
            continue
        else:
            keep.append((c, raw))
    if not keep or len(table) == 0:
        raise DataError(f"{path}: no signal columns")
    values = _numeric_block(table.iloc[:, [table.columns.get_loc(raw) for _, raw in keep]], path, header,
                            [c for c, _ in keep])
    if fs is None and time is not None and len(time) > 1:
        steps = np.diff(time)
        if np.all(np.isfinite(steps)) and np.median(steps) > 0:
            fs = 1.0 / float(np.median(steps))
            notes.append(f"sampling rate {fs:g} Hz from the time column")
    if fs is None:
        raise DataError(f"{path}: the CSV has no time column; pass --fs HZ")
    if header and leads is None:
        names = [c for c, _ in keep]
    else:
        names = _file_leads(leads, values.shape[1], path, notes)
        if len(names) != values.shape[1]:
            values = _oriented(values, len(names), path)
    if len(names) != values.shape[1]:
        raise DataError(f"{path}: {values.shape[1]} signal columns but {len(names)} lead names")
    return Record(str(path), path, values * _scale(units, path, "all"), _check_fs(fs, path), names, notes)


_WRITTEN_NONFINITE = ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _numeric_block(block, path: Path, header: bool, names: list[str]) -> np.ndarray:
    """(rows, columns) float64 of a CSV table, in time linear in its size: columns pandas already
    parsed as numbers are taken as they are, all the others converted in ONE pandas call (a
    per-column loop took minutes on a 100,000-column file). Empty cells and written NaN/Inf stay
    NaN/Inf (check_signal names the lead); any other text is a DataError naming row and column."""
    import pandas as pd

    kinds = np.array([dt.kind for dt in block.dtypes])
    values = np.empty(block.shape)
    numeric = np.flatnonzero(np.isin(kinds, list("biuf")))
    if len(numeric):
        values[:, numeric] = block.iloc[:, numeric].to_numpy(dtype=float)
    other = np.flatnonzero(~np.isin(kinds, list("biuf")))
    if len(other):
        cells = block.iloc[:, other].to_numpy(dtype=object)
        flat = pd.Series(cells.ravel())
        number = pd.to_numeric(flat, errors="coerce")
        suspect = number.isna() & flat.notna()
        if suspect.any():
            text = flat[suspect].astype(str).str.strip().str.lower()
            bad = text.index[~text.isin(_WRITTEN_NONFINITE)]
            if len(bad):
                row, j = divmod(int(bad[0]), len(other))
                raise DataError(f"{path}: row {row + 1 + header}, column {names[other[j]]!r}: {flat[bad[0]]!r} is "
                                "not a number")
            number[suspect] = pd.to_numeric(text.str.replace("infinity", "inf"), errors="coerce")
        values[:, other] = number.to_numpy(dtype=float).reshape(cells.shape)
    return values


#: A CSV with more columns than this (in its first line) is parsed row-wise by :func:`_read_wide_csv`.
WIDE_COLUMNS = 1000


def _read_wide_csv(path: Path, sep: str):
    """(table as ONE object block, has a header row) of a wide CSV, in time linear in its size."""
    import csv

    import pandas as pd

    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f, delimiter=sep) if any(cell.strip() for cell in r)]
    if not rows:
        raise pd.errors.EmptyDataError("no data")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        bad = next(i for i, r in enumerate(rows) if len(r) != width)
        raise pd.errors.ParserError(f"row {bad + 1} has {len(rows[bad])} fields, the first row {width}")
    header = not all(_is_number(c) for c in rows[0])
    cells = np.array(rows[1:] if header else rows, dtype=object).reshape(-1, width)
    cells[cells == ""] = None
    return pd.DataFrame(cells, columns=rows[0] if header else None, dtype=object), header


def _delimiter(path: Path) -> tuple[str, int]:
    """(separator, number of fields) of the first line: tab, semicolon or comma (the default)."""
    with open(path, "rb") as f:
        first = f.readline()
    for sep in (b"\t", b";"):
        if sep in first and b"," not in first:
            return sep.decode(), first.count(sep) + 1
    return ",", first.count(b",") + 1


def csv_error():
    import csv

    return csv.Error


# --------------------------------------------------------------------------- leads and checks
def _normal(name: str) -> str:
    return canonical(name) or normal(name)


def match_leads(names: Sequence[str], where, wanted: Sequence[str] = LEAD_NAMES) -> list[int]:
    """Column of each ``wanted`` lead in a file whose leads are ``names`` (case-insensitive; aVR,
    AVR, avr, "lead II", D2 ...). Missing or duplicate leads give a DataError naming them."""
    normal = [_normal(n) for n in names]
    dup = sorted({names[i] for i, n in enumerate(normal) if normal.count(n) > 1})
    if dup:
        raise DataError(f"{where}: lead names appear twice: {dup}")
    index = []
    missing = []
    for lead in wanted:
        key = _normal(lead)
        if key in normal:
            index.append(normal.index(key))
        else:
            missing.append(lead)
    if missing:
        raise DataError(f"{where}: cannot match the leads {missing} the model needs; the file has "
                        f"{list(names)}")
    return index


def lead_name(index: int, n_leads: int) -> str:
    """``V2`` for index 7 of 12 leads; ``lead 3`` when the record is not a standard 12-lead one."""
    return LEAD_NAMES[index] if n_leads == len(LEAD_NAMES) else f"lead {index}"


def check_signal(signal: np.ndarray, fs: float | None, where, leads: Sequence[str] | None = None, *,
                 flat_is_error: bool = True, min_ptp: float | None = FLAT_MV, max_mv: float | None = MAX_MV,
                 max_length: int | None = None) -> str | None:
    """The one check of a (samples, leads) signal in mV before a model sees it.

    Every problem is a DataError starting with ``where`` (the file, or "record 3") and naming the
    leads (``leads``, default the standard names of a 12-lead record, else "lead j"):

    * non-finite samples (NaN/Inf: lead-off, damaged files): always refused, with the number of
      such samples and the first one (in seconds too when ``fs`` is given);
    * a flat lead: peak-to-peak below ``min_ptp`` mV over the record (default :data:`FLAT_MV`: a
      file read for prediction), or, with ``min_ptp=None``, exactly constant (the rule of the
      exported graphs, :mod:`ecg_keras.export.signatures`). Refused with ``flat_is_error``; else
      the message is returned for the caller to warn about or collect
      (:func:`ecg_keras.windows.check_signals`);
    * a value beyond ``max_mv`` (default :data:`MAX_MV`; None: no limit): wrong units;
    * more than ``max_length`` samples (None: no limit).

    Returns the flat-lead message, or None.
    """
    x = np.asarray(signal)
    if x.ndim != 2:
        raise DataError(f"{where}: expected (length, leads), got shape {x.shape}")
    names = list(leads) if leads is not None else [lead_name(j, x.shape[1]) for j in range(x.shape[1])]
    if max_length is not None and len(x) > max_length:
        raise DataError(f"{where}: {len(x)} samples exceed the maximum record length of {max_length} "
                        "samples (max_record_seconds); split the record or raise the limit")
    finite = np.isfinite(x)
    if not finite.all():
        bad = ~finite
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        seconds = f" ({first / fs:.3f} s)" if fs else ""
        raise DataError(f"{where}: non-finite samples (NaN/Inf) in lead(s) "
                        f"{', '.join(names[j] for j in np.flatnonzero(bad.any(axis=0)))}; {int(bad.sum())} sample(s), "
                        f"the first at sample {first}{seconds}; the models do not answer such input "
                        "(lead-off or a corrupted file?)")
    if not len(x):
        return None
    ptp = x.max(axis=0) - x.min(axis=0)
    flat = ptp == 0 if min_ptp is None else ptp < min_ptp
    message = None
    if flat.any():
        why = ("constant signal" if min_ptp is None else f"peak-to-peak below {min_ptp:g} mV"
               + (f" over {len(x) / fs:.1f} s" if fs else ""))
        message = f"{where}: flat line ({why}) in lead(s) {', '.join(names[j] for j in np.flatnonzero(flat))}"
        if flat_is_error:
            raise DataError(f"{message}: lead-off or a missing lead")
    if max_mv is not None:
        peaks = np.abs(x).max(axis=0)
        if peaks.max() > max_mv:
            j = int(peaks.argmax())
            raise DataError(f"{where}: lead {names[j]} reaches {float(peaks[j]):.4g} mV (> {max_mv:g} mV): wrong units "
                            "(pass --units uV?) or corrupt data")
    return message


def to_model_input(record: Record, sampling_rate: int, wanted: Sequence[str] = LEAD_NAMES, *,
                   fill_missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(model input (samples at ``sampling_rate``, leads) float32, the checked signal at the
    file's rate in model lead order (for plots)). Leads matched by name, missing limb leads
    derived, other missing leads refused or (``fill_missing``) zero-filled
    (:func:`ecg_keras.io.leads.complete`; ``record.lead_note`` says which), then checked, then
    resampled (polyphase, ``ecg_keras.datasets.wfdb_io.resample``)."""
    from ecg_keras.datasets.wfdb_io import resample

    native, derived, filled = complete(record.signal, record.leads, record.name, wanted, fill_missing=fill_missing)
    record.lead_note = describe(derived, filled)
    keep = [j for j, lead in enumerate(wanted) if lead not in filled]
    check_signal(native[:, keep], record.fs, record.name, [wanted[j] for j in keep])
    x = resample(native, record.fs, sampling_rate, record.name)
    if len(x) == 0:
        raise DataError(f"{record.name}: too short to resample to {sampling_rate} Hz")
    return np.asarray(x, dtype=np.float32), native

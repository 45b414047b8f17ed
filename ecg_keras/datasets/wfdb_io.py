"""WFDB record I/O shared by every reader (PTB-XL, ICBEB2018, generic folders, LUDB, predict).

``read_record`` is the one place where a WFDB record becomes a float32 (length, 12) array in
mV, lead order ``LEADS``; every problem (missing or corrupt header or signal file, wrong lead
count or order, wrong sampling rate, unknown units, NaNs) becomes a ``DataError`` naming the
file. ``load_record_signals`` reads many records through the signal cache (``datasets.cache``),
in parallel or from an existing native-rate cache entry; ``resample`` is the polyphase resampler.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.datasets import cache, fastwfdb
from ecg_keras.datasets.base import LEADS, DataError


# --------------------------------------------------------------------------- record reading
def header_path(record: Path | str) -> Path:
    return Path(f"{record}.hea")


def _header_lines(record: Path | str) -> tuple[Path, list[str], list[str]]:
    """(header path, all lines, non-comment lines) of a WFDB header; missing header -> DataError."""
    hea = header_path(record)
    try:
        lines = hea.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        raise DataError(f"{hea}: WFDB header file is missing") from None
    return hea, lines, [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


#: Sampling rates an ECG record may state (Hz): below 50 Hz no QRS complex is resolved.
MIN_FS, MAX_FS = 50.0, 100_000.0
MAX_SIGNALS = 64
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_GAIN = re.compile(rf"^({_NUMBER})(?:\(([-+]?\d+)\))?(?:/(\S+))?$")


def check_header(record: Path | str) -> dict:
    """The record and signal lines of a WFDB header, validated from the text itself (before wfdb
    substitutes its defaults: 250 Hz for a missing or unparsable rate, 200 adu/mV for gain 0).

    Returns ``{"fs", "n_sig", "sig_len" (None if absent), "gains", "notes"}``; a rate, length,
    signal count or gain that does not parse, is not finite, or is implausible (rate outside
    [:data:`MIN_FS`, :data:`MAX_FS`] Hz, gain <= 0) is a DataError naming the header and field.
    """
    hea, _, body = _header_lines(record)
    if not body:
        raise DataError(f"{hea}: empty or truncated WFDB header")
    parts = body[0].split()
    if len(parts) < 2:
        raise DataError(f"{hea}: WFDB record line {body[0]!r} lacks the number of signals")
    multi = "/" in parts[0]  # a multi-segment header: its lines name segments, not signals
    try:
        n_sig = int(parts[1])
    except ValueError:
        raise DataError(f"{hea}: number of signals {parts[1]!r} is not an integer") from None
    if not 1 <= n_sig <= MAX_SIGNALS:
        raise DataError(f"{hea}: {n_sig} signals (expected 1 to {MAX_SIGNALS})")
    if len(parts) < 3:
        raise DataError(f"{hea}: the record line {body[0]!r} states no sampling frequency (wfdb would assume "
                        "250 Hz)")
    text = parts[2].split("/")[0].split("(")[0]
    try:
        fs = float(text)
    except ValueError:
        fs = None
    if fs is None or not re.fullmatch(_NUMBER, text) or not MIN_FS <= fs <= MAX_FS:
        raise DataError(f"{hea}: sampling frequency {parts[2]!r} is not a plausible ECG rate (a number of Hz "
                        f"from {MIN_FS:g} to {MAX_FS:g})")
    sig_len = None
    if len(parts) > 3:
        if not re.fullmatch(r"\d+", parts[3]):
            raise DataError(f"{hea}: number of samples {parts[3]!r} is not a non-negative integer")
        sig_len = int(parts[3])
    gains, notes = [], []
    if not multi:
        lines = body[1:1 + n_sig]
        if len(lines) != n_sig:
            raise DataError(f"{hea}: the record line announces {n_sig} signals but {len(lines)} signal line(s) follow")
        for i, line in enumerate(lines):
            fields = line.split()
            if len(fields) < 3:
                gains.append(None)
                continue
            m = _GAIN.match(fields[2])
            gain = float(m.group(1)) if m else float("nan")
            if not m or not math.isfinite(gain) or gain <= 0:
                raise DataError(f"{hea}: signal {i + 1} ({fields[-1] if len(fields) > 8 else fields[0]}) has gain "
                                f"{fields[2]!r}; expected a positive number of ADC units per physical unit")
            gains.append(gain)
        if None in gains:
            notes.append(f"{hea}: gain not stated for some signals; the WFDB default 200 adu/mV is used")
    return {"fs": fs, "n_sig": n_sig, "sig_len": sig_len, "gains": gains, "notes": notes}


def read_header_text(record: Path | str) -> dict:
    """Cheap text parse of a WFDB header (no wfdb call): fs, length, comments, Dx/Age/Sex."""
    hea, lines, body = _header_lines(record)
    if not body:
        raise DataError(f"{hea}: empty or truncated WFDB header")
    parts = body[0].split()
    info: dict = {"fs": None, "sig_len": None, "comments": []}
    try:
        if len(parts) > 2:
            info["fs"] = float(parts[2].split("/")[0].split("(")[0])
        if len(parts) > 3:
            info["sig_len"] = int(parts[3])
    except ValueError:
        raise DataError(f"{hea}: invalid WFDB record line {body[0]!r}") from None
    if info["fs"] is None or not math.isfinite(info["fs"]) or info["fs"] <= 0:
        raise DataError(f"{hea}: WFDB record line {body[0]!r} has no valid sampling frequency")
    for ln in lines:
        s = ln.strip()
        if s.startswith("#"):
            info["comments"].append(s.lstrip("#").strip())
    for c in info["comments"]:
        key, _, value = c.partition(":")
        key = key.strip().lower()
        if key == "dx":
            info["dx"] = [v.strip() for v in value.split(",") if v.strip()]
        elif key == "age":
            info["age"] = to_float(value)
        elif key == "sex":
            info["sex"] = sex_code(value)
    return info


def read_record(record: Path | str, expected_fs: float | None = None,
                target_fs: int | None = None) -> np.ndarray:
    """One WFDB record as float32 (length, 12) in mV, lead order ``LEADS``.

    ``expected_fs``: the header's sampling frequency must equal it (DataError otherwise).
    ``target_fs``: resample (polyphase) from the header's rate to this rate.
    """
    hea = header_path(record)
    if not hea.exists():
        raise DataError(f"{hea}: WFDB header file is missing")
    check_header(record)
    sig, fields = rdsamp(record, hea)
    names = [str(s).upper() for s in fields.get("sig_name") or []]
    if len(names) != len(LEADS):
        raise DataError(f"{hea}: {len(names)} leads {names}, expected 12 leads {list(LEADS)}")
    if tuple(names) != LEADS:
        raise DataError(f"{hea}: lead order {names} differs from the expected {list(LEADS)}")
    try:
        fs = float(fields["fs"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{hea}: no valid sampling frequency in the header") from None
    if not math.isfinite(fs) or fs <= 0:
        raise DataError(f"{hea}: invalid sampling frequency {fs:g} Hz")
    if expected_fs is not None and not math.isclose(fs, float(expected_fs)):
        raise DataError(f"{hea}: sampling frequency {fs:g} Hz, expected {float(expected_fs):g} Hz")
    sig = np.asarray(sig, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[1] != 12 or sig.shape[0] == 0:
        raise DataError(f"{hea}: signal of shape {sig.shape}, expected (length, 12)")
    scale = []
    for lead, unit in zip(names, fields.get("units") or ["mV"] * 12):
        u = str(unit).strip().lower()
        if u == "mv":
            scale.append(1.0)
        elif u in ("uv", "µv", "μv"):
            scale.append(1e-3)
        elif u == "v":
            scale.append(1e3)
        else:
            raise DataError(f"{hea}: lead {lead} has unit {unit!r}, expected mV")
    sig = sig * np.asarray(scale)
    check_finite(sig, hea)
    if target_fs is not None:
        sig = resample(sig, fs, target_fs, hea)
    with np.errstate(over="ignore"):
        out = sig.astype(np.float32)
    check_finite(out, hea)  # values beyond float32 (a damaged gain) would become inf
    return out


def rdsamp(record: Path | str, hea: Path) -> tuple[np.ndarray, dict]:
    """``wfdb.rdsamp(record)``: the fast reader for plain format-16 records (same result, see
    ``fastwfdb``), wfdb for everything else, with DataErrors naming the header."""
    if fastwfdb.enabled():
        fast = fastwfdb.rdsamp(record)
        if fast is not None:
            return fast
    import wfdb

    _check_signal_size(hea)
    try:
        return wfdb.rdsamp(str(record))
    except Exception as e:  # wfdb raises many types for bad files
        raise DataError(f"{hea}: cannot read WFDB record ({type(e).__name__}: {e})") from None


def _check_signal_size(hea: Path) -> None:
    """Clear message for a truncated/oversized format-16 ``.dat`` (the common PhysioNet case)."""
    try:
        lines = [ln.split() for ln in hea.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        n_sig, sig_len = int(lines[0][1]), int(lines[0][3])
        files = {ln[0] for ln in lines[1:1 + n_sig]}
        formats = {ln[1] for ln in lines[1:1 + n_sig]}
    except (IndexError, ValueError):
        return  # wfdb reports malformed headers
    if len(files) != 1 or formats != {"16"} or not next(iter(files)).endswith(".dat"):
        return
    dat = hea.parent / next(iter(files))
    if dat.is_file() and dat.stat().st_size != sig_len * n_sig * 2:
        raise DataError(f"{dat}: truncated or damaged signal file: {dat.stat().st_size} bytes, "
                        f"{hea.name} expects {sig_len} samples x {n_sig} signals x 2 bytes = {sig_len * n_sig * 2}")


def check_finite(sig: np.ndarray, where) -> None:
    bad = ~np.isfinite(sig)
    if bad.any():
        leads = [LEADS[j] for j in np.flatnonzero(bad.any(axis=0))] if sig.shape[1] == 12 else []
        raise DataError(f"{where}: {int(bad.sum())} NaN/inf samples in the signal (leads {leads})")


def resample(sig: np.ndarray, fs: float, target_fs: float, where="signal") -> np.ndarray:
    """Polyphase resampling along time (axis 0); exact for integer rate ratios like 500 -> 100."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    if math.isclose(fs, target_fs):
        return sig
    ratio = Fraction(float(target_fs) / float(fs)).limit_denominator(1000)
    if ratio <= 0:
        raise DataError(f"{where}: cannot resample from {fs:g} Hz to {target_fs} Hz")
    return resample_poly(sig, ratio.numerator, ratio.denominator, axis=0)


def to_float(value) -> float:
    try:
        return float(str(value).strip().lstrip(">").strip())
    except ValueError:
        return float("nan")


def sex_code(value) -> float:
    """0 male, 1 female (PTB-XL convention), NaN unknown."""
    v = str(value).strip().lower()
    if v in ("m", "male", "0"):
        return 0.0
    if v in ("f", "female", "1"):
        return 1.0
    return float("nan")


def require_dir(root: Path | str, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: {what} folder not found")
    return root


def iter_records(records: Sequence[str], expected_fs: float | None = None, target_fs: int | None = None):
    """``read_record`` for each of ``records``, in order, lazily (one worker process's chunk)."""
    for r in records:
        yield read_record(r, expected_fs, target_fs)


def load_record_signals(dataset: str, root: Path, records: Sequence[Path], *, expected_fs: float | None,
                        target_fs: int | None, cache_dir, fixed_length: bool | None,
                        signal_files: Sequence[Path] | None = None, extra_key: str = "",
                        n_jobs: int | None = 1):
    """Signals of WFDB ``records`` (paths without suffix), through the cache.

    When resampling (``target_fs`` != ``expected_fs``) and the native-rate signals are already
    cached, they are resampled from that cache entry without reading WFDB again. A cold read of
    at least ``cache.PARALLEL_MIN_RECORDS`` records uses ``n_jobs`` worker processes (None =
    the usable CPU count, 1 = serial); the result does not depend on ``n_jobs``.
    """
    records = list(records)
    if signal_files is None:
        signal_files = [header_path(r) for r in records] + _signal_files(records)
    rate = target_fs if target_fs is not None else int(round(expected_fs or 0))
    caching = cache.resolve_cache_dir(cache_dir) is not None
    key = cache.make_key(dataset, rate, signal_files, root, extra_key) if caching else None
    names = [str(header_path(r)) for r in records]

    def read_wfdb(i):
        return read_record(records[i], expected_fs, target_fs)

    read = read_wfdb
    paths = [str(r) for r in records]

    def read_chunk(start: int, stop: int) -> tuple:
        return iter_records, (paths[start:stop], expected_fs, target_fs)

    # a replaced wfdb.rdsamp lives in this process only: read serially here
    job = None if fastwfdb.rdsamp_replaced() else read_chunk

    if caching and target_fs is not None and expected_fs is not None and not math.isclose(target_fs, expected_fs):
        # Resample from an existing native-rate entry instead of parsing WFDB again.
        native_key = cache.make_key(dataset, int(round(expected_fs)), signal_files, root, extra_key)
        native = cache.open_cached(native_key, cache_dir, len(records))
        if native is not None:
            def read_native(i):
                return resample(np.asarray(native[i], np.float64), expected_fs, target_fs, names[i]).astype(np.float32)

            read, job = read_native, None

    return cache.load_signals(read, len(records), key=key, cache_dir=cache_dir, fixed_length=fixed_length,
                              desc=f"reading {dataset}", names=names, job=job, n_jobs=n_jobs)


_SIGNAL_LINE = re.compile(r"^\s*(\S+)\s")


def _signal_files(records: Sequence[Path]) -> list[Path]:
    """Signal files named in each header (for the cache key); missing header -> DataError."""
    files = []
    for r in records:
        hea, _, body = _header_lines(r)
        seen = set()
        for ln in body[1:]:
            m = _SIGNAL_LINE.match(ln)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                files.append(hea.parent / m.group(1))
    return files

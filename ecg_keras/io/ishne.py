"""ISHNE Holter (ISHNE standard output format, version 1.0; Badilini et al., Ann Noninvasive
Electrocardiol 1998): an 8-byte magic ``ISHNE1.0``, a 2-byte CRC, a 512-byte fixed header, a
variable block, then int16 samples interleaved by lead, each lead with its resolution in nV.

Hand-written (about 60 lines): no maintained Python package reads ISHNE, and the format is a
fixed binary header; :class:`IshneStream` reads a sample range with one seek and read, so a 24-h
Holter is read in chunks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_keras.io.base import DataError
from ecg_keras.io.base import Record, check_fs

MAGIC = b"ISHNE1.0"
HEADER = 10 + 512
#: Lead specification codes of the ISHNE header (0 unknown ... 19 AI).
LEAD_CODES = ("unknown", "bipolar", "X", "Y", "Z", "I", "II", "III", "aVR", "aVL", "aVF",
              "V1", "V2", "V3", "V4", "V5", "V6", "ES", "AS", "AI")
_FIXED = np.dtype([("var_size", "<i4"), ("n_samples", "<i4"), ("var_offset", "<i4"), ("ecg_offset", "<i4"),
                   ("version", "<i2"), ("first", "S40"), ("last", "S40"), ("id", "S20"), ("sex", "<i2"),
                   ("race", "<i2"), ("birth", "<i2", 3), ("record_date", "<i2", 3), ("file_date", "<i2", 3),
                   ("start", "<i2", 3), ("n_leads", "<i2"), ("lead_spec", "<i2", 12), ("lead_quality", "<i2", 12),
                   ("resolution", "<i2", 12), ("pacemaker", "<i2"), ("recorder", "S40"), ("fs", "<i2"),
                   ("proprietary", "S80"), ("copyright", "S80"), ("reserved", "S88")])
assert _FIXED.itemsize == 512


def is_ishne(head: bytes) -> bool:
    return head.startswith(MAGIC)


class IshneStream:
    """An ISHNE file opened for reading by sample ranges (``read(start, stop)`` in mV)."""

    def __init__(self, path: Path):
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(HEADER)
        if len(head) < HEADER or not is_ishne(head):
            raise DataError(f"{path}: not an ISHNE 1.0 Holter file (magic {MAGIC!r} and a 512-byte header)")
        h = np.frombuffer(head[10:], _FIXED)[0]
        n_leads = int(h["n_leads"])
        if not 1 <= n_leads <= 12:
            raise DataError(f"{path}: ISHNE header says {n_leads} leads (1-12)")
        self.fs = check_fs(int(h["fs"]), path)
        codes = [int(c) for c in h["lead_spec"][:n_leads]]
        self.leads = [LEAD_CODES[c] if 0 <= c < len(LEAD_CODES) else f"code {c}" for c in codes]
        resolution = h["resolution"][:n_leads].astype(np.float64)
        if np.any(resolution <= 0):
            raise DataError(f"{path}: ISHNE lead resolution {resolution.tolist()} nV: must be positive")
        self.gain = resolution * 1e-6  # nV -> mV
        offset = int(h["ecg_offset"])
        if offset < HEADER or offset > size:
            raise DataError(f"{path}: ISHNE ECG block offset {offset} outside the file ({size} bytes)")
        available = (size - offset) // (2 * n_leads)
        self.n_samples = min(max(int(h["n_samples"]), 0), available)
        if self.n_samples == 0:
            raise DataError(f"{path}: ISHNE file without samples")
        self.notes = [] if self.n_samples == int(h["n_samples"]) else [
            f"ISHNE header says {int(h['n_samples'])} samples per lead; the file holds {self.n_samples}"]
        self.sex = {1: "M", 2: "F"}.get(int(h["sex"]))
        self.age = None
        self._offset, self._n_leads = offset, n_leads

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, int(start)), min(int(stop), self.n_samples)
        with open(self.path, "rb") as f:
            f.seek(self._offset + 2 * self._n_leads * start)
            data = np.fromfile(f, "<i2", count=max(0, stop - start) * self._n_leads)
        return data.reshape(-1, self._n_leads).astype(np.float64) * self.gain

    def record(self) -> Record:
        return Record(str(self.path), self.path, self.read(0, self.n_samples), self.fs, list(self.leads),
                      list(self.notes), age=self.age, sex=self.sex)


def read_ishne(path: Path) -> Record:
    return IshneStream(path).record()

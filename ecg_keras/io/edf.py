"""EDF / EDF+ (and BDF) records with edfio: Holter and sleep recorders' ECG channels.

edfio (pure Python, numpy only; the EDF writer MNE uses for export) maps the data records of an
EDF file into memory, so :class:`EdfStream` reads a 24-h recording by sample ranges. The ECG
channels are the signals whose labels are lead names (``ECG I``, ``EKG II``, ``V1``, ... see
:mod:`ecg_keras.io.leads`); when no label is one, every ordinary signal at the most common
sampling rate is taken, in file order. Physical dimensions uV, mV or V give the scale to mV.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ecg_keras.datasets.base import DataError
from ecg_keras.io.base import Record, check_fs, scale, sex_letter
from ecg_keras.io.leads import canonical

EDF_MAGIC, BDF_MAGIC = b"0       ", b"\xffBIOSEMI"
_PREFIXES = ("ECG", "EKG")


def is_edf(head: bytes) -> bool:
    """EDF(+) (version ``0``) or BDF header: the magic and a numeric header length at byte 184."""
    if not (head.startswith(EDF_MAGIC) or head.startswith(BDF_MAGIC)) or len(head) < 256:
        return False
    return head[184:192].strip().isdigit()


def _lead_label(label: str) -> str:
    text = label.strip()
    for prefix in _PREFIXES:
        if text.upper().startswith(prefix):
            text = text[len(prefix):].strip(" _-")
    return text


class EdfStream:
    """An EDF/BDF file opened for reading by sample ranges (``read(start, stop)`` in mV)."""

    def __init__(self, path: Path):
        import edfio

        self.path = path
        with open(path, "rb") as f:
            bdf = f.read(8) == BDF_MAGIC
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = edfio.read_bdf(path) if bdf else edfio.read_edf(path, lazy_load_data=True)
        self.notes = [f"EDF: {w.message}" for w in caught]
        signals = [s for s in edf.signals if s.samples_per_data_record > 0]
        if not signals:
            raise DataError(f"{path}: EDF file without signals")
        named = [s for s in signals if canonical(_lead_label(s.label))]
        if named:
            rates = Counter(s.sampling_frequency for s in named)
        else:
            rates = Counter(s.sampling_frequency for s in signals)
            named = signals
        fs = rates.most_common(1)[0][0]
        self.signals = [s for s in named if s.sampling_frequency == fs]
        skipped = [s.label for s in named if s.sampling_frequency != fs]
        if skipped:
            self.notes.append(f"EDF signals {skipped} skipped: sampled at another rate than {fs:g} Hz")
        self.fs = check_fs(fs, path)
        self.leads = [_lead_label(s.label) or f"signal {j}" for j, s in enumerate(self.signals)]
        self.gain = np.array([scale(s.physical_dimension or "uV", path, s.label) for s in self.signals])
        self.n_samples = int(round(edf.num_data_records * edf.data_record_duration * self.fs))
        if self.n_samples <= 0:
            raise DataError(f"{path}: EDF file without data records")
        try:
            self.sex = sex_letter(edf.patient.sex)
        except Exception:  # noqa: BLE001 - a plain-EDF patient field is free text
            self.sex = None
        self.age = None

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, int(start)), min(int(stop), self.n_samples)
        if stop <= start:
            return np.zeros((0, len(self.signals)))
        cols = [s.get_data_slice(start / self.fs, stop / self.fs)[:stop - start] for s in self.signals]
        n = min(len(c) for c in cols)
        return np.stack([c[:n] for c in cols], axis=1) * self.gain

    def record(self) -> Record:
        return Record(str(self.path), self.path, self.read(0, self.n_samples), self.fs, list(self.leads),
                      list(self.notes), age=self.age, sex=self.sex)


def read_edf(path: Path) -> Record:
    return EdfStream(path).record()

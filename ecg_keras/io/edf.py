"""EDF / EDF+ (and BDF) records with edfio: Holter and sleep recorders' ECG channels.

edfio (pure Python, numpy only; the EDF writer MNE uses for export) parses the header;
:class:`EdfStream` then reads the data records a sample range needs with one seek and read
(not through a memory map, whose touched pages would stay resident and grow with a 24-h file).
BDF (24-bit) files are read whole by edfio. The ECG
channels are the signals whose labels are lead names (``ECG I``, ``EKG II``, ``V1``, ... see
:mod:`ecg_keras.io.leads`); when no label is one, every ordinary signal at the most common
sampling rate is taken, in file order. Physical dimensions uV, mV or V give the scale to mV.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ecg_keras.io.base import DataError
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
        self._layout = None if bdf else self._record_layout(edf)
        try:
            self.sex = sex_letter(edf.patient.sex)
        except Exception:  # noqa: BLE001 - a plain-EDF patient field is free text
            self.sex = None
        self.age = None

    def _record_layout(self, edf):
        """(header bytes, int16 values per data record, samples per record, [(column, gain, offset)])
        from the EDF header: signal k's samples follow those of signals 0..k-1 in each record."""
        with open(self.path, "rb") as f:
            head = f.read(256)
            n_all = int(head[252:256].decode("ascii").strip())
            table = f.read(256 * n_all)
        if len(table) < 256 * n_all:
            raise DataError(f"{self.path}: EDF header truncated")
        labels = [table[16 * k:16 * (k + 1)].decode("latin-1").strip() for k in range(n_all)]
        at = 216 * n_all
        per_record = [int(table[at + 8 * k:at + 8 * (k + 1)].decode("ascii").strip()) for k in range(n_all)]
        ordinary = [k for k, label in enumerate(labels) if label != "EDF Annotations"]
        starts = np.concatenate(([0], np.cumsum(per_record)))
        chosen = []
        for s in self.signals:
            k = ordinary[list(edf.signals).index(s)]
            gain = (s.physical_max - s.physical_min) / (s.digital_max - s.digital_min)
            chosen.append((int(starts[k]), gain, s.physical_max / gain - s.digital_max))
        spr = per_record[ordinary[list(edf.signals).index(self.signals[0])]]
        return int(head[184:192].decode("ascii").strip()), int(starts[-1]), spr, chosen

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, int(start)), min(int(stop), self.n_samples)
        if stop <= start:
            return np.zeros((0, len(self.signals)))
        if self._layout is not None:
            header, width, spr, chosen = self._layout
            first, last = start // spr, -(-stop // spr)
            with open(self.path, "rb") as f:
                f.seek(header + 2 * width * first)
                data = np.fromfile(f, "<i2", count=(last - first) * width)
            if len(data) < (last - first) * width:
                raise DataError(f"{self.path}: EDF data records end before sample {stop}")
            data = data.reshape(last - first, width)
            a = start - first * spr
            cols = [(data[:, c:c + spr].ravel()[a:a + stop - start] + offset) * gain for c, gain, offset in chosen]
            return np.stack(cols, axis=1) * self.gain
        cols = [s.get_data_slice(start / self.fs, stop / self.fs)[:stop - start] for s in self.signals]
        n = min(len(c) for c in cols)
        return np.stack([c[:n] for c in cols], axis=1) * self.gain

    def record(self) -> Record:
        return Record(str(self.path), self.path, self.read(0, self.n_samples), self.fs, list(self.leads),
                      list(self.notes), age=self.age, sex=self.sex)


def read_edf(path: Path) -> Record:
    return EdfStream(path).record()

"""The hospital export formats, recognised from their content: DICOM waveform, HL7 aECG / GE MUSE /
Philips XML, SCP-ECG, EDF/EDF+/BDF and ISHNE Holter.

:func:`sniff` names the format of a file from its first bytes (magic numbers, the XML root is
checked by the XML reader), whatever its extension; :func:`read_format` reads it into a
:class:`~ecg_keras.io.base.Record`; :func:`open_stream` opens it for reading by sample ranges
(EDF and ISHNE by seek and read of the range, so a 24-h Holter is never held whole). Every failure is a
DataError naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_keras.io.base import DataError
from ecg_keras.io.base import Record

#: Format -> (description, usual suffixes); the one list shown in messages and docs.
FORMATS = {
    "dicom": ("DICOM waveform", (".dcm",)),
    "xml": ("HL7 aECG / GE MUSE / Philips XML", (".xml",)),
    "scp": ("SCP-ECG", (".scp",)),
    "edf": ("EDF/EDF+/BDF", (".edf", ".bdf")),
    "ishne": ("ISHNE Holter", (".ecg", ".ishne")),
}
SUFFIXES = tuple(s for _, suffixes in FORMATS.values() for s in suffixes)
HEAD = 1024


def sniff(path: Path) -> str | None:
    """The format of ``path`` from its content (None: not one of :data:`FORMATS`)."""
    from ecg_keras.io import dicom, edf, ishne, scp, xml_ecg

    try:
        with open(path, "rb") as f:
            head = f.read(HEAD)
        size = Path(path).stat().st_size
    except OSError:
        return None
    if dicom.is_dicom(head):
        return "dicom"
    if ishne.is_ishne(head):
        return "ishne"
    if edf.is_edf(head):
        return "edf"
    if xml_ecg.is_xml(head):
        return "xml"
    if scp.is_scp(head, size):
        return "scp"
    return None


def _guard(path: Path, fn):
    try:
        return fn(path)
    except (DataError, MemoryError, RecursionError):
        raise
    except Exception as e:  # noqa: BLE001 - any other failure of a parser on a damaged file
        raise DataError(f"{path}: cannot read as {FORMATS[sniff(path) or 'xml'][0]} ({type(e).__name__}: {e})") \
            from None


def read_format(path, kind: str | None = None) -> Record:
    """Read a file of one of :data:`FORMATS` (``kind`` as :func:`sniff` names it; found if None)."""
    from ecg_keras.io import dicom, edf, ishne, scp, xml_ecg

    path = Path(path)
    kind = kind or sniff(path)
    readers = {"dicom": dicom.read_dicom, "xml": xml_ecg.read_xml, "scp": scp.read_scp, "edf": edf.read_edf,
               "ishne": ishne.read_ishne}
    if kind not in readers:
        raise DataError(f"{path}: not a recognised ECG file ({', '.join(d for d, _ in FORMATS.values())})")
    return _guard(path, readers[kind])


class RecordStream:
    """A record read whole, served by sample ranges like the EDF and ISHNE streams."""

    def __init__(self, record: Record):
        self.record_ = record
        self.path, self.fs, self.leads = record.path, record.fs, record.leads
        self.n_samples, self.notes, self.age, self.sex = len(record.signal), record.notes, record.age, record.sex

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.record_.signal[max(0, start):stop]


def open_stream(path, kind: str | None = None, read=None):
    """An object with ``fs``, ``leads``, ``n_samples``, ``notes`` and ``read(start, stop)`` (mV).

    EDF and ISHNE read each range from the file; other files are read whole by ``read(path)`` (default
    :func:`read_format`)."""
    from ecg_keras.io import edf, ishne

    path = Path(path)
    kind = kind or sniff(path)
    if kind == "edf":
        return _guard(path, edf.EdfStream)
    if kind == "ishne":
        return _guard(path, ishne.IshneStream)
    return RecordStream((read or read_format)(path))

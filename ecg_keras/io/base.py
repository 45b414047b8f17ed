"""The record type every reader returns and the unit and rate checks the readers share."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecg_keras.errors import ECGKerasError

#: The benchmark's lead order (the one spelling shown to people and stored in exports).
LEAD_NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LEADS = tuple(name.upper() for name in LEAD_NAMES)  # as compared with file headers (case-insensitive)


class DataError(ECGKerasError, ValueError):
    """Bad or missing input data; the message names the file and the problem."""


#: Signal units readers accept, as factors to mV (keys lower case).
UNITS = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


@dataclass
class Record:
    """A record as read: ``signal`` (samples, leads) float64 in mV, in the file's lead order.

    ``age`` (years) and ``sex`` (``"M"``/``"F"``) when the file has them; ``notes`` are shown to
    the user (assumptions a reader made); ``lead_note`` says which leads were derived or
    zero-filled for the model (:func:`ecg_keras.io.records.to_model_input`)."""

    name: str
    path: Path
    signal: np.ndarray
    fs: float
    leads: list[str]
    notes: list[str] = field(default_factory=list)
    age: float | None = None
    sex: str | None = None
    lead_note: str = ""  # set by to_model_input: leads derived or zero-filled

    @property
    def duration(self) -> float:
        return len(self.signal) / self.fs


def check_fs(fs, where) -> float:
    """``fs`` as a float in (0, 100 kHz], else a DataError naming ``where``."""
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise DataError(f"{where}: no valid sampling frequency ({fs!r})") from None
    if not math.isfinite(fs) or fs <= 0 or fs > 100_000:
        raise DataError(f"{where}: invalid sampling frequency {fs:g} Hz")
    return fs


def scale(unit, where, lead) -> float:
    """Factor from ``unit`` ("mV", "uV", "µV", "V", "nV"; case-insensitive) to mV."""
    u = str(unit).strip().lower()
    if u not in UNITS:
        raise DataError(f"{where}: lead {lead} has unit {unit!r}; expected mV, uV or V")
    return UNITS[u]


def sex_letter(value) -> str | None:
    """"M"/"F" from the spellings of the formats (M, F, male, female, 1 = male, 2 = female), else None."""
    v = str(value or "").strip().lower()
    return {"m": "M", "male": "M", "1": "M", "f": "F", "female": "F", "2": "F"}.get(v)


def age_years(value) -> float | None:
    """Age in years from a number or a DICOM age string (``"042Y"``, ``"6M"``), else None."""
    v = str(value or "").strip().upper()
    units = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
    factor = units.get(v[-1:], None)
    try:
        age = float(v[:-1]) * factor if factor else float(v)
    except ValueError:
        return None
    return age if math.isfinite(age) and 0 <= age < 150 else None

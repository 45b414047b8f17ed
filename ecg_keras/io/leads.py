"""Lead names as devices write them, mapped to the model's leads; limb leads derived; gaps filled.

:data:`LEAD_SPELLINGS` is the one table of device spellings. A name is first normalised
(:func:`normal`: upper case; text in parentheses, a ``MDC_ECG_LEAD_`` (ISO/IEEE 11073, HL7 aECG,
DICOM) or ``LEAD`` prefix, spaces, ``_`` and ``-`` dropped), then looked up, so "Lead I
(Einthoven)", "DI", "MDC_ECG_LEAD_I" and "lead_i" are all ``I``, "AVR"/"aVR"/"Lead aVR
(Goldberger)" are ``aVR`` and "C1".."C6" (the European chest-lead names) are ``V1``..``V6``.

Limb leads are linear in two of them (Einthoven's and Goldberger's laws): with I and II,
III = II - I, aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2 (I or II is first recovered
from III when only one of them is recorded). 8-lead exports (I, II, V1-V6, the usual storage of
12-lead electrocardiographs) are completed this way; :func:`complete` says which leads it derived.
A lead still missing is an error unless ``fill_missing``: then it is zeros and reported.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ecg_keras.io.base import LEAD_NAMES, DataError

#: Model lead -> spellings used by devices and formats, in :func:`normal` form (the one table).
LEAD_SPELLINGS: dict[str, tuple[str, ...]] = {
    "I": ("I", "DI", "D1", "L1"),
    "II": ("II", "DII", "D2", "L2"),
    "III": ("III", "DIII", "D3", "L3"),
    "aVR": ("AVR",),
    "aVL": ("AVL",),
    "aVF": ("AVF",),
    **{f"V{k}": (f"V{k}", f"C{k}") for k in range(1, 7)},
}
_LOOKUP = {spelling: lead for lead, spellings in LEAD_SPELLINGS.items() for spelling in spellings}
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


def normal(name) -> str:
    """A device's lead name in the normal form of :data:`LEAD_SPELLINGS` (unknown names upper-cased)."""
    n = re.sub(r"\(.*?\)", "", str(name)).upper().strip()
    inverted = n.startswith("-")  # "-aVR" (Cabrera display) is aVR with the sign flipped: not aVR
    n = re.sub(r"[\s_\-]", "", n)
    for prefix in ("MDCECGLEAD", "LEAD"):
        if n.startswith(prefix) and len(n) > len(prefix):
            n = n[len(prefix):]
    return "-" + n if inverted else n


def canonical(name) -> str | None:
    """The model's name of a device lead name (``"Lead I (Einthoven)"`` -> ``"I"``), or None."""
    return _LOOKUP.get(normal(name))


def complete(signal: np.ndarray, names: Sequence[str], where, wanted: Sequence[str] = LEAD_NAMES, *,
             fill_missing: bool = False) -> tuple[np.ndarray, list[str], list[str]]:
    """(signal (samples, len(wanted)) in ``wanted`` order, derived leads, zero-filled leads).

    Leads are matched by name (:func:`canonical`; other names are ignored), missing limb leads
    derived from two recorded ones, and any lead still missing refused with a DataError naming it
    and the file's leads, or with ``fill_missing`` set to zeros (the caller must say so and keep
    those leads out of the flat-lead check).
    """
    canon = [canonical(n) or normal(n) for n in names]
    seen: dict[str, int] = {}
    for j, c in enumerate(canon):
        if c in seen and c in _LOOKUP.values():
            raise DataError(f"{where}: lead {c} appears twice ({names[seen[c]]!r}, {names[j]!r})")
        seen.setdefault(c, j)
    x = np.asarray(signal, dtype=np.float64)
    cols = {lead: x[:, seen[lead]] for lead in wanted if lead in seen}
    have = {lead: x[:, seen[lead]] for lead in LIMB if lead in seen}
    derived: list[str] = []
    if any(lead in wanted and lead not in cols for lead in LIMB):
        if "I" not in have and {"II", "III"} <= have.keys():
            have["I"] = have["II"] - have["III"]
        if "II" not in have and {"I", "III"} <= have.keys():
            have["II"] = have["I"] + have["III"]
        if {"I", "II"} <= have.keys():
            i, ii = have["I"], have["II"]
            formulas = {"I": i, "II": ii, "III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
            for lead in LIMB:
                if lead in wanted and lead not in cols:
                    cols[lead] = formulas[lead]
                    derived.append(lead)
    missing = [lead for lead in wanted if lead not in cols]
    if missing and not fill_missing:
        raise DataError(f"{where}: cannot match the leads {missing} the model needs (the file has {list(names)}); "
                        "pass --fill-missing-leads to set them to zero (flagged in the output)")
    out = np.zeros((len(x), len(wanted)))
    for k, lead in enumerate(wanted):
        if lead in cols:
            out[:, k] = cols[lead]
    return out, derived, missing


def describe(derived: Sequence[str], filled: Sequence[str]) -> str:
    """The note of the output's ``leads`` column: ``"derived III, aVR; zero-filled V1"`` or ``""``."""
    parts = []
    if derived:
        parts.append("derived " + ", ".join(derived))
    if filled:
        parts.append("ZERO-FILLED " + ", ".join(filled))
    return "; ".join(parts)

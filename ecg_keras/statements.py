"""The 71 SCP-ECG statements of PTB-XL (Wagner et al. 2020) and their diagnostic hierarchy.

``STATEMENTS`` holds, per statement, the columns of PTB-XL's ``scp_statements.csv`` that the
benchmark uses (kinds ``diagnostic`` / ``form`` / ``rhythm``, ``diagnostic_class`` and
``diagnostic_subclass``) plus the short description. ``statements_frame()`` formats it like the
published csv (read with ``index_col=0``), so the synthetic generator can write a
``scp_statements.csv`` that readers treat exactly like the real one.

44 diagnostic statements (5 classes NORM/MI/STTC/CD/HYP, 23 subclasses), 19 form statements
(4 of them also diagnostic) and 12 rhythm statements.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["Statement", "STATEMENTS", "SUPERCLASSES", "statements_frame", "codes", "get"]


class Statement(NamedTuple):
    code: str
    diagnostic: bool
    form: bool
    rhythm: bool
    diagnostic_class: str | None
    diagnostic_subclass: str | None
    description: str


SUPERCLASSES = ("CD", "HYP", "MI", "NORM", "STTC")

# code, kinds (d = diagnostic, f = form, r = rhythm), class, subclass ("-" = none), description.
# Same order as PTB-XL 1.0.3's scp_statements.csv.
_TABLE = """
NDT      df STTC STTC      non-diagnostic T abnormalities
NST_     df STTC NST_      non-specific ST changes
DIG      df STTC STTC      digitalis-effect
LNGQT    df STTC STTC      long QT-interval
NORM     d  NORM NORM      normal ECG
IMI      d  MI   IMI       inferior myocardial infarction
ASMI     d  MI   AMI       anteroseptal myocardial infarction
LVH      d  HYP  LVH       left ventricular hypertrophy
LAFB     d  CD   LAFB/LPFB left anterior fascicular block
ISC_     d  STTC ISC_      non-specific ischemic
IRBBB    d  CD   IRBBB     incomplete right bundle branch block
1AVB     d  CD   _AVB      first degree AV block
IVCD     d  CD   IVCD      non-specific intraventricular conduction disturbance (block)
ISCAL    d  STTC ISCA      ischemic in anterolateral leads
CRBBB    d  CD   CRBBB     complete right bundle branch block
CLBBB    d  CD   CLBBB     complete left bundle branch block
ILMI     d  MI   IMI       inferolateral myocardial infarction
LAO/LAE  d  HYP  LAO/LAE   left atrial overload/enlargement
AMI      d  MI   AMI       anterior myocardial infarction
ALMI     d  MI   AMI       anterolateral myocardial infarction
ISCIN    d  STTC ISCI      ischemic in inferior leads
INJAS    d  MI   AMI       subendocardial injury in anteroseptal leads
LMI      d  MI   LMI       lateral myocardial infarction
ISCIL    d  STTC ISCI      ischemic in inferolateral leads
LPFB     d  CD   LAFB/LPFB left posterior fascicular block
ISCAS    d  STTC ISCA      ischemic in anteroseptal leads
INJAL    d  MI   AMI       subendocardial injury in anterolateral leads
ISCLA    d  STTC ISCA      ischemic in lateral leads
RVH      d  HYP  RVH       right ventricular hypertrophy
ANEUR    d  STTC STTC      ST-T changes compatible with ventricular aneurysm
RAO/RAE  d  HYP  RAO/RAE   right atrial overload/enlargement
EL       d  STTC STTC      electrolytic disturbance or drug (former EDIS)
WPW      d  CD   WPW       Wolf-Parkinson-White syndrome
ILBBB    d  CD   ILBBB     incomplete left bundle branch block
IPLMI    d  MI   IMI       inferoposterolateral myocardial infarction
ISCAN    d  STTC ISCA      ischemic in anterior leads
IPMI     d  MI   IMI       inferoposterior myocardial infarction
SEHYP    d  HYP  SEHYP     septal hypertrophy
INJIN    d  MI   IMI       subendocardial injury in inferior leads
INJLA    d  MI   AMI       subendocardial injury in lateral leads
PMI      d  MI   PMI       posterior myocardial infarction
3AVB     d  CD   _AVB      third degree AV block
INJIL    d  MI   IMI       subendocardial injury in inferolateral leads
2AVB     d  CD   _AVB      second degree AV block
ABQRS    f  -    -         abnormal QRS
PVC      f  -    -         ventricular premature complex
STD_     f  -    -         non-specific ST depression
VCLVH    f  -    -         voltage criteria (QRS) for left ventricular hypertrophy
QWAVE    f  -    -         Q waves present
LOWT     f  -    -         low amplitude T-waves
NT_      f  -    -         non-specific T-wave changes
PAC      f  -    -         atrial premature complex
LPR      f  -    -         prolonged PR interval
INVT     f  -    -         inverted T-waves
LVOLT    f  -    -         low QRS voltages in the frontal and horizontal leads
HVOLT    f  -    -         high QRS voltage
TAB_     f  -    -         T-wave abnormality
STE_     f  -    -         non-specific ST elevation
PRC(S)   f  -    -         premature complex(es)
SR       r  -    -         sinus rhythm
AFIB     r  -    -         atrial fibrillation
STACH    r  -    -         sinus tachycardia
SARRH    r  -    -         sinus arrhythmia
SBRAD    r  -    -         sinus bradycardia
PACE     r  -    -         normal functioning artificial pacemaker
SVARR    r  -    -         supraventricular arrhythmia
BIGU     r  -    -         bigeminal pattern (unknown origin, SV or Ventricular)
AFLT     r  -    -         atrial flutter
SVTAC    r  -    -         supraventricular tachycardia
PSVT     r  -    -         paroxysmal supraventricular tachycardia
TRIGU    r  -    -         trigeminal pattern (unknown origin, SV or Ventricular)
"""


def _parse(table: str) -> tuple[Statement, ...]:
    rows = []
    for line in table.strip().splitlines():
        code, kinds, cls, sub, description = line.split(None, 4)
        rows.append(Statement(code, "d" in kinds, "f" in kinds, "r" in kinds,
                              None if cls == "-" else cls, None if sub == "-" else sub, description))
    return tuple(rows)


STATEMENTS: tuple[Statement, ...] = _parse(_TABLE)
_BY_CODE = {s.code: s for s in STATEMENTS}


def get(code: str) -> Statement:
    """The statement with this SCP code (KeyError naming the code if unknown)."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown SCP statement {code!r}") from None


def codes(kind: str | None = None) -> list[str]:
    """SCP codes in table order, optionally only one kind: 'diagnostic', 'form' or 'rhythm'."""
    if kind not in (None, "diagnostic", "form", "rhythm"):
        raise ValueError(f"kind must be None, 'diagnostic', 'form' or 'rhythm', not {kind!r}")
    return [s.code for s in STATEMENTS if kind is None or getattr(s, kind)]


def statements_frame() -> pd.DataFrame:
    """The table formatted like ``pd.read_csv("scp_statements.csv", index_col=0)`` of PTB-XL.

    Unnamed index of codes; columns description, diagnostic, form, rhythm (1.0 or NaN),
    diagnostic_class, diagnostic_subclass (str or NaN). ``frame.to_csv(path)`` writes a file
    that reads back identically.
    """
    flag = lambda b: 1.0 if b else np.nan  # noqa: E731
    frame = pd.DataFrame(
        {
            "description": [s.description for s in STATEMENTS],
            "diagnostic": [flag(s.diagnostic) for s in STATEMENTS],
            "form": [flag(s.form) for s in STATEMENTS],
            "rhythm": [flag(s.rhythm) for s in STATEMENTS],
            "diagnostic_class": [s.diagnostic_class or np.nan for s in STATEMENTS],
            "diagnostic_subclass": [s.diagnostic_subclass or np.nan for s in STATEMENTS],
        },
        index=pd.Index([s.code for s in STATEMENTS]),
    )
    return frame

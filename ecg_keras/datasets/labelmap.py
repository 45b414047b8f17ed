"""Labels of other datasets as PTB-XL's SCP statements (the classes the models predict).

One table per vocabulary; :func:`to_scp` applies them all, so a label table may mix them:

* :data:`LUDB_RHYTHMS`: the ``Rhythms`` strings of LUDB's ``ludb.csv`` (matched on their start,
  case-insensitive: "Atrial flutter, typical" is "Atrial flutter");
* :data:`SNOMED_CT`: the SNOMED-CT codes of PhysioNet/CinC 2020/2021 ``# Dx:`` header lines
  (the challenge's ``dx_mapping_scored.csv`` / ``dx_mapping_unscored.csv`` names);
* an SCP code itself ("AFIB") stands for itself.

Only one-to-one meanings are listed; a label without an entry (e.g. LUDB's "Wandering atrial
pacemaker", SNOMED 39732003 left axis deviation: PTB-XL has no such statement) maps to nothing
and is reported as unmapped. docs/DATA.md ("Labels of other datasets") shows the tables.
"""
from __future__ import annotations

from typing import Iterable

from ecg_keras.statements import STATEMENTS

#: LUDB rhythm (``ludb.csv`` column ``Rhythms``, one per line) -> SCP statement.
LUDB_RHYTHMS: dict[str, str] = {
    "Sinus rhythm": "SR",
    "Sinus bradycardia": "SBRAD",
    "Sinus tachycardia": "STACH",
    "Sinus arrhythmia": "SARRH",
    # sinus rhythm with irregular RR intervals: what PTB-XL calls sinus arrhythmia
    "Irregular sinus rhythm": "SARRH",
    "Atrial fibrillation": "AFIB",
    "Atrial flutter": "AFLT",
}

#: SNOMED-CT code (CinC ``# Dx:``) -> SCP statement.
SNOMED_CT: dict[str, str] = {
    # rhythm
    "426783006": "SR",      # sinus rhythm
    "426177001": "SBRAD",   # sinus bradycardia
    "427084000": "STACH",   # sinus tachycardia
    "427393009": "SARRH",   # sinus arrhythmia
    "164889003": "AFIB",    # atrial fibrillation
    "164890007": "AFLT",    # atrial flutter
    "10370003": "PACE",     # pacing rhythm
    "426761007": "SVTAC",   # supraventricular tachycardia
    "67198005": "PSVT",     # paroxysmal supraventricular tachycardia
    "11157007": "BIGU",     # ventricular bigeminy
    "251180001": "TRIGU",   # ventricular trigeminy
    # conduction
    "270492004": "1AVB",    # 1st degree AV block
    "195042002": "2AVB",    # 2nd degree AV block
    "27885002": "3AVB",     # complete heart block
    "164909002": "CLBBB",   # left bundle branch block
    "733534002": "CLBBB",   # complete left bundle branch block
    "251120003": "ILBBB",   # incomplete left bundle branch block
    "59118001": "CRBBB",    # right bundle branch block (scored as CRBBB by the challenge)
    "713427006": "CRBBB",   # complete right bundle branch block
    "713426002": "IRBBB",   # incomplete right bundle branch block
    "445118002": "LAFB",    # left anterior fascicular block
    "445211001": "LPFB",    # left posterior fascicular block
    "698252002": "IVCD",    # nonspecific intraventricular conduction disorder
    "74390002": "WPW",      # Wolff-Parkinson-White pattern
    "164947007": "LPR",     # prolonged PR interval
    # ectopy
    "284470004": "PAC",     # premature atrial contraction
    "63593006": "PAC",      # supraventricular premature beats (scored as PAC)
    "427172004": "PVC",     # premature ventricular contractions
    "164884008": "PVC",     # ventricular ectopics
    "17338001": "PVC",      # ventricular premature beats (scored as PVC)
    # form, hypertrophy
    "111975006": "LNGQT",   # prolonged QT interval
    "164917005": "QWAVE",   # Q wave abnormal
    "251146004": "LVOLT",   # low QRS voltages
    "164934002": "TAB_",    # T wave abnormal
    "59931005": "INVT",     # T wave inversion
    "429622005": "STD_",    # ST depression
    "164931005": "STE_",    # ST elevation
    "164873001": "LVH",     # left ventricular hypertrophy
    "89792004": "RVH",      # right ventricular hypertrophy
    "67741000119109": "LAO/LAE",  # left atrial enlargement
    "446358003": "RAO/RAE",  # right atrial hypertrophy
}

_SCP = {s.code for s in STATEMENTS}


def scp_code(label: str) -> str | None:
    """The SCP statement ``label`` stands for (an SCP code, a SNOMED-CT code or a LUDB rhythm), or None."""
    label = str(label).strip()
    if label in _SCP:
        return label
    if label in SNOMED_CT:
        return SNOMED_CT[label]
    low = label.lower()
    for rhythm, code in LUDB_RHYTHMS.items():
        if low == rhythm.lower() or low.startswith(rhythm.lower() + ","):
            return code
    return None


def to_scp(labels: Iterable[str]) -> tuple[set[str], list[str]]:
    """``(SCP statements, unmapped labels)`` of one record's labels."""
    codes, unmapped = set(), []
    for label in labels:
        code = scp_code(label)
        if code is None:
            unmapped.append(str(label))
        else:
            codes.add(code)
    return codes, unmapped

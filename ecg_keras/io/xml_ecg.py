"""ECG XML exports: HL7 annotated ECG (aECG, the FDA's format), GE MUSE and Philips (Sierra) XML.

Parsed with defusedxml: a file declaring entities (XXE, billion laughs) is refused before any
expansion. The format is told by the root element: ``AnnotatedECG`` (namespace urn:hl7-org:v3),
``RestingECG`` (GE MUSE) or ``restingecgdata`` (Philips). Hand-written (one short function per
vendor) because no maintained, light package reads them (see docs/DATA.md).

* **HL7 aECG**: the first series' rhythm ``sequenceSet``; per lead (``MDC_ECG_LEAD_*`` codes) a
  ``SLIST_PQ`` value = origin + scale x digits; the time sequence's ``increment`` gives the rate.
* **GE MUSE**: the ``Waveform`` of type ``Rhythm``; per ``LeadData`` base64 little-endian int16
  samples x ``LeadAmplitudeUnitsPerBit`` (``LeadAmplitudeUnits`` MICROVOLTS/MILLIVOLTS); usually 8
  leads (I, II, V1-V6), the limb leads then derived (:mod:`ecg_keras.io.leads`).
* **Philips**: ``parsedwaveforms`` with ``dataencoding="Base64"`` and no compression: int16 lead
  blocks one after the other, ``signalcharacteristics`` giving rate and resolution (uV per LSB).
  XLI-compressed waveforms (the default of many Philips carts) are refused with a DataError.
"""
from __future__ import annotations

import base64
import binascii
from pathlib import Path

import numpy as np

from ecg_keras.io.base import DataError
from ecg_keras.io.base import Record, age_years, check_fs, scale, sex_letter

ROOTS = {"annotatedecg": "hl7", "restingecg": "muse", "restingecgdata": "philips"}
_MUSE_UNITS = {"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "VOLTS": "V"}


def is_xml(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<?xml") or text.startswith(b"<!DOCTYPE") or text.startswith(b"<")


def _local(tag) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _child(node, *names):
    """The first descendant path ``names`` (local names, namespace-blind), or None."""
    for name in names:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _children(node, name):
    return [] if node is None else [c for c in node if _local(c.tag) == name]


def _text(node, *names, default=None):
    node = _child(node, *names)
    return default if node is None or node.text is None else node.text.strip()


def parse(path: Path):
    """The root element of an XML file parsed without entity expansion (DataError if it has any)."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        return SafeET.parse(str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException as e:
        raise DataError(f"{path}: XML with entity declarations or external references refused "
                        f"({type(e).__name__}); ECG exports do not need them") from None
    except SafeET.ParseError as e:
        raise DataError(f"{path}: not well-formed XML ({e})") from None


def read_xml(path: Path) -> Record:
    root = parse(path)
    kind = ROOTS.get(_local(root.tag).lower())
    if kind is None:
        raise DataError(f"{path}: XML root element <{_local(root.tag)}> is not an ECG export "
                        "(AnnotatedECG, RestingECG or restingecgdata)")
    return {"hl7": _hl7, "muse": _muse, "philips": _philips}[kind](root, path)


def _float(value, path, what) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {what} is not a number ({value!r})") from None


def _stack(columns: list[np.ndarray], names, path) -> np.ndarray:
    if not columns:
        raise DataError(f"{path}: no ECG leads in the file")
    lengths = {len(c) for c in columns}
    if len(lengths) != 1 or 0 in lengths:
        raise DataError(f"{path}: leads of different or zero lengths {dict(zip(names, map(len, columns)))}")
    return np.stack(columns, axis=1)


# --------------------------------------------------------------------------- HL7 aECG
def _hl7(root, path) -> Record:
    series = _child(root, "component", "series")
    sequence_set = _child(series, "component", "sequenceSet")
    if sequence_set is None:
        raise DataError(f"{path}: HL7 aECG without a rhythm series (component/series/component/sequenceSet)")
    fs, names, columns = None, [], []
    for comp in _children(sequence_set, "component"):
        seq = _child(comp, "sequence")
        code = _child(seq, "code")
        value = _child(seq, "value")
        if code is None or value is None:
            continue
        name = code.get("code", "")
        if name.startswith("TIME_"):
            inc = _child(value, "increment")
            if inc is None:
                raise DataError(f"{path}: HL7 aECG time sequence without an increment")
            step = _float(inc.get("value"), path, "the time increment")
            unit = (inc.get("unit") or "s").lower()
            step *= {"s": 1.0, "ms": 1e-3, "us": 1e-6}.get(unit, float("nan"))
            fs = check_fs(1.0 / step if step > 0 else float("nan"), path)
            continue
        digits = _text(value, "digits")
        if digits is None:
            continue
        origin, factor = _child(value, "origin"), _child(value, "scale")
        o = _float(origin.get("value", 0), path, f"origin of {name}") if origin is not None else 0.0
        s = _float(factor.get("value", 1), path, f"scale of {name}") if factor is not None else 1.0
        unit = (factor.get("unit") if factor is not None else None) or "uV"
        try:
            x = np.array(digits.split(), dtype=np.float64)
        except ValueError:
            raise DataError(f"{path}: lead {name}: digits are not numbers") from None
        columns.append((o + s * x) * scale(unit, path, name))
        names.append(name)
    if fs is None:
        raise DataError(f"{path}: HL7 aECG without a time sequence (no sampling rate)")
    person = root.find(".//{*}subjectDemographicPerson")
    gender = _child(person, "administrativeGenderCode")
    sex = sex_letter(gender.get("code")) if gender is not None else None
    return Record(str(path), path, _stack(columns, names, path), fs, names, sex=sex)


# --------------------------------------------------------------------------- GE MUSE
def _b64(text, path, what) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise DataError(f"{path}: {what} is not base64") from None


def _muse(root, path) -> Record:
    waves = _children(root, "Waveform")
    wave = next((w for w in waves if (_text(w, "WaveformType") or "").lower() == "rhythm"), None)
    if wave is None:
        raise DataError(f"{path}: GE MUSE XML without a Rhythm waveform")
    base = _float(_text(wave, "SampleBase"), path, "SampleBase")
    exponent = _float(_text(wave, "SampleExponent", default="0"), path, "SampleExponent")
    fs = check_fs(base * 10 ** exponent, path)
    names, columns = [], []
    for lead in _children(wave, "LeadData"):
        name = _text(lead, "LeadID") or f"lead {len(names)}"
        raw = _b64(_text(lead, "WaveFormData"), path, f"lead {name}")
        if len(raw) % 2:
            raise DataError(f"{path}: lead {name}: odd number of bytes in the waveform")
        per_bit = _float(_text(lead, "LeadAmplitudeUnitsPerBit", default="1"), path, "LeadAmplitudeUnitsPerBit")
        units = _text(lead, "LeadAmplitudeUnits", default="MICROVOLTS").upper()
        if units not in _MUSE_UNITS:
            raise DataError(f"{path}: lead {name} has amplitude units {units!r}")
        columns.append(np.frombuffer(raw, "<i2").astype(np.float64) * per_bit * scale(_MUSE_UNITS[units], path, name))
        names.append(name)
    demo = _child(root, "PatientDemographics")
    age = _text(demo, "PatientAge")
    age_unit = (_text(demo, "AgeUnits") or "YEARS").upper()
    age = age_years(age) if age and age_unit == "YEARS" else None
    return Record(str(path), path, _stack(columns, names, path), fs, names, age=age,
                  sex=sex_letter(_text(demo, "Gender")))


# --------------------------------------------------------------------------- Philips
def _philips(root, path) -> Record:
    chars = root.find(".//{*}signalcharacteristics")
    fs = check_fs(_text(chars, "samplingrate"), path)
    resolution = _float(_text(chars, "resolution", default="5"), path, "resolution")  # uV per LSB
    parsed = root.find(".//{*}parsedwaveforms")
    if parsed is None:
        raise DataError(f"{path}: Philips XML without parsedwaveforms")
    compression = (parsed.get("compression") or "").strip().lower()
    if compression not in ("", "none", "uncompressed"):
        raise DataError(f"{path}: Philips waveforms compressed with {compression.upper()}; only uncompressed "
                        "Base64 waveforms are read (export them uncompressed)")
    if (parsed.get("dataencoding") or "Base64").lower() != "base64":
        raise DataError(f"{path}: Philips waveform encoding {parsed.get('dataencoding')!r}; expected Base64")
    names = (parsed.get("leadlabels") or "I II III aVR aVL aVF V1 V2 V3 V4 V5 V6").split()
    values = np.frombuffer(_b64(parsed.text, path, "parsedwaveforms"), "<i2")
    if len(values) == 0 or len(values) % len(names):
        raise DataError(f"{path}: {len(values)} samples do not split into {len(names)} leads")
    signal = values.reshape(len(names), -1).T.astype(np.float64) * resolution * 1e-3
    general = root.find(".//{*}generalpatientdata")
    age = age_years(_text(general, "age", "years"))
    return Record(str(path), path, signal, fs, names, age=age, sex=sex_letter(_text(general, "sex")))

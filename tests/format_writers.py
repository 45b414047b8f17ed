"""Small writers of the hospital ECG formats, for tests: the same int16 samples (x ``uv_per_lsb``)
written as each format stores them, built from the formats' published layouts (cited per writer).
EDF is written by edfio (the format's own writer); DICOM fixtures are pydicom's own test file.
"""
from __future__ import annotations

import base64
import struct
from pathlib import Path

import numpy as np

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def dicom_signal():
    """(raw int16 (samples, 12), uV per LSB, fs, lead names) of pydicom's waveform_ecg.dcm."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    raw = np.round(ds.waveform_array(0) / 1.25).astype(np.int16)  # every channel: 1.25 uV per LSB, baseline 0
    return raw, 1.25, float(ds.WaveformSequence[0].SamplingFrequency), LEADS


def write_edf(path: Path, raw: np.ndarray, uv: float, fs: float, leads=LEADS, label="ECG {}") -> Path:
    """EDF+ by edfio; digital = raw, physical range = digital range x uv (gain exactly uv)."""
    import edfio

    signals = [edfio.EdfSignal.from_digital(raw[:, j].astype(np.int16), fs, label=label.format(lead),
                                            physical_dimension="uV", digital_range=(-32768, 32767),
                                            physical_range=(-32768 * uv, 32767 * uv))
               for j, lead in enumerate(leads)]
    edfio.Edf(signals, patient=edfio.Patient(sex="F")).write(path)
    return path


def write_hl7_aecg(path: Path, raw, uv, fs, leads=LEADS, sex="F") -> Path:
    """HL7 v3 annotated ECG (ANSI/HL7 V3 ECG R1-2004; the layout of the FDA aECG examples):
    series/component/sequenceSet with a GLIST_PQ time sequence and one SLIST_PQ per lead."""
    comps = [f'<component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>'
             f'<value xsi:type="GLIST_TS"><head value="20020101000000"/>'
             f'<increment value="{1 / fs:.6g}" unit="s"/></value></sequence></component>']
    for j, lead in enumerate(leads):
        digits = " ".join(map(str, raw[:, j].tolist()))
        comps.append(f'<component><sequence><code code="MDC_ECG_LEAD_{lead.upper() if lead.startswith("a") else lead}"'
                     f' codeSystem="2.16.840.1.113883.6.24"/><value xsi:type="SLIST_PQ">'
                     f'<origin value="0" unit="uV"/><scale value="{uv}" unit="uV"/><digits>{digits}</digits>'
                     f'</value></sequence></component>')
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<id root="1"/><code code="93000" codeSystem="2.16.840.1.113883.6.12"/>'
            '<componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject>'
            f'<subjectDemographicPerson><administrativeGenderCode code="{sex}"/></subjectDemographicPerson>'
            '</trialSubject></subject></subjectAssignment></componentOf></timepointEvent></componentOf>'
            '<component><series><code code="RHYTHM"/><component><sequenceSet>' + "".join(comps) +
            '</sequenceSet></component></series></component></AnnotatedECG>')
    path.write_text(text)
    return path


def write_muse(path: Path, raw, uv, fs, leads=LEADS, age=42, sex="FEMALE") -> Path:
    """GE MUSE XML (restecg.dtd layout: RestingECG/Waveform[WaveformType=Rhythm]/LeadData with
    base64 little-endian int16 WaveFormData and LeadAmplitudeUnitsPerBit)."""
    lead_xml = "".join(
        f"<LeadData><LeadByteCountTotal>{2 * len(raw)}</LeadByteCountTotal><LeadSampleCountTotal>{len(raw)}"
        f"</LeadSampleCountTotal><LeadAmplitudeUnitsPerBit>{uv}</LeadAmplitudeUnitsPerBit><LeadAmplitudeUnits>"
        f"MICROVOLTS</LeadAmplitudeUnits><LeadID>{lead}</LeadID><WaveFormData>"
        f"{base64.b64encode(raw[:, j].astype('<i2').tobytes()).decode()}</WaveFormData></LeadData>"
        for j, lead in enumerate(leads))
    text = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n'
            f'<RestingECG><PatientDemographics><PatientAge>{age}</PatientAge><AgeUnits>YEARS</AgeUnits>'
            f'<Gender>{sex}</Gender></PatientDemographics>'
            '<Waveform><WaveformType>Median</WaveformType><SampleBase>500</SampleBase></Waveform>'
            f'<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>{int(fs)}</SampleBase>'
            f'<SampleExponent>0</SampleExponent><NumberofLeads>{len(leads)}</NumberofLeads>{lead_xml}</Waveform>'
            '</RestingECG>')
    path.write_text(text, encoding="latin-1")
    return path


def write_philips(path: Path, raw, uv, fs, leads=LEADS) -> Path:
    """Philips PageWriter (Sierra ECG XML schema 1.03/1.04): restingecgdata with
    dataacquisition/signalcharacteristics and uncompressed Base64 parsedwaveforms (lead blocks)."""
    data = base64.b64encode(np.ascontiguousarray(raw.T).astype("<i2").tobytes()).decode()
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<restingecgdata xmlns="http://www3.medical.philips.com">'
            '<patient><generalpatientdata><age><years>42</years></age><sex>Female</sex></generalpatientdata></patient>'
            f'<dataacquisition><signalcharacteristics><samplingrate>{int(fs)}</samplingrate>'
            f'<resolution>{uv}</resolution><numberchannelsvalid>{len(leads)}</numberchannelsvalid>'
            '</signalcharacteristics></dataacquisition><waveforms>'
            f'<parsedwaveforms dataencoding="Base64" compression="Uncompressed" numberofleads="{len(leads)}" '
            f'leadlabels="{" ".join(leads)}" durationperchannel="{int(1000 * len(raw) / fs)}">{data}</parsedwaveforms>'
            '</waveforms></restingecgdata>')
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- SCP-ECG
_SCP_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "III": 61, "aVR": 62,
              "aVL": 63, "aVF": 64}


def _huffman_default(values) -> bytes:
    """EN 1064 default Huffman table (section 2 value 19999): 0 -> 0; +-m (m <= 8) -> m ones, 0, sign;
    else 1111111110 + 8-bit or 1111111111 + 16-bit two's complement."""
    bits = []
    for v in values:
        v = int(v)
        if v == 0:
            bits.append("0")
        elif abs(v) <= 8:
            bits.append("1" * abs(v) + "0" + ("1" if v < 0 else "0"))
        elif -128 <= v <= 127:
            bits.append("1111111110" + format(v & 0xFF, "08b"))
        else:
            bits.append("1111111111" + format(v & 0xFFFF, "016b"))
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def _section(sid: int, body: bytes) -> bytes:
    body += b"\0" * (len(body) % 2)
    reserved = b"SCPECG" if sid == 0 else b"\0" * 6
    return struct.pack("<HHIBB", 0, sid, 16 + len(body), 20, 20) + reserved + body


def write_scp(path: Path, raw, uv, fs, leads=LEADS, age=42, sex=2, huffman=True) -> Path:
    """SCP-ECG (EN 1064:2005, sections 0, 1, 2, 3, 6): rhythm data as second differences, Huffman
    coded with the default table (or raw int16 with ``huffman=False``, section 2 absent)."""
    n = len(raw)
    s1 = (struct.pack("<BH", 2, 2) + b"x\0" + struct.pack("<BHHB", 4, 3, age, 1) + struct.pack("<BHB", 5, 1, sex)
          + struct.pack("<BH", 255, 0))
    s2 = struct.pack("<H", 19999)
    s3 = struct.pack("<BB", len(leads), (len(leads) << 3) | 4) + b"".join(
        struct.pack("<IIB", 1, n, _SCP_CODES[lead]) for lead in leads)
    blocks = []
    for j in range(len(leads)):
        x = raw[:, j].astype(np.int64)
        if huffman:
            d = x.copy()
            d[2:] = x[2:] - 2 * x[1:-1] + x[:-2]
            blocks.append(_huffman_default(d))
        else:
            blocks.append(x.astype("<i2").tobytes())
    s6 = struct.pack("<HHBB", int(round(uv * 1000)), int(round(1e6 / fs)), 2 if huffman else 0, 0)
    s6 += struct.pack(f"<{len(leads)}H", *map(len, blocks)) + b"".join(blocks)
    bodies = {1: s1, 3: s3, 6: s6}
    if huffman:
        bodies[2] = s2
    ids = list(range(12))
    s0_len = 16 + 10 * len(ids)
    pos = 6 + s0_len + 1  # 1-based index of the next section
    pointers, chunks = [], []
    for sid in ids:
        if sid == 0:
            pointers.append(struct.pack("<HII", 0, s0_len, 7))
        elif sid in bodies:
            chunk = _section(sid, bodies[sid])
            pointers.append(struct.pack("<HII", sid, len(chunk), pos))
            chunks.append(chunk)
            pos += len(chunk)
        else:
            pointers.append(struct.pack("<HII", sid, 0, 0))
    s0 = struct.pack("<HHIBB", 0, 0, s0_len, 20, 20) + b"SCPECG" + b"".join(pointers)
    body = s0 + b"".join(chunks)
    path.write_bytes(struct.pack("<HI", 0, 6 + len(body)) + body)
    return path


# --------------------------------------------------------------------------- ISHNE
_ISHNE_CODES = {"I": 5, "II": 6, "III": 7, "aVR": 8, "aVL": 9, "aVF": 10, "V1": 11, "V2": 12, "V3": 13,
                "V4": 14, "V5": 15, "V6": 16}


def write_ishne(path: Path, raw, uv, fs, leads=LEADS, sex=2) -> Path:
    """ISHNE Holter 1.0 (Badilini, Ann Noninvasive Electrocardiol 1998;3:263-266): magic, CRC,
    512-byte header (resolution in nV per lead), then int16 samples interleaved by lead."""
    n_leads = len(leads)
    pad = lambda v, k: list(v) + [0] * (k - len(v))  # noqa: E731
    header = struct.pack("<iiiih40s40s20shh3h3h3h3hh12h12h12hh40sh80s80s88s", 0, len(raw), 522, 522, 1, b"", b"",
                         b"", sex, 0, 1, 1, 1970, 1, 1, 2020, 1, 1, 2020, 0, 0, 0, n_leads,
                         *pad([_ISHNE_CODES[x] for x in leads], 12), *pad([1] * n_leads, 12),
                         *pad([int(round(uv * 1000))] * n_leads, 12), 0, b"test", int(fs), b"", b"", b"")
    assert len(header) == 512
    with open(path, "wb") as f:
        f.write(b"ISHNE1.0" + b"\0\0" + header)
        f.write(np.ascontiguousarray(raw, dtype="<i2").tobytes())
    return path


WRITERS = {"edf": (write_edf, ".edf"), "hl7": (write_hl7_aecg, ".xml"), "muse": (write_muse, ".xml"),
           "philips": (write_philips, ".xml"), "scp": (write_scp, ".scp"), "ishne": (write_ishne, ".ecg")}

"""SCP-ECG (EN 1064:2005 / ISO 11073-91064) rhythm data.

A record is a CRC and size, then sections: 0 (pointers), 1 (patient tags: age, sex), 2 (Huffman
tables), 3 (leads), 6 (rhythm samples). The rhythm samples are decoded as the standard says:
Huffman codes (the default table 19999 or the file's own tables, with table switches), then
first or second differences undone, then x amplitude multiplier (nV). Records stored as residuals
after reference-beat subtraction or with bimodal compression are refused (their reconstruction
needs sections 4 and 5; they are rare in exports).

Hand-written: no maintained Python package decodes SCP-ECG without pulling in much more (see
docs/DATA.md); the decoding is ~120 lines.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ecg_keras.io.base import DataError
from ecg_keras.io.base import Record, check_fs

#: Lead identification codes of section 3 (EN 1064 table 19), 0-86.
LEAD_CODES = (
    "unspecified", "I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "V7", "V2R", "V3R", "V4R", "V5R", "V6R", "V7R",
    "X", "Y", "Z", "CC5", "CM5", "LA", "RA", "LL", "fI", "fE", "fC", "fA", "fM", "fF", "fH",
    "I-cal", "II-cal", "V1-cal", "V2-cal", "V3-cal", "V4-cal", "V5-cal", "V6-cal", "V7-cal", "V2R-cal", "V3R-cal",
    "V4R-cal", "V5R-cal", "V6R-cal", "V7R-cal", "X-cal", "Y-cal", "Z-cal", "CC5-cal", "CM5-cal", "LA-cal", "RA-cal",
    "LL-cal", "fI-cal", "fE-cal", "fC-cal", "fA-cal", "fM-cal", "fF-cal", "fH-cal",
    "III", "aVR", "aVL", "aVF", "-aVR", "V8", "V9", "V8R", "V9R", "D", "A", "J", "Defib", "ExtPace",
    "A1", "A2", "A3", "A4", "V8-cal", "V9-cal", "V8R-cal", "V9R-cal", "D-cal", "A-cal", "J-cal")
DEFAULT_TABLE = 19999
SECTION_HEADER = 16


def is_scp(head: bytes, size: int) -> bool:
    """Section 0 at byte 6 (id 0; ``SCPECG`` in its reserved field from version 2) and the record
    size field equal to the file size."""
    if len(head) < 22:
        return False
    record_size = struct.unpack_from("<I", head, 2)[0]
    section_id = struct.unpack_from("<H", head, 8)[0]
    return section_id == 0 and (head[16:22] == b"SCPECG" or record_size == size)


def _default_codes() -> dict[tuple[int, int], tuple[int, int, int]]:
    """(prefix length, prefix) -> (total bits, mode, value) of the standard's default table."""
    codes = {(1, 0): (1, 1, 0)}
    for m in range(1, 9):
        ones = (1 << m) - 1
        codes[(m + 2, ones << 2)] = (m + 2, 1, m)
        codes[(m + 2, (ones << 2) | 1)] = (m + 2, 1, -m)
    codes[(10, 0b1111111110)] = (18, 1, 0)  # followed by an 8-bit value
    codes[(10, 0b1111111111)] = (26, 1, 0)  # followed by a 16-bit value
    return codes


def _tables(body: bytes, where) -> list[dict]:
    count = struct.unpack_from("<H", body, 0)[0]
    if count == DEFAULT_TABLE:
        return [_default_codes()]
    tables, pos = [], 2
    for _ in range(count):
        n = struct.unpack_from("<H", body, pos)[0]
        pos += 2
        table = {}
        for _ in range(n):
            prefix, total, mode, value, stored = struct.unpack_from("<BBBhI", body, pos)
            pos += 9
            if not 1 <= prefix <= 32 or total < prefix:
                raise DataError(f"{where}: SCP Huffman code of {prefix} prefix / {total} total bits")
            code = int(format(stored & ((1 << prefix) - 1), f"0{prefix}b")[::-1], 2)  # stored bit-reversed
            table[(prefix, code)] = (total, mode, value)
        tables.append(table)
    if not tables:
        raise DataError(f"{where}: SCP section 2 holds no Huffman table")
    return tables


def _huffman(data: bytes, count: int, tables: list[dict], where) -> np.ndarray:
    if count > 8 * len(data):  # every code is at least one bit
        raise DataError(f"{where}: SCP lead of {count} samples in {len(data)} bytes of Huffman data")
    bits = np.unpackbits(np.frombuffer(data, np.uint8)).tolist()
    n_bits, out, pos, table = len(bits), np.empty(count, np.int64), 0, tables[0]
    longest = max(p for p, _ in table)
    k = 0
    while k < count:
        code = length = 0
        while True:
            if pos >= n_bits:
                raise DataError(f"{where}: SCP Huffman data ends after {k} of {count} samples")
            code = (code << 1) | bits[pos]
            pos += 1
            length += 1
            entry = table.get((length, code))
            if entry is not None:
                break
            if length >= longest:
                raise DataError(f"{where}: invalid SCP Huffman code at bit {pos}")
        total, mode, value = entry
        if mode == 0:  # switch table
            if not 1 <= value <= len(tables):
                raise DataError(f"{where}: SCP switch to Huffman table {value} of {len(tables)}")
            table = tables[value - 1]
            longest = max(p for p, _ in table)
            continue
        extra = total - length
        if extra:
            if pos + extra > n_bits:
                raise DataError(f"{where}: SCP Huffman data ends after {k} of {count} samples")
            raw = 0
            for b in bits[pos:pos + extra]:
                raw = (raw << 1) | b
            value = raw - (1 << extra) if raw >= 1 << (extra - 1) else raw
            pos += extra
        out[k] = value
        k += 1
    return out


def _undifference(d: np.ndarray, mode: int) -> np.ndarray:
    if mode == 1:
        x = np.cumsum(d)
    elif mode == 2 and len(d) > 2:
        slope = np.concatenate(([d[1] - d[0]], d[1] - d[0] + np.cumsum(d[2:])))
        x = np.concatenate(([d[0]], d[0] + np.cumsum(slope)))
    else:
        x = d
    return x.astype(np.int16).astype(np.float64)  # encoders difference in 16-bit arithmetic


def read_scp(path: Path) -> Record:
    data = path.read_bytes()
    where = path
    if not is_scp(data[:64], len(data)):
        raise DataError(f"{path}: not an SCP-ECG record (no section 0 at byte 6)")
    s0_len = struct.unpack_from("<I", data, 10)[0]
    sections = {}
    for pos in range(6 + SECTION_HEADER, min(6 + s0_len, len(data)) - 9, 10):
        sid, length, index = struct.unpack_from("<HII", data, pos)
        if length and index:
            start = index - 1 + SECTION_HEADER
            if index < 1 or start > len(data) or index - 1 + length > len(data) or length < SECTION_HEADER:
                raise DataError(f"{path}: SCP section {sid} ({length} bytes at {index}) outside the file")
            sections[sid] = data[start:index - 1 + length]
    for needed in (3, 6):
        if needed not in sections:
            raise DataError(f"{path}: SCP-ECG record without section {needed} "
                            f"({'lead definitions' if needed == 3 else 'rhythm data'})")
    s3 = sections[3]
    n_leads, flags = s3[0], s3[1]
    if n_leads == 0 or len(s3) < 2 + 9 * n_leads:
        raise DataError(f"{path}: SCP section 3 declares {n_leads} leads in {len(s3)} bytes")
    leads = [struct.unpack_from("<IIB", s3, 2 + 9 * j) for j in range(n_leads)]
    s6 = sections[6]
    multiplier, interval, diff, bimodal = struct.unpack_from("<HHBB", s6, 0)
    if flags & 1 or bimodal:
        raise DataError(f"{path}: SCP rhythm data stored with reference-beat subtraction or bimodal "
                        "compression; not supported")
    if multiplier == 0 or diff > 2:
        raise DataError(f"{path}: SCP section 6 amplitude multiplier {multiplier} nV, difference mode {diff}")
    fs = check_fs(1e6 / interval if interval else 0, path)
    lengths = struct.unpack_from(f"<{n_leads}H", s6, 6)
    pos = 6 + 2 * n_leads
    tables = _tables(sections[2], where) if sections.get(2) else None
    columns = []
    for (start, end, _), n_bytes in zip(leads, lengths):
        count = end - start + 1
        if count <= 0 or count > 10**8:
            raise DataError(f"{path}: SCP lead of samples {start}-{end}")
        block = s6[pos:pos + n_bytes]
        pos += n_bytes
        if len(block) < n_bytes:
            raise DataError(f"{path}: SCP rhythm data truncated")
        if tables is None:
            if n_bytes < 2 * count:
                raise DataError(f"{path}: SCP lead of {count} samples in {n_bytes} bytes")
            d = np.frombuffer(block[:2 * count], "<i2").astype(np.int64)
        else:
            d = _huffman(block, count, tables, where)
        columns.append(_undifference(d, diff) * multiplier * 1e-6)
    if len({len(c) for c in columns}) != 1:
        raise DataError(f"{path}: SCP leads of different lengths")
    names = [LEAD_CODES[c] if c < len(LEAD_CODES) else f"code {c}" for *_, c in leads]
    age, sex = _patient(sections.get(1, b""))
    return Record(str(path), path, np.stack(columns, axis=1), fs, names, age=age, sex=sex)


def _patient(s1: bytes) -> tuple[float | None, str | None]:
    """Age (tag 4: value, unit 1 = years) and sex (tag 5: 1 male, 2 female) of section 1."""
    age = sex = None
    pos = 0
    while pos + 3 <= len(s1):
        tag, length = s1[pos], struct.unpack_from("<H", s1, pos + 1)[0]
        value = s1[pos + 3:pos + 3 + length]
        if tag == 255:
            break
        if tag == 4 and len(value) >= 3 and value[2] == 1:
            age = float(struct.unpack_from("<H", value, 0)[0])
        elif tag == 5 and value:
            sex = {1: "M", 2: "F"}.get(value[0])
        pos += 3 + length
    return age, sex

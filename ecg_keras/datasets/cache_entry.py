"""One entry of the signal cache (``ecg_keras.datasets.cache``): its key (directory name), its
files' size/CRC-32 record in ``info.json``, and opening a valid entry memory-mapped."""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.datasets.base import DataError
from ecg_keras.files import open_nofollow

CACHE_VERSION = 2  # 2: info.json records the size and CRC-32 of each array file
ARRAY_FILES = ("signals.npy", "lengths.npy")
_HASH_CHUNK = 1 << 24


@dataclass(frozen=True)
class CacheKey:
    dataset: str
    sampling_rate: int
    digest: str

    @property
    def dirname(self) -> str:
        return f"{self.dataset}-{self.sampling_rate}hz-{self.digest}"


def make_key(dataset: str, sampling_rate: int, files: Sequence[Path], root: Path,
             extra: str = "") -> CacheKey:
    """Key over the ordered file list (paths relative to ``root``, sizes, mtimes).

    Raises DataError naming the first missing file.
    """
    h = hashlib.sha256(f"v{CACHE_VERSION}|{dataset}|{sampling_rate}|{extra}".encode())
    root = Path(root)
    for f in files:
        try:
            st = os.stat(f)
        except FileNotFoundError:
            raise DataError(f"{f}: file is missing") from None
        try:
            rel = Path(f).relative_to(root).as_posix()
        except ValueError:
            rel = str(f)
        h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    return CacheKey(safe, int(sampling_rate), h.hexdigest()[:16])



def create_new(path: Path):
    """A new file of the entry being built, opened for binary writing (never an existing file or link)."""
    return os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb")



def file_record(path: Path) -> dict:
    """``{"size": bytes, "crc32": int}`` of a file (read sequentially in 16 MB chunks)."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return {"size": size, "crc32": crc}


def write_info(out_dir: Path, n: int) -> None:
    """info.json: layout (from the files present) and the size/CRC-32 record of every array."""
    layout = "variable" if (out_dir / "lengths.npy").exists() else "fixed"
    files = {name: file_record(out_dir / name) for name in ARRAY_FILES if (out_dir / name).exists()}
    info = {"version": CACHE_VERSION, "n_records": n, "layout": layout, "files": files}
    with create_new(out_dir / "info.json") as f:
        f.write(json.dumps(info).encode())
        f.flush()
        os.fsync(f.fileno())


def _files_match(entry: Path, info: dict) -> bool:
    """Every array file the layout needs exists with the recorded size and CRC-32."""
    files = info.get("files")
    needed = ("signals.npy",) if info.get("layout") == "fixed" else ARRAY_FILES
    if not isinstance(files, dict) or any(name not in files for name in needed):
        return False
    for name in needed:
        want = files[name]
        path = entry / name
        if os.stat(path).st_size != want.get("size") or file_record(path) != want:
            return False
    return True


def open_entry(entry: Path, n: int):
    """The cached signals, or None when the entry is absent, stale or unreadable."""
    try:
        info = json.loads((entry / "info.json").read_text())
        if info.get("version") != CACHE_VERSION or info.get("n_records") != n:
            return None
        if not _files_match(entry, info):
            return None
        data = np.load(entry / "signals.npy", mmap_mode="r")
        if info["layout"] == "fixed":
            return data if data.shape[0] == n and data.ndim == 3 else None
        lengths = np.load(entry / "lengths.npy")
        if len(lengths) != n or int(lengths.sum()) != data.shape[0]:
            return None
        ends = np.cumsum(lengths)
        return [data[e - l:e] for e, l in zip(ends, lengths)]
    except Exception:  # noqa: BLE001 - any damage (EOFError of a 0-byte file, ...) means "rebuild"
        return None


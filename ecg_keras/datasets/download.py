"""Download and extract the public datasets (:func:`ecg_keras.net.download`: connect/read timeout,
deadline and size cap; zip archives extracted member by member inside their folder).

Sources (``SOURCES``):

* ``ptbxl``: the PTB-XL 1.0.3 zip published by PhysioNet (CC-BY 4.0, ~1.7 GB),
  ``https://physionet.org/static/published-projects/ptb-xl/<zip>``. PhysioNet publishes no
  hash of the zip itself, so none is pinned; instead, after extraction every file listed in
  the archive's ``SHA256SUMS.txt`` is checked (``verify=True``), and a known sha256 can be
  passed with ``file_hashes``.
* ``icbeb2018``: the original CPSC 2018 training set from the challenge site
  ``http://2018.icbeb.org/file/``: ``REFERENCE.csv`` and ``TrainingSet1.zip``,
  ``TrainingSet2.zip``, ``TrainingSet3.zip`` (6,877 ``A####.mat`` files; research use). No
  hashes are published for them either. If the site is unreachable, the same records in the
  CinC 2020 layout (``cpsc_2018`` of the PhysioNet/CinC Challenge 2020 training data) load
  with ``load_icbeb2018`` too; fetch them yourself and point the loader at the folder.

The base URL of every source can be overridden with ``base_url=`` or the environment
variable ``ECG_KERAS_DOWNLOAD_URL`` (used by the tests to serve a small archive from
127.0.0.1). A hash mismatch deletes the downloaded file and raises DataError; so does any
failed or refused download or extraction, which leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ecg_keras.datasets.base import DataError
from ecg_keras.datasets.cache import default_data_root
from ecg_keras.paths import UnsafePathError, inside, sha256
from ecg_keras.files import write_text

BASE_URL_ENV = "ECG_KERAS_DOWNLOAD_URL"
#: Bounds of every dataset download: seconds for the connection and each read, seconds for the
#: whole file, bytes per file (PTB-XL 1.0.3's zip is ~1.7 GB), bytes extracted per archive.
DOWNLOAD_TIMEOUT, DOWNLOAD_DEADLINE = 60.0, 6 * 3600.0
MAX_DOWNLOAD_BYTES, MAX_EXTRACTED_BYTES = 8 << 30, 32 << 30
PTBXL_ZIP = "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3.zip"


@dataclass(frozen=True)
class RemoteFile:
    name: str                    # file name under the base URL
    local: str                   # file name (or extraction folder, for archives) under dest
    extract: bool = False
    file_hash: str | None = None  # sha256 when published


@dataclass(frozen=True)
class Source:
    base_url: str
    files: tuple[RemoteFile, ...]
    marker: str                  # a file that identifies the dataset root once extracted
    licence: str


SOURCES = {
    "ptbxl": Source(
        "https://physionet.org/static/published-projects/ptb-xl/",
        (RemoteFile(PTBXL_ZIP, "ptbxl", extract=True),),
        marker="ptbxl_database.csv", licence="CC-BY 4.0"),
    "icbeb2018": Source(
        "http://2018.icbeb.org/file/",
        (RemoteFile("REFERENCE.csv", "REFERENCE.csv"),
         RemoteFile("TrainingSet1.zip", "TrainingSet1", extract=True),
         RemoteFile("TrainingSet2.zip", "TrainingSet2", extract=True),
         RemoteFile("TrainingSet3.zip", "TrainingSet3", extract=True)),
        marker="REFERENCE.csv", licence="CPSC 2018 challenge data, research use"),
}



def find_root(dest: Path, marker: str) -> Path | None:
    """The shallowest folder under ``dest`` holding ``marker``."""
    if (dest / marker).is_file():
        return dest
    hits = sorted(dest.rglob(marker), key=lambda p: (len(p.parts), str(p)))
    return hits[0].parent if hits else None


def verify_sha256sums(root: Path) -> int:
    """Check every file listed in ``root/SHA256SUMS.txt`` (PhysioNet); returns how many."""
    sums = root / "SHA256SUMS.txt"
    if not sums.is_file():
        return 0
    count = 0
    for line in sums.read_text().splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            continue
        expected, name = parts[0].lower(), parts[1].lstrip("*")
        try:
            path = inside(root, name, f"file name in {sums}")
        except UnsafePathError as err:
            raise DataError(str(err)) from None
        if not path.is_file():
            raise DataError(f"{path}: listed in {sums} but missing after extraction")
        if sha256(path) != expected:
            raise DataError(f"{path}: sha256 differs from {sums}; the download is corrupt")
        count += 1
    return count


VERIFIED = ".ecg_keras_verified"


def download(name: str, dest=None, *, base_url: str | None = None, file_hashes: dict | None = None,
             force: bool = False, verify: bool = True) -> Path:
    """Download and extract dataset ``name`` (``ptbxl`` or ``icbeb2018``) into ``dest``.

    ``dest`` defaults to ``default_data_root() / name``. Returns the dataset root (the folder
    to pass to ``load_ptbxl`` / ``load_icbeb2018``). Already-present data is reused unless
    ``force``. ``file_hashes`` maps remote file names to expected sha256 (or md5) digests.
    The data must be verifiable: every file has a known hash, or the extracted tree has
    PhysioNet's ``SHA256SUMS.txt``; otherwise a DataError, unless ``verify=False``.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; one of {sorted(SOURCES)}")
    source = SOURCES[name]
    dest = Path(dest).expanduser().resolve() if dest is not None else default_data_root() / name
    dest.mkdir(parents=True, exist_ok=True)
    if not force:
        root = find_root(dest, source.marker)
        if root is not None:
            if verify and not (root / VERIFIED).exists():
                _verify(root, name, unhashed=[f.name for f in source.files])
            return root
    base = base_url or os.environ.get(BASE_URL_ENV) or source.base_url
    base = base if base.endswith("/") else base + "/"
    hashes = dict(file_hashes or {})
    for remote in source.files:
        url, expected = base + remote.name, hashes.get(remote.name, remote.file_hash)
        target = dest / (f"{remote.local}_archive" if remote.extract else remote.local)
        _fetch(url, target, expected)
        if remote.extract:
            try:
                _extract_zip(target, dest / remote.local, url)
            finally:
                target.unlink(missing_ok=True)
    root = find_root(dest, source.marker)
    if root is None:
        raise DataError(f"{dest}: downloaded {name} but found no {source.marker}")
    if verify:
        _verify(root, name, unhashed=[f.name for f in source.files if not hashes.get(f.name, f.file_hash)])
    return root


def _verify(root: Path, name: str, unhashed: list[str]) -> None:
    """Check SHA256SUMS.txt; without it, every file must have had a known hash. Marks success."""
    if not verify_sha256sums(root) and unhashed:
        raise DataError(f"{root}: {name} cannot be verified: no SHA256SUMS.txt and no known hash for "
                        f"{', '.join(unhashed)}; pass --hash FILE=SHA256 for each, or --no-verify "
                        "(download(..., verify=False)) to accept unverified data")
    write_text(root / VERIFIED, "sha256 verified\n")


def _fetch(url: str, target: Path, expected: str | None) -> None:
    """``url`` into ``target`` (bounded; sha256 or md5 ``expected`` checked before it is kept)."""
    from ecg_keras.net import ChecksumError, DownloadError, download

    expected = expected.lower() if expected else None
    try:
        download(url, target, expected if expected and len(expected) == 64 else None,
                 timeout=DOWNLOAD_TIMEOUT, deadline=DOWNLOAD_DEADLINE, max_bytes=MAX_DOWNLOAD_BYTES)
    except ChecksumError:
        raise DataError(f"{url}: checksum mismatch, expected {expected}; the downloaded file was deleted") from None
    except DownloadError as e:
        raise DataError(str(e)) from None
    if expected and len(expected) == 32:
        md5 = hashlib.md5()
        with open(target, "rb") as f:
            while chunk := f.read(1 << 20):
                md5.update(chunk)
        if md5.hexdigest() != expected:
            target.unlink(missing_ok=True)
            raise DataError(f"{url}: checksum mismatch, expected {expected}; the downloaded file was deleted")


def _extract_zip(archive: Path, folder: Path, url: str) -> None:
    """Extract the zip ``archive`` into ``folder``: every member must stay inside it, no links, at
    most :data:`MAX_EXTRACTED_BYTES` in all; written to a temporary folder renamed at the end."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            for m in members:
                inside(folder, m.filename.rstrip("/") or ".", f"member of {url}")
                if (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafePathError(f"member {m.filename!r} of {url} is a symbolic link")
            if sum(m.file_size for m in members) > MAX_EXTRACTED_BYTES:
                raise DataError(f"{url}: the archive would extract to more than {MAX_EXTRACTED_BYTES} bytes")
            tmp.mkdir()
            z.extractall(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except (zipfile.BadZipFile, UnsafePathError, OSError, EOFError) as e:
        raise DataError(f"{url}: not an archive that could be extracted ({e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Paths built from untrusted names: release names, manifest ``file`` fields, download names.

A name read from a manifest or typed by a user must never reach outside the directory it is
joined to (``../../.bashrc``, absolute paths, symlinks pointing out). Every such join goes
through :func:`inside`.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ecg_keras.errors import ECGKerasError

#: What a release name (and so the stem of its files) may look like.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class UnsafePathError(ECGKerasError, ValueError):
    """A name would resolve outside the directory it belongs to."""


def check_name(name: str, what: str = "release name") -> str:
    """``name`` if it matches ``[A-Za-z0-9][A-Za-z0-9._-]*`` (and is not ``.``-only), else raise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise UnsafePathError(f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-', "
                              "starting with a letter or digit (no path separators, no '..')")
    return name


def inside(directory: str | Path, relative: str, what: str = "file name") -> Path:
    """``directory / relative``, refusing anything that resolves outside ``directory``."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise UnsafePathError(f"invalid {what} {relative!r}")
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise UnsafePathError(f"{what} {relative!r} must be a plain name inside {directory}")
    base = Path(directory).resolve()
    path = (base / rel).resolve()
    if path != base and base not in path.parents:
        raise UnsafePathError(f"{what} {relative!r} resolves to {path}, outside {base}")
    return base / rel


def umask() -> int:
    """The process's file-mode creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path, base: int = 0o666) -> None:
    """Give ``path`` the mode a plain create would have (``base & ~umask``). Temporary files and
    folders are created 0600/0700; what replaces a user's file must be readable like one (e.g. a
    SavedModel served by TF Serving under another user, a cache shared by a lab)."""
    os.chmod(path, base & ~umask())


def sha256(*paths: str | Path) -> str:
    """Hex sha256 of a file (or of several files read one after another)."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()

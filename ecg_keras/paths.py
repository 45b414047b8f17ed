"""Paths built from untrusted names: release names, manifest ``file`` fields, download names.

A name read from a manifest or typed by a user must never reach outside the directory it is
joined to (``../../.bashrc``, absolute paths, symlinks pointing out). Every such join goes
through :func:`inside`.
"""
from __future__ import annotations

import re
from pathlib import Path

#: What a release name (and so the stem of its files) may look like.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class UnsafePathError(ValueError):
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

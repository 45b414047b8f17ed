"""Every file the package writes or locks is opened here, never through a planted final symlink.

* :func:`atomic_path` / :func:`write_text` / :func:`write_bytes`: write to a temporary file next
  to the target and rename it onto the target (a rename replaces a link, never its target), so a
  killed process leaves the old or the new version, never a torn file;
* :func:`open_nofollow`: ``os.open`` with ``O_NOFOLLOW`` (lock files, append-only logs,
  :func:`write_plain` for bulk outputs);
* both refuse a target that exists and is not a regular file (a symbolic link, a FIFO, a device,
  a directory) with :class:`UnsafeFileError`, naming it.

Below everything (standard library and :mod:`ecg_keras.paths` only).
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ecg_keras.errors import ECGKerasError
from ecg_keras.paths import follow_umask


class UnsafeFileError(ECGKerasError, FileExistsError):
    """Something other than a regular file (a symbolic link, FIFO, device, directory) sits where a
    file would be written or locked; nothing is written through it."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _refuse(path, mode: int) -> UnsafeFileError:
    return UnsafeFileError(f"{path} is {_kind(mode)}; refusing to write through it (remove it or choose "
                           "another path)")


def _lstat_mode(path: Path) -> int | None:
    """The mode of ``path`` itself (a link is not followed), None when nothing is there."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def check_regular(path: str | Path) -> Path:
    """``path`` if it does not exist or is a regular file (not followed if it is a link), else raise."""
    path = Path(path)
    mode = _lstat_mode(path)
    if mode is not None and not stat.S_ISREG(mode):
        raise _refuse(path, mode)
    return path


def check_directory(path: str | Path) -> Path:
    """``path`` if it does not exist or is a real directory (not a link to one), else raise: for
    folders that a library writes files into by itself (TensorBoard's event files)."""
    path = Path(path)
    mode = _lstat_mode(path)
    if mode is not None and not stat.S_ISDIR(mode):
        raise UnsafeFileError(f"{path} is {_kind(mode)}, not a directory; refusing to write into it "
                              "(remove it or choose another path)")
    return path


def open_nofollow(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``; a link, FIFO, device or directory is refused."""
    try:  # O_NONBLOCK: opening a planted FIFO must not hang (no effect on regular files)
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as err:
        if err.errno == errno.ELOOP or os.path.islink(path):
            raise _refuse(path, stat.S_IFLNK) from None
        if os.path.isdir(path):
            raise _refuse(path, stat.S_IFDIR) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _refuse(path, st.st_mode)
    os.set_blocking(fd, True)
    return fd


def open_append(path: str | Path, encoding: str = "utf-8"):
    """A line-buffered text file opened for appending (created if missing), never through a link."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", buffering=1, encoding=encoding)


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``path`` must not exist or be a regular file (:func:`check_regular`). The temporary file gets
    the mode a plain create would have (the umask's).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_regular(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
                               dir=path.parent)
    os.close(fd)
    follow_umask(tmp)  # mkstemp creates 0600
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check_regular(path)  # planted while the block ran: refused too
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_plain(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` into ``path`` in place (no temporary file, no fsync: bulk outputs such as a
    generated data set), through :func:`open_nofollow`."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


__all__ = ["UnsafeFileError", "atomic_path", "check_regular", "open_append", "open_nofollow", "write_bytes",
           "write_plain", "write_text"]

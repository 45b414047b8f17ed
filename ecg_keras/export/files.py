"""Writing export artifacts without destroying a previous good one (issue #19).

* A file (ONNX) is written to a temporary name next to the target
  (:func:`ecg_keras.files.atomic_path`: a planted link or other non-regular file is refused) and renamed onto it.
* A directory (a SavedModel version) is built in a temporary directory next to the target and
  renamed into place; an existing version is first renamed aside and deleted only once the new
  one is in place.

An existing target is kept unless ``overwrite=True`` (``--overwrite`` on the command line). If the
writer fails (disk full, an exception, Ctrl-C) the previous file or directory stays as it was and
the temporary files are removed. A full disk (ENOSPC) becomes :class:`ExportError`, whose message
says so, instead of a traceback.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ecg_keras.errors import ECGKerasError
from ecg_keras.files import atomic_path
from ecg_keras.paths import follow_umask


class ExportError(ECGKerasError, RuntimeError):
    """An export could not be written (e.g. disk full); the previous artifact is unchanged."""


def _is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # TensorFlow's file system layer raises tf.errors.OpError subclasses, not OSError.
    text = str(err)
    return type(err).__module__.startswith("tensorflow") and ("No space left" in text or "quota" in text.lower())


def _disk_full(path: Path, err: BaseException) -> ExportError:
    state = "the previous version is unchanged" if path.exists() else "nothing was written"
    return ExportError(f"no space left on the device while writing {path} ({err}); {state} and the temporary "
                       "files were removed. Free some space or choose another output location.")


def check_target(path: str | Path, overwrite: bool, hint: str = "pass overwrite=True to replace it") -> Path:
    """``path``, or FileExistsError when it exists and ``overwrite`` is false (``hint`` says what to do)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; {hint}")
    return path


@contextmanager
def replace_file(path: str | Path, *, overwrite: bool = False):
    """Yield a temporary file path next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = check_target(path, overwrite)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a file")
    try:
        with atomic_path(path) as tmp:  # created with the umask's mode
            yield tmp
    except Exception as err:
        if _is_disk_full(err):
            raise _disk_full(path, err) from err
        raise


@contextmanager
def replace_directory(path: str | Path, *, overwrite: bool = False):
    """Yield a temporary directory next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = check_target(path, overwrite)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = None
    try:
        try:
            yield tmp
        except Exception as err:
            if _is_disk_full(err):
                raise _disk_full(path, err) from err
            raise
        follow_umask(tmp, 0o777)
        if path.exists():  # keep the old version until the new one is in place
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and (old / path.name).exists() and not path.exists():
            os.replace(old / path.name, path)  # the rename of the new version failed: restore
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["ExportError", "check_target", "replace_directory", "replace_file"]

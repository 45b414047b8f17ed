"""The package's errors and the exit codes of its commands (below every other module: imports nothing).

Every error ecg_keras raises on purpose is an :class:`ECGKerasError`; each one also keeps the
builtin base its callers catch (``DataError`` is a ``ValueError``, ``RunFileMissing`` a
``FileNotFoundError``, ``UnsafeFileError`` a ``FileExistsError`` ...), so
``except ECGKerasError`` catches the package's own errors and ``except ValueError`` still works.

Every ``ecg-keras`` command runs through :func:`ecg_keras.cli.command`, which turns an error
into one ``error: ...`` line on stderr and the exit code :func:`exit_code` gives
(the table in docs/CLI.md):

====  =====================================================================================
0     done (``predict``: every record valid)
1     a data error or a run failure: an input that is missing, damaged or refused (dataset,
      record, run directory, checkpoint, model), a ``predict`` record that is invalid, or a run
      that failed (lock held, divergence, output exists without ``--overwrite``, disk full)
2     a usage error: the command line itself is wrong (unknown option, invalid or
      conflicting values), found before any input is read
====  =====================================================================================
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class ECGKerasError(Exception):
    """Base of the errors ecg_keras raises on purpose; the message names the file or option at fault."""


class UsageError(ECGKerasError, ValueError):
    """A command line that asks for something impossible (invalid or conflicting option values)."""


def exit_code(error: BaseException) -> int | None:
    """The exit code for ``error`` raised by a command, or None when it is not an expected failure.

    Besides the package's own errors, ``OSError`` (a full disk, a permission) and the
    ``ValueError``/``RuntimeError`` of the libraries underneath (an unreadable file) are
    failures of the run, not of the command line.
    """
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, (ECGKerasError, OSError, ValueError, RuntimeError)):
        return EXIT_FAILURE
    return None


__all__ = ["ECGKerasError", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "exit_code"]

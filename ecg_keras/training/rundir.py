"""Training's side of the run directory: per-epoch checkpoints, resume, the writer lock.

The file names, the layout and the file-level writes (config, classes, standardiser,
``model.keras``, predictions, COMPLETE) are :mod:`ecg_keras.artefact` (:class:`ecg_keras.artefact.RunDir`,
re-exported here); the reader is :func:`ecg_keras.runs.resolve`. Checkpoints are
``checkpoints/epoch_NNN.npz`` (model + optimiser variables, incl. RNG seed state) and
``latest.json`` (pointer + history so far), the newest ``keep`` epochs.

Every file is written to a temporary name and renamed, so a killed process leaves either the
old or the new version, never a torn file. Files get the modes the user's umask allows.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
from keras import ops

from ecg_keras import artefact, files
from ecg_keras.errors import ECGKerasError
from ecg_keras.artefact import COMPLETE, LOCK, write_json, write_npz  # noqa: F401  (re-exported)
from ecg_keras.files import atomic_path, write_text  # noqa: F401  (the run writers' temp-and-rename, re-exported)


class RunDir(artefact.RunDir):
    """Paths and state of one run directory, with training's checkpoints."""

    # ------------------------------------------------------------------ checkpoints
    def latest_checkpoint(self) -> dict | None:
        """The ``latest.json`` record ({"epoch", "file", "iterations", "history"}) or None."""
        pointer = self.checkpoints / "latest.json"
        if not pointer.exists():
            return None
        info = json.loads(pointer.read_text())
        if not (self.checkpoints / info["file"]).exists():
            raise FileNotFoundError(f"checkpoint {info['file']} named by {pointer} is missing")
        return info

    def save_checkpoint(self, model: keras.Model, epoch: int, history: list[dict], keep: int = 2) -> Path:
        """Save model variables (incl. BN statistics and dropout seed state) and optimiser variables
        (incl. the step count that drives the schedule) after ``epoch`` finished epochs."""
        name = f"epoch_{epoch:03d}.npz"
        arrays = {f"model_{i:05d}": ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
        arrays.update({f"opt_{i:05d}": ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)})
        write_npz(self.checkpoints / name, **arrays)
        iterations = int(ops.convert_to_numpy(model.optimizer.iterations))
        write_json(self.checkpoints / "latest.json",
                   {"epoch": epoch, "file": name, "iterations": iterations, "history": history,
                    "saved": time.strftime("%Y-%m-%dT%H:%M:%S")})
        for old in sorted(self.checkpoints.glob("epoch_*.npz"))[:-keep] if keep > 0 else []:
            old.unlink(missing_ok=True)
        return self.checkpoints / name

    def restore_checkpoint(self, model: keras.Model, info: dict, optimizer: bool = True) -> None:
        """Assign the variables saved by :meth:`save_checkpoint` (optimiser must be built);
        ``optimizer=False`` restores the model only (a finetuning phase that starts afresh)."""
        with np.load(self.checkpoints / info["file"]) as z:
            _assign(model.variables, z, "model", self.checkpoints / info["file"])
            if optimizer:
                _assign(model.optimizer.variables, z, "opt", self.checkpoints / info["file"])


def _assign(variables, z, prefix: str, path: Path) -> None:
    keys = sorted(k for k in z.files if k.startswith(prefix + "_"))
    if len(keys) != len(variables):
        raise ValueError(f"{path}: {len(keys)} saved {prefix} variables but the model has {len(variables)}; "
                         "was it saved with another architecture or configuration?")
    for key, var in zip(keys, variables):
        value = z[key]
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"{path}: {key} has shape {value.shape}, variable {var.path} has {var.shape}")
        var.assign(value)


class Checkpointer(keras.callbacks.Callback):
    """Checkpoint after every epoch; ``history`` is the list of epoch rows to store alongside."""

    def __init__(self, run: RunDir, history: list[dict], keep: int = 2):
        super().__init__()
        self.run, self.history, self.keep = run, history, keep

    def on_epoch_end(self, epoch, logs=None):
        self.run.save_checkpoint(self.model, epoch + 1, self.history, keep=self.keep)


# ---------------------------------------------------------------------- writer lock
class RunLockedError(ECGKerasError, RuntimeError):
    """Another process is writing this run directory."""


class RunLock:
    """Exclusive lock on a run directory: ``RUN/.lock``, ``flock``-ed while held, holding the
    holder's pid and host. ``flock`` ends with its process, so a lock left by a killed process is
    recovered (with a message); a lock file written on another host is respected."""

    def __init__(self, directory: str | Path, log=print):
        self.directory, self.log, self.fd = Path(directory), log, None
        self.path = self.directory / LOCK

    def __enter__(self) -> "RunLock":
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = files.open_nofollow(self.path, os.O_RDWR | os.O_CREAT)  # a planted link is refused
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_lock(fd)
                os.close(fd)
                raise RunLockedError(f"{self.directory} is being written by pid {holder.get('pid', '?')} on "
                                     f"{holder.get('host', '?')} (since {holder.get('started', '?')}); wait for it "
                                     "to finish or choose another --output") from None
            try:  # the file may have been removed and recreated by its previous holder meanwhile
                held, now = os.fstat(fd), os.lstat(self.path)
                same = (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_lock(fd)
        if previous and previous.get("host") != socket.gethostname():
            os.close(fd)
            raise RunLockedError(f"{self.path} was written by pid {previous.get('pid')} on {previous.get('host')}; "
                                 "if no process there writes this run any more, delete that file")
        if previous:
            self.log(f"note: recovered the stale lock of pid {previous.get('pid')} on {self.directory} "
                     "(that process is no longer running)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # anyone who opened the old inode sees no holder
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


def _read_lock(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        return {}


def clear(run: RunDir) -> None:
    """Remove everything in ``run`` but its lock (call while holding it)."""
    for p in run.path.iterdir() if run.path.is_dir() else ():
        if p.name != LOCK:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


@contextmanager
def claim(run: RunDir, resume: bool, log=print):
    """Hold ``run``'s lock while writing it. A fresh run (``resume=False``) must find the directory
    empty. If the block fails before the first checkpoint, the files it created are removed (and
    the directory, if it created it), so the same command can simply be run again."""
    run.is_empty()  # raises if the path is a file
    created = not run.path.exists()
    try:
        with RunLock(run.path, log=log):
            if not resume and not run.is_empty():
                raise FileExistsError(f"{run.path} already holds a run; pass --resume to continue it or choose "
                                      "another --output")
            before = {p.name for p in run.path.iterdir()}
            try:
                yield run
            except BaseException:
                if not run.is_complete() and not (run.checkpoints / "latest.json").exists():
                    for p in run.path.iterdir():
                        if p.name not in before and p.name != LOCK:
                            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                raise
    finally:
        if created and run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()

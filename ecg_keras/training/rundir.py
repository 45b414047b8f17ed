"""The run directory: atomic writes, per-epoch checkpoints, resume, completion marker.

Layout (read by ``evaluate.py RUN_DIR``)::

    config.json          all arguments, versions, data fingerprint
    classes.json         class names (output order)
    standardizer.json    Standardizer.save
    history.csv          one row per finished epoch: epoch, loss, val_loss, lr, beta_1, val metrics, time
    history.png          loss / lr / metric curves
    checkpoints/         epoch_NNN.npz (model + optimiser variables, incl. RNG seed state) and
                         latest.json (pointer + history so far), the newest ``keep`` epochs
    model.keras          final weights (inference model, logits)
    predictions/val.npz, predictions/test.npz   ids, y_true, y_pred (aggregated per record)
    metrics.json         {"val": {...}, "test": {...}}
    COMPLETE             written last; a run without it is unfinished (resume with --resume)

Every file is written to a temporary name and renamed, so a killed process leaves either the
old or the new version, never a torn file.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
from keras import ops

COMPLETE = "COMPLETE"


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_npz(path: str | Path, **arrays) -> Path:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class RunDir:
    """Paths and state of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    config = property(lambda self: self.path / "config.json")
    classes = property(lambda self: self.path / "classes.json")
    standardizer = property(lambda self: self.path / "standardizer.json")
    history_csv = property(lambda self: self.path / "history.csv")
    history_png = property(lambda self: self.path / "history.png")
    model = property(lambda self: self.path / "model.keras")
    metrics = property(lambda self: self.path / "metrics.json")
    predictions = property(lambda self: self.path / "predictions")
    checkpoints = property(lambda self: self.path / "checkpoints")
    marker = property(lambda self: self.path / COMPLETE)

    def is_complete(self) -> bool:
        return self.marker.exists()

    def is_empty(self) -> bool:
        return not self.path.exists() or not any(self.path.iterdir())

    def mark_complete(self, **info) -> None:
        write_json(self.marker, {"status": "complete", "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info})

    def read_config(self) -> dict:
        return json.loads(self.config.read_text())

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

    def restore_checkpoint(self, model: keras.Model, info: dict) -> None:
        """Assign the variables saved by :meth:`save_checkpoint` (optimiser must be built)."""
        with np.load(self.checkpoints / info["file"]) as z:
            _assign(model.variables, z, "model", self.checkpoints / info["file"])
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

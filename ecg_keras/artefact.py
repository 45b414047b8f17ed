"""The model artefact's facts, stated once: file names of a run directory, a preset and a release,
the release manifest's schema, and the run directory's file-level writer.

Who writes and who reads:

* a **run directory** is written through :class:`RunDir` (training's :mod:`ecg_keras.training.rundir`
  adds checkpoints and the lock; ``from-torch`` writes one too) and read by
  :func:`ecg_keras.runs.resolve`;
* a **release** (a models directory: :data:`MANIFEST` + weights + cards) is written by
  :func:`ecg_keras.export.release_run` through :func:`write_manifest` and read by
  :func:`read_manifest` (:mod:`ecg_keras.zoo`, :func:`ecg_keras.runs.resolve`);
* a **preset** (keras-hub's layout) is written by :func:`ecg_keras.presets.save_preset` and read by
  :func:`ecg_keras.runs.resolve`.

Run directory layout::

    config.json          all arguments, versions, data fingerprint
    classes.json         class names (output order)
    standardizer.json    Standardizer.save
    model.keras          final model (logits), an ECGClassifier carrying its preprocessing
    history.csv / .png   one row per finished epoch; curves
    metrics.json         {"val": {...}, "test": {...}}
    predictions/         <split>.npz: ids, y_true, y_pred (aggregated per record), optional healthy
    checkpoints/         epoch_NNN.npz and latest.json (training.rundir)
    tensorboard/         event files
    COMPLETE             written last; a run without it is unfinished
    .lock                held while a process writes the run

Importable without TensorFlow (Keras is imported only to save a model).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ecg_keras.errors import ECGKerasError
from ecg_keras.files import atomic_path, write_text
from ecg_keras.paths import UnsafePathError, check_name

# --------------------------------------------------------------------------- run directory
CONFIG = "config.json"
CLASSES = "classes.json"
STANDARDIZER = "standardizer.json"
MODEL = "model.keras"
HISTORY_CSV = "history.csv"
HISTORY_PNG = "history.png"
METRICS = "metrics.json"
PREDICTIONS = "predictions"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
COMPLETE = "COMPLETE"
LOCK = ".lock"
#: What every reader of a finished run needs (export, release, finetuning's --init-from).
RUN_FILES = (CONFIG, CLASSES, STANDARDIZER, MODEL)
#: The prediction files a run may hold, ``predictions/<split>.npz``; evaluation needs ``test``.
SPLITS = ("test", "val", "train")


def predictions_file(split: str) -> str:
    """``predictions/<split>.npz``, relative to the run directory."""
    return f"{PREDICTIONS}/{split}.npz"


# --------------------------------------------------------------------------- preset (keras-hub layout)
PRESET_CONFIG, PRESET_WEIGHTS, PRESET_PREPROCESSOR, PRESET_METADATA = (
    "config.json", "model.weights.h5", "preprocessor.json", "metadata.json")
PRESET_FILES = (PRESET_CONFIG, PRESET_WEIGHTS, PRESET_PREPROCESSOR, PRESET_METADATA)
PRESET_CARD = "README.md"
#: The preset files whose sha256 metadata.json records (and the reader checks).
PRESET_CHECKED = (PRESET_CONFIG, PRESET_WEIGHTS, PRESET_PREPROCESSOR)

# --------------------------------------------------------------------------- release (models directory)
MANIFEST = "MANIFEST.json"
#: The checksum list of a release folder (``sha256  relative/path`` lines).
CHECKSUMS = "SHA256SUMS"
#: The manifest entry's fields: name -> meaning. The first :data:`REQUIRED_FIELDS` are required.
MANIFEST_FIELDS = {
    "name": "release name ([A-Za-z0-9][A-Za-z0-9._-]*)",
    "arch": "registry name of the architecture",
    "task": "task name",
    "classes": "class names, output order",
    "standardizer": "Standardizer.to_dict()",
    "sampling_rate": "Hz",
    "window": "samples per window",
    "training_data": "dataset name, or 'synthetic'",
    "file": "weights file (model.keras) beside the manifest or in the download cache; a plain name",
    "sha256": "of the weights file",
    "synthetic": "trained on generated data",
    "metrics": "{split: {metric: value}} of the training data's held-out splits",
    "license": "licence of the weights",
    "card": "model card file beside the manifest",
    "url": "download URL of the weights",
    "url_base": "download folder: url_base/file",
    "validation": "per-class real-data validation tables",
    "seed": "training seed (reproduce)",
    "source_run": "run directory it was released from (reproduce)",
    "exports": "ONNX and SavedModel exports with their sha256 (reproduce)",
}
REQUIRED_FIELDS = ("name", "arch", "task", "classes", "standardizer", "sampling_rate", "window", "training_data",
                   "file", "sha256")


class ManifestError(ECGKerasError, ValueError):
    """A manifest, or one of its entries, is malformed or unsafe."""


def check_entry(entry, where: str) -> dict:
    """``entry`` if it is a manifest entry with every :data:`REQUIRED_FIELDS` and safe names, else
    :class:`ManifestError` naming ``where``."""
    if not isinstance(entry, dict):
        raise ManifestError(f"{where} is not an object")
    missing = [k for k in REQUIRED_FIELDS if k not in entry]
    if missing:
        raise ManifestError(f"{where} ({entry.get('name', 'unnamed')!r}) lacks {', '.join(missing)}")
    try:
        check_name(entry["name"])
        check_name(entry["file"], "manifest 'file' field")
    except UnsafePathError as err:
        raise ManifestError(f"{where}: {err}") from None
    return entry


def read_manifest(directory: str | Path) -> list[dict]:
    """The checked entries of ``directory/MANIFEST.json`` ([] if there is none): the one parser."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return []
    try:
        entries = list(json.loads(path.read_text())["models"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not a valid model manifest ({err})") from None
    for i, entry in enumerate(entries):
        check_entry(entry, f"{path}: entry {i}")
    return entries


def manifest_text(entries: list[dict]) -> str:
    """The text of a manifest listing ``entries`` (each checked), sorted by name."""
    for i, entry in enumerate(entries):
        check_entry(entry, f"entry {i}")
    return json.dumps({"models": sorted(entries, key=lambda e: e["name"])}, indent=2)


def write_manifest(directory: str | Path, entries: list[dict]) -> Path:
    """``directory/MANIFEST.json`` listing ``entries``, written atomically (temp + rename)."""
    return write_text(Path(directory) / MANIFEST, manifest_text(entries))


# --------------------------------------------------------------------------- run directory writer
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
    """Paths of one run directory and its file-level writes (every file temp + rename)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    config = property(lambda self: self.path / CONFIG)
    classes = property(lambda self: self.path / CLASSES)
    standardizer = property(lambda self: self.path / STANDARDIZER)
    history_csv = property(lambda self: self.path / HISTORY_CSV)
    history_png = property(lambda self: self.path / HISTORY_PNG)
    model = property(lambda self: self.path / MODEL)
    metrics = property(lambda self: self.path / METRICS)
    predictions = property(lambda self: self.path / PREDICTIONS)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    tensorboard = property(lambda self: self.path / TENSORBOARD)
    marker = property(lambda self: self.path / COMPLETE)

    def is_complete(self) -> bool:
        return self.marker.exists()

    def is_empty(self) -> bool:
        """No run state here (a lock file alone does not count)."""
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} is a file; --output must be a directory")
        return not self.path.exists() or not any(p.name != LOCK for p in self.path.iterdir())

    def write_start(self, config: dict, classes: list[str], standardizer) -> None:
        """The files a run needs from its first epoch on: config.json, classes.json, standardizer.json."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config, config)
        write_json(self.classes, classes)
        with atomic_path(self.standardizer) as tmp:
            standardizer.save(tmp)

    def save_model(self, model, preprocessing: dict) -> Path:
        """``model.keras``: ``model`` as an :class:`~ecg_keras.models.classifier.ECGClassifier` that carries
        ``preprocessing`` (:func:`~ecg_keras.preprocessing.preprocessing_spec`), written atomically."""
        from ecg_keras.models.classifier import with_preprocessing

        with atomic_path(self.model, suffix=".keras") as tmp:
            with_preprocessing(model, preprocessing).save(tmp)
        return self.model

    def write_predictions(self, split: str, **arrays) -> Path:
        """``predictions/<split>.npz`` (ids, y_true, y_pred, optional healthy)."""
        return write_npz(self.path / predictions_file(split), **arrays)

    def mark_complete(self, **info) -> None:
        write_json(self.marker, {"status": "complete", "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info})

    def read_config(self) -> dict:
        return json.loads(self.config.read_text())

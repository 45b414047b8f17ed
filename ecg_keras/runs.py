"""The one reader of trained models: ``resolve(source, models_directory=None) -> Run``.

``source`` is one of

* a run directory, what training, finetuning, ``from-torch`` and ``reproduce`` write (file names
  and the file-level writer: :mod:`ecg_keras.artefact`): ``config.json``, ``classes.json``,
  ``standardizer.json`` and ``model.keras`` (:data:`RUN_FILES`, what export, release and
  ``--init-from`` need), and once scored ``predictions/{test,val,train}.npz`` (ids, y_true,
  y_pred, optional healthy) and ``history.csv`` (what evaluation reads). Baseline runs
  (``naive``, ``wavelet_nn``) have no ``model.keras``;
* a bare ``model.keras`` saved by ecg_keras (or a folder holding only it): classes, standardiser,
  sampling rate, window, stride, aggregation and activation come from the preprocessing it
  carries (:class:`ecg_keras.models.ECGClassifier`);
* a release directory: a models folder whose ``MANIFEST.json`` lists exactly one model;
* the name of a released model in the manifest of ``models_directory`` (:mod:`ecg_keras.zoo`:
  ``$ECG_KERAS_MODELS_DIR`` or the package's manifest by default);
* a preset directory in keras-hub's layout (:data:`PRESET_FILES`; written by
  :func:`ecg_keras.presets.save_preset`): the model's Keras config, its weights, its
  preprocessing (classes, standardiser, sampling rate, window, aggregation) and metadata with
  the sha256 of every file, checked before the model is built.

The :class:`Run` reads each part when it is first used: ``config``, ``classes``,
``standardizer``, ``model`` (Keras, ``compile=False``; the only part that imports TensorFlow) and
``predictions(split)`` / ``splits``. A missing file raises :class:`RunFileMissing` (a
``FileNotFoundError``), anything unusable :class:`RunError` (a ``ValueError``); both name the
file and the problem. A release's parts come from its manifest entry, its model from
:func:`ecg_keras.zoo.load_entry` (sha256 checked, downloaded if needed); the manifest is read once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ecg_keras import artefact, tasks, zoo
from ecg_keras.errors import ECGKerasError
from ecg_keras.artefact import (  # noqa: F401  (re-exported: the names' home is ecg_keras.artefact)
    PRESET_CARD,
    PRESET_CHECKED,
    PRESET_CONFIG,
    PRESET_FILES,
    PRESET_METADATA,
    PRESET_PREPROCESSOR,
    PRESET_WEIGHTS,
    RUN_FILES,
    SPLITS,
)
from ecg_keras.standardize import Standardizer


class RunError(ECGKerasError, ValueError):
    """Unusable trained-model input (unreadable file, predictions no metric may see, an ambiguous
    release directory); the message names the file and why."""


class RunFileMissing(RunError, FileNotFoundError):
    """A run directory, release or a file a run needs does not exist."""


def is_preset(path: str | Path) -> bool:
    """Whether ``path`` is a preset directory (it has ``preprocessor.json`` and ``metadata.json``)."""
    path = Path(path)
    return (path / PRESET_PREPROCESSOR).is_file() and (path / PRESET_METADATA).is_file()


def missing_files(path: str | Path) -> list[str]:
    """The :data:`RUN_FILES` the run directory ``path`` lacks (all of them if it does not exist)."""
    return [f for f in RUN_FILES if not (Path(path) / f).is_file()]


# --------------------------------------------------------------------------- predictions
def first_bad(mask: np.ndarray, ids=None) -> str:
    """'row 3 (record id X), column 1; 7 row(s) affected' for the first True of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    r = int(rows[0])
    c = int(np.flatnonzero(mask[r])[0])
    rid = f" (record id {ids[r]})" if ids is not None else ""
    return f"row {r}{rid}, column {c}; {len(rows)} row(s) affected"


def check_predictions(p: np.ndarray, where: str, ids=None, probabilities: bool = True) -> None:
    """Predictions must be finite (a NaN is a diverged model, never a score) and, for
    probability tasks, within [0, 1]."""
    bad = ~np.isfinite(p)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise RunError(f"{where}: non-finite prediction {p[r, c].item()} at {first_bad(bad, ids)}; "
                       "the model diverged or its output is corrupt, nothing is scored")
    if probabilities:
        bad = (p < 0) | (p > 1)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise RunError(f"{where}: predictions must be probabilities in [0, 1], found "
                           f"{p[r, c].item()} at {first_bad(bad, ids)}")


@dataclass
class Predictions:
    ids: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    healthy: np.ndarray | None = None

    def aligned(self, order_ids: np.ndarray, where: str) -> "Predictions":
        """Rows reordered to ``order_ids`` (same id set required)."""
        import pandas as pd

        pos = pd.Index(self.ids).get_indexer(order_ids)
        if (pos < 0).any() or len(self.ids) != len(order_ids):
            raise RunError(f"{where}: record ids differ from the other runs of the same "
                           "dataset/task; runs must be scored on the same records")
        return Predictions(order_ids, self.y_true[pos], self.y_pred[pos],
                           None if self.healthy is None else self.healthy[pos])


def read_predictions(path: Path, n_classes: int) -> Predictions:
    """One ``predictions/<split>.npz``, checked: arrays present, numeric, consistent in shape, one
    column per class, unique ids, finite predictions (their range depends on the task kind)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"ids", "y_true", "y_pred"} - set(z.files)
            if missing:
                raise RunError(f"{path}: missing array(s) {sorted(missing)}")
            ids, yt, yp = z["ids"], z["y_true"], z["y_pred"]
            healthy = z["healthy"].astype(bool) if "healthy" in z.files else None
    except (ValueError, EOFError, OSError, AttributeError) as e:  # 0-byte, truncated, not an .npz
        if isinstance(e, RunError):
            raise
        raise RunError(f"{path}: not a readable predictions .npz ({e})") from e
    if yt.dtype.kind not in "biuf" or yp.dtype.kind not in "biuf":
        raise RunError(f"{path}: y_true ({yt.dtype}) and y_pred ({yp.dtype}) must be numeric")
    yt = yt[:, None] if yt.ndim == 1 else yt
    yp = yp[:, None] if yp.ndim == 1 else yp
    if yt.shape != yp.shape or yt.shape[0] != len(ids):
        raise RunError(f"{path}: ids {ids.shape}, y_true {yt.shape}, y_pred {yp.shape} do not agree")
    if yt.shape[1] != n_classes:
        raise RunError(f"{path}: {yt.shape[1]} columns but classes.json lists {n_classes}")
    if len(np.unique(ids)) != len(ids):
        raise RunError(f"{path}: duplicate record ids")
    if ids.dtype == object:
        ids = ids.astype(str)
    check_predictions(yp, f"{path} (y_pred)", ids, probabilities=False)  # range: per task kind (evaluation)
    return Predictions(ids, yt.astype(np.float64), yp.astype(np.float64), healthy)


# --------------------------------------------------------------------------- the run
class Run:
    """A trained model as its files describe it; every part is read when first used.

    ``release`` is the manifest entry of a released model (None for a run directory); ``name``
    is the release name or the run directory's name (evaluation renames runs to tell them apart).
    """

    def __init__(self, path: str | Path, *, release: dict | None = None,
                 models_directory: str | Path | None = None, preset: bool = False,
                 model_file: str | Path | None = None):
        self.path = Path(path)
        self.release = release
        self.preset = preset
        self.model_file = Path(model_file) if model_file is not None else None  # a bare model.keras
        self.models_directory = models_directory
        self.name = release["name"] if release else self.path.resolve().name
        if self.model_file is not None and self.model_file.name != artefact.MODEL:
            self.name = self.model_file.stem
        if preset:  # a hub snapshot's directory is a commit hash: the preset names itself
            self.name = str(self.metadata.get("name") or self.name)

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}{', release=' + repr(self.name) if self.release else ''}"
                f"{', preset=True' if self.preset else ''}"
                f"{', model_file=' + repr(str(self.model_file)) if self.model_file else ''})")

    # ---------------------------------------------------------------- files
    def missing_files(self) -> list[str]:
        """The :data:`RUN_FILES` (:data:`PRESET_FILES` for a preset) this run lacks (none for a release:
        its entry holds them)."""
        if self.preset:
            return [f for f in PRESET_FILES if not (self.path / f).is_file()]
        if self.model_file is not None:
            return [] if self.model_file.is_file() else [self.model_file.name]
        return [] if self.release else missing_files(self.path)

    def check_complete(self) -> "Run":
        """The run itself, or :class:`RunFileMissing` naming every :data:`RUN_FILES` it lacks."""
        missing = self.missing_files()
        if missing:
            what = "a complete preset" if self.preset else "a finished training run"
            raise RunFileMissing(f"{self.path / missing[0]} is missing: {self.path} is not {what} "
                                 f"(missing {', '.join(missing)})")
        return self

    def file(self, name: str) -> Path:
        """The path of this run's file ``name``, or :class:`RunFileMissing` naming it."""
        path = self.path / name
        if not path.is_file():
            raise RunFileMissing(f"{path} is missing")
        return path

    def _json(self, name: str):
        path = self.file(name)
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path}: invalid JSON ({e})") from e

    # ---------------------------------------------------------------- parts
    @cached_property
    def preprocessor(self) -> dict:
        """A preset's ``preprocessor.json`` (classes, standardizer, sampling_rate, window, stride,
        aggregation, activation, lead_order)."""
        if not self.preset:
            raise RunFileMissing(f"{self.path} is not a preset: it has no {PRESET_PREPROCESSOR}")
        from ecg_keras.preprocessing import REQUIRED

        spec = self._json(PRESET_PREPROCESSOR)
        missing = [k for k in REQUIRED if k not in spec]
        if missing:
            raise RunError(f"{self.path / PRESET_PREPROCESSOR}: missing field(s) {', '.join(missing)}")
        return spec

    @cached_property
    def metadata(self) -> dict:
        """A preset's ``metadata.json`` (versions, run config, sha256 of every file)."""
        return self._json(PRESET_METADATA) if self.preset else {}

    def check_preset_files(self) -> "Run":
        """The sha256 of every :data:`PRESET_CHECKED` file against ``metadata.json``; a mismatch or a
        missing record is a :class:`~ecg_keras.zoo.ChecksumError` (nothing is loaded from it)."""
        from ecg_keras.paths import sha256

        recorded = self.metadata.get("sha256") or {}
        for name in PRESET_CHECKED:
            if name not in recorded:
                raise zoo.ChecksumError(f"{self.path / PRESET_METADATA}: no sha256 recorded for {name}; the preset "
                                        "cannot be checked and is refused")
            actual = sha256(self.file(name))
            if actual != recorded[name]:
                raise zoo.ChecksumError(f"{self.path / name}: sha256 {actual} does not match the {recorded[name]} "
                                        f"recorded in {PRESET_METADATA} (file modified or corrupted); refused")
        return self

    @cached_property
    def config(self) -> dict:
        if self.preset:
            spec = self.preprocessor
            return dict(self.metadata.get("config") or {}) | {
                k: spec[k] for k in ("sampling_rate", "aggregation", "activation", "kind") if k in spec}
        if self.model_file is not None:  # everything a bare model knows is its preprocessing
            return {k: v for k, v in self.preprocessing.items() if k not in ("classes", "standardizer")}
        if self.release:
            e = self.release
            return {"arch": e["arch"], "task": e["task"], "dataset": e["training_data"],
                    "sampling_rate": int(e["sampling_rate"]), "synthetic": zoo.is_synthetic(
                        e.get("synthetic"), e["training_data"]), "release": e["name"]}
        return self._json(artefact.CONFIG)

    @cached_property
    def classes(self) -> list[str]:
        if self.preset:
            return [str(c) for c in self.preprocessor["classes"]]
        if self.model_file is not None:
            return [str(c) for c in self.preprocessing["classes"]]
        return [str(c) for c in (self.release["classes"] if self.release else self._json(artefact.CLASSES))]

    @cached_property
    def standardizer(self) -> Standardizer:
        if self.preset:
            return Standardizer.from_dict(self.preprocessor["standardizer"])
        if self.model_file is not None:
            return Standardizer.from_dict(self.preprocessing["standardizer"])
        if self.release:
            return Standardizer.from_dict(self.release["standardizer"])
        return Standardizer.load(self.file(artefact.STANDARDIZER))

    @cached_property
    def model(self):
        """The Keras model (logits), loaded without compiling; a release's weights are sha256 checked."""
        if self.release:
            return zoo.load_entry(self.release, self.models_directory)
        import keras

        from ecg_keras.models import check_loaded_weights, list_models

        list_models()  # importing ecg_keras.models registers the custom layers before deserialising
        if self.preset:
            self.check_preset_files()
            path = self.file(PRESET_WEIGHTS)
            model = keras.saving.deserialize_keras_object(self._json(PRESET_CONFIG), safe_mode=True)
            model.load_weights(path)
        else:
            path = self.model_file if self.model_file is not None else self.path / artefact.MODEL
            if not path.is_file():
                raise RunFileMissing(f"{path} is missing")
            model = keras.saving.load_model(path, compile=False)
        check_loaded_weights(model, path)
        return model

    @cached_property
    def preprocessing(self) -> dict:
        """The model's preprocessing (:func:`ecg_keras.preprocessing.preprocessing_spec`): a preset's
        ``preprocessor.json``, else what the saved model carries in its config, else (models saved
        before it carried one) built from the run's files."""
        if self.preset:
            return dict(self.preprocessor)
        carried = getattr(self.model, "preprocessing", None)
        if carried:
            return dict(carried)
        if self.model_file is not None:
            raise RunError(f"{self.model_file}: the model carries no preprocessing (classes, standardiser, sampling "
                           "rate, ...): it was not saved by ecg_keras; pass its run directory instead")
        from ecg_keras.preprocessing import preprocessing_spec
        from ecg_keras.windows import model_window

        return preprocessing_spec(classes=self.classes, standardizer=self.standardizer,
                                  sampling_rate=self.sampling_rate, aggregation=self.aggregation,
                                  window=model_window(self.model, self.sampling_rate), activation=self.activation)

    @cached_property
    def metrics(self) -> dict:
        """``metrics.json`` ({split: {metric: value}}) of a run directory; {} if it has none."""
        if self.release or self.preset or self.model_file or not (self.path / artefact.METRICS).is_file():
            return {}
        return self._json(artefact.METRICS)

    @property
    def history(self) -> Path | None:
        """``history.csv`` (one row per epoch), if the run has one."""
        path = self.path / artefact.HISTORY_CSV
        return path if not self.release and not self.preset and not self.model_file and path.is_file() else None

    def predictions(self, split: str = "test") -> Predictions:
        """``predictions/<split>.npz``, read and checked (:func:`read_predictions`)."""
        if self.release or self.preset or self.model_file:
            what = "preset" if self.preset else "released model" if self.release else "model file"
            raise RunFileMissing(f"{self.name} is a {what}: it has no {artefact.predictions_file(split)}")
        return read_predictions(self.file(artefact.predictions_file(split)), len(self.classes))

    @cached_property
    def splits(self) -> dict[str, Predictions]:
        """The predictions of every split the run holds; ``test`` is required."""
        return {s: self.predictions(s) for s in SPLITS
                if s == "test" or (self.path / artefact.predictions_file(s)).is_file()}

    # ---------------------------------------------------------------- derived facts
    @property
    def arch(self) -> str:
        return str(self.config.get("arch") or self.path.name)

    @property
    def key(self) -> tuple[str, str]:
        """(dataset, task): evaluation scores runs of one key together."""
        return str(self.config.get("dataset", "dataset")), str(self.config.get("task", "task"))

    @property
    def kind(self) -> str:
        kind = self.config.get("kind")
        if kind:
            return str(kind)
        if tasks.kind_of(self.key[1]) == tasks.REGRESSION:
            return tasks.REGRESSION
        return tasks.BINARY if self.splits["test"].y_true.shape[1] == 1 else tasks.MULTILABEL

    @property
    def sampling_rate(self) -> int:
        return int(self.config.get("sampling_rate", 100))

    @property
    def window(self) -> int:
        """Samples per window the model was trained on: the release entry's or config.json's ``window``, else
        its ``window_seconds`` at its rate (runs that predate both: the benchmark's 2.5 s)."""
        from ecg_keras.preprocessing import WINDOW_SECONDS, window_length

        window = self.release["window"] if self.release else self.config.get("window")
        if window:
            return int(window)
        return window_length(self.sampling_rate, self.config.get("window_seconds", WINDOW_SECONDS))

    @property
    def aggregation(self) -> str:
        return self.config.get("aggregation") or tasks.aggregation(self.config.get("task"))

    @property
    def activation(self) -> str | None:
        if "activation" in self.config:
            return self.config["activation"]
        return tasks.activation(self.config.get("task"))

    @property
    def extra(self) -> dict:
        keys = ("arch", "task", "dataset", "sampling_rate", "seed")
        return {k: self.config[k] for k in keys if k in self.config} | {"run_dir": self.path.name}

    def export_kwargs(self) -> dict:
        """Keyword arguments shared by export_savedmodel, export_onnx and export_litert, from :attr:`preprocessing`."""
        spec = self.preprocessing
        return dict(classes=list(spec["classes"]), standardizer=Standardizer.from_dict(spec["standardizer"]),
                    sampling_rate=int(spec["sampling_rate"]), aggregation=spec["aggregation"],
                    activation=spec.get("activation"), extra=self.extra)

    @cached_property
    def _inference_model(self):
        from ecg_keras.models.bnfold import fold_batchnorm

        return fold_batchnorm(self.model)  # once, not per call: each call would clone and retrace the model

    def predict_records(self, signals, **kwargs):
        """Per-record probabilities of ``signals`` (arrays at the model's rate, leads in order) through the
        model's :attr:`preprocessing` (standardiser, window, stride, aggregation, activation);
        ``kwargs`` go to :func:`ecg_keras.windows.predict_records`."""
        from ecg_keras.windows import predict_records

        spec = self.preprocessing
        return predict_records(self._inference_model, signals, sampling_rate=int(spec["sampling_rate"]),
                               standardizer=Standardizer.from_dict(spec["standardizer"]), how=spec["aggregation"],
                               activation=spec.get("activation"), window=spec.get("window"),
                               stride=spec.get("stride"), **kwargs)


def resolve(source: str | Path | Run, models_directory: str | Path | None = None) -> Run:
    """``source`` (a run directory, a release directory or a released model's name; see the module
    docstring) as a :class:`Run`; :class:`RunFileMissing` naming the possibilities otherwise."""
    if isinstance(source, Run):
        return source
    path = Path(str(source)).expanduser()
    if path.is_dir():
        if is_preset(path):
            return Run(path, preset=True)
        if (path / artefact.CONFIG).is_file():
            return Run(path)
        if (path / artefact.MODEL).is_file() and not (path / zoo.MANIFEST).is_file():
            return Run(path, model_file=path / artefact.MODEL)
        if (path / zoo.MANIFEST).is_file():
            entries = zoo.read_manifest(path)
            if len(entries) != 1:
                names = sorted(e["name"] for e in entries)
                raise RunError(f"{path} is a release directory with {len(names)} released models "
                               f"({', '.join(names) or 'none'}): name one, with {path} as the models directory "
                               "(models_directory= / --models-dir)")
            return _release(entries[0], path)
        raise RunFileMissing(f"{path / artefact.CONFIG} is missing: {path} is neither a run directory "
                             f"({', '.join(RUN_FILES)}) nor a release directory ({zoo.MANIFEST})")
    if path.is_file() and path.suffix == ".keras":
        return Run(path.parent, model_file=path)
    entries = zoo.read_manifest(models_directory)  # the one parse on the way to the model
    released = sorted(e["name"] for e in entries)
    if str(source) in released:
        return _release(zoo.find_entry(name=str(source), entries=entries, models_directory=models_directory),
                        models_directory)
    problem = "is not a directory" if path.exists() else "does not exist"
    raise RunFileMissing(f"{source} {problem}: it is neither a run directory ({', '.join(RUN_FILES)}) "
                         f"nor a released model in {zoo.models_dir(models_directory) / zoo.MANIFEST} "
                         f"({', '.join(released) or 'none released'})")


def _release(entry: dict, models_directory: str | Path | None) -> Run:
    return Run(zoo.models_dir(models_directory) / entry["file"], release=entry, models_directory=models_directory)

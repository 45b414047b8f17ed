"""The MODEL argument of ``ecg-keras predict`` loaded as a :class:`Predictor`: a released name, a
run, release or preset directory, a hub handle, a SavedModel, an ONNX or a LiteRT file
(:func:`load_model`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ecg_keras import artefact
from ecg_keras.artefact import MANIFEST
from ecg_keras.errors import ECGKerasError
from ecg_keras.io.records import LEAD_NAMES
from ecg_keras.paths import sha256
from ecg_keras.zoo import is_synthetic


class ModelError(ECGKerasError):
    """The MODEL argument cannot be loaded; the message says why."""


@dataclass
class Predictor:
    """A loaded model with what predict needs: classes, rate, aggregation, identity."""

    name: str
    kind: str  # release | run | savedmodel | onnx
    source: str
    classes: list[str]
    sampling_rate: int
    aggregation: str
    training_data: str
    synthetic: bool
    sha256: str | None
    predict_fn: Callable[[list[np.ndarray]], np.ndarray] = field(repr=False)
    arch: str | None = None
    task: str | None = None
    keras_model: object = field(default=None, repr=False)
    standardizer: object = field(default=None, repr=False)
    sha256_of: str = ""
    validation: list = field(default_factory=list, repr=False)  # a release's real-data validations
    window: int | None = None  # input samples per window at ``sampling_rate`` (None: not stated)

    def identity(self) -> dict:
        return {"name": self.name, "kind": self.kind, "source": self.source, "arch": self.arch, "task": self.task,
                "training_data": self.training_data, "synthetic": self.synthetic, "sha256": self.sha256,
                "sha256_of": self.sha256_of, "sampling_rate": self.sampling_rate, "aggregation": self.aggregation,
                "classes": list(self.classes)}

    def caution(self) -> str | None:
        """The one-line provenance warning of plots and titles (None: trained on real data)."""
        if not self.synthetic:
            return None
        if self.validation:
            return ("trained on SYNTHETIC ECGs only; validated zero-shot on "
                    + ", ".join(f"{v['dataset']} ({v['n_records']} records)" for v in self.validation)
                    + ", see its card; not for clinical use")
        return "SYNTHETIC-trained model: not for real ECGs"

    def describe(self) -> str:
        lines = [f"model: {self.name} ({self.kind}: {self.source})"
                 + (f", {self.arch}" if self.arch else "") + (f", task {self.task}" if self.task else "")
                 + f", {self.sampling_rate} Hz, {self.aggregation} over windows"]
        if self.synthetic and self.validation:
            lines.append("  trained on: SYNTHETIC ECGs only; validated zero-shot on real records ("
                         + ", ".join(f"{v['dataset']}: {v['n_records']}" for v in self.validation)
                         + "; per-class AUC in its model card); not for clinical use")
        elif self.synthetic:
            lines.append("  trained on: SYNTHETIC data (generated PTB-XL-like signals) -- for demonstrating the "
                         "pipeline only; its outputs say nothing about a real ECG")
        else:
            lines.append(f"  trained on: {self.training_data}")
        lines.append(f"  sha256 ({self.sha256_of or 'weights'}): {self.sha256 or 'unknown'}")
        lines.append("  research use only; not a medical device")
        return "\n".join(lines)

    def __call__(self, signals: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self.predict_fn(signals), dtype=np.float64)



# --------------------------------------------------------------------------- model loading
def _from_run(run, kind: str, name: str, sha: str | None, sha_of: str, training_data: str, synthetic: bool
              ) -> Predictor:
    fn = run.predict_records  # the model's own preprocessing (runs.Run.preprocessing)
    return Predictor(name=name, kind=kind, source=str(run.path), classes=list(run.classes),
                     sampling_rate=run.sampling_rate, aggregation=run.aggregation, training_data=training_data,
                     synthetic=synthetic, sha256=sha, sha256_of=sha_of, predict_fn=fn,
                     arch=run.config.get("arch"), task=run.config.get("task"), keras_model=run.model,
                     standardizer=run.standardizer, window=int(run.preprocessing.get("window") or 0) or None)


def _load_run(source, models_directory=None) -> Predictor:
    """A run directory, a release or preset directory, a hub handle or a released model's name
    (:func:`ecg_keras.presets.resolve`)."""
    from ecg_keras.presets import resolve

    is_dir = Path(str(source)).expanduser().is_dir()
    try:
        run = resolve(source, models_directory).check_complete()
        run.model  # noqa: B018  (loaded now: a damaged, unsafe or missing model is a ModelError)
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a damaged or unsafe model
        if is_dir:
            raise ModelError(f"{source}: cannot load the run directory ({type(e).__name__}: {e})") from None
        raise ModelError(f"{str(source)!r} is not a run directory, SavedModel, ONNX file or released model ({e})") \
            from None
    cfg = run.config
    data = str(cfg.get("dataset_name") or cfg.get("dataset") or "unknown")
    synthetic = is_synthetic(cfg.get("synthetic"), data)
    if run.release:
        sha, sha_of = run.release.get("sha256"), run.release.get("file", "weights")
    elif run.preset:
        from ecg_keras.runs import PRESET_WEIGHTS

        sha, sha_of = run.metadata["sha256"][PRESET_WEIGHTS], PRESET_WEIGHTS
    else:
        model_file = run.model_file or run.path / artefact.MODEL
        sha, sha_of = sha256(model_file), model_file.name
    predictor = _from_run(run, "release" if run.release else "preset" if run.preset else "run", run.name, sha, sha_of,
                          "synthetic" if synthetic else data, synthetic)
    predictor.validation = list((run.release or {}).get("validation", []))
    return predictor


def _savedmodel_dir(path: Path) -> Path | None:
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").is_file()]
    if versions:
        return max(versions, key=lambda p: int(p.name))
    # ``export savedmodel --out DIR`` writes DIR/<model-name>/<version>/: one model name is unambiguous
    names = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(names) == 1 and not (names[0] / "saved_model.pb").is_file():
        return _savedmodel_dir(names[0])
    return None


def _spec_fields(spec: dict, where) -> tuple[list[str], int, str, dict]:
    try:
        classes = [str(c) for c in spec["classes"]]
        rate = int(spec["sampling_rate"])
        agg = str(spec.get("aggregation", "max"))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{where}: serving spec lacks classes/sampling_rate ({e})") from None
    lead_order = spec.get("lead_order")
    if lead_order is not None and [str(x).upper() for x in lead_order] != [x.upper() for x in LEAD_NAMES]:
        raise ModelError(f"{where}: model leads {lead_order} are not the 12 standard leads")
    return classes, rate, agg, dict(spec.get("extra") or {})


def _load_savedmodel(path: Path) -> Predictor:
    import tensorflow as tf

    from ecg_keras.export.savedmodel import read_metadata

    try:
        spec = read_metadata(path)
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: SavedModel without ecg_keras metadata (assets/ecg_keras.json: {e})") from None
    classes, rate, agg, extra = _spec_fields(spec, path)
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # noqa: BLE001 - TF raises many types for a damaged SavedModel
        raise ModelError(f"{path}: cannot load the SavedModel ({type(e).__name__}: {e})") from None
    if "predict_record" not in loaded.signatures:
        raise ModelError(f"{path}: SavedModel has no predict_record signature")
    signature = loaded.signatures["predict_record"]

    def fn(signals):
        return np.stack([signature(ecg=tf.constant(np.asarray(x, np.float32)[None]))["probabilities"].numpy()[0]
                         for x in signals])

    files = [path / "saved_model.pb"] + sorted((path / "variables").glob("*"))
    data = str(extra.get("dataset", "unknown"))
    synthetic = is_synthetic(extra.get("synthetic"), data)
    model = Predictor(name=f"{path.parent.name}/{path.name}", kind="savedmodel", source=str(path), classes=classes,
                      sampling_rate=rate, aggregation=agg, training_data="synthetic" if synthetic else data,
                      synthetic=synthetic, sha256=sha256(*files), sha256_of="saved_model.pb + variables",
                      predict_fn=fn, arch=extra.get("arch"), task=extra.get("task"))
    model._loaded = loaded  # keep the SavedModel's resources alive
    return model


def _load_onnx(path: Path) -> Predictor:
    from ecg_keras.export.onnx import inference_session, read_metadata

    try:
        session = inference_session(path)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
    try:
        spec = read_metadata(session)
    except (KeyError, json.JSONDecodeError):
        sidecar = next((p for p in (path.with_suffix(".json"), Path(f"{path}.json")) if p.is_file()), None)
        if sidecar is None:
            raise ModelError(f"{path}: no ecg_keras metadata in the ONNX file and no sidecar {path.with_suffix('.json')}"
                             " with its serving spec (classes, sampling_rate, window, aggregation); export it with "
                             "`ecg-keras export onnx` or write the sidecar") from None
        try:
            spec = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ModelError(f"{sidecar}: unreadable serving spec ({e})") from None
    return _exported_predictor(path, "onnx", spec,
                               lambda x: session.run(["probabilities"], {"ecg": np.asarray(x, np.float32)})[0])


def _load_litert(path: Path) -> Predictor:
    from ecg_keras.export.litert import LiteRTModel

    try:
        lite = LiteRTModel(path)
    except ImportError as e:
        raise ModelError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - the flatbuffer reader and interpreter raise many types
        raise ModelError(f"{path}: not a LiteRT model written by `ecg-keras export litert` "
                         f"({type(e).__name__}: {e})") from None
    return _exported_predictor(path, "litert", lite.metadata, lambda x: lite(np.asarray(x, np.float32)))


def _exported_predictor(path: Path, kind: str, spec: dict, run) -> Predictor:
    """A :class:`Predictor` for an exported file whose serving ``spec`` (its metadata) gives classes,
    rate, window and aggregation; ``run(batch)`` -> probabilities of a whole record (batch 1) or of
    windows (at most 256 a call)."""
    from ecg_keras.windows import aggregate, eval_windows

    classes, rate, agg, extra = _spec_fields(spec, path)
    window, stride = int(spec.get("window", 0) or 0), int(spec.get("stride", 0) or 0)

    def fn(signals):
        if spec.get("whole_record"):
            return np.stack([run(np.asarray(x, np.float32)[None])[0] for x in signals])
        windows, index = eval_windows(signals, sampling_rate=rate, window=window or None, stride=stride or None)
        probs = np.concatenate([run(windows[i:i + 256]) for i in range(0, len(windows), 256)])
        return aggregate(probs, index, how=agg, n_records=len(signals))

    data = str(extra.get("dataset", "unknown"))
    synthetic = is_synthetic(extra.get("synthetic"), data)
    return Predictor(name=path.name, kind=kind, source=str(path), classes=classes, sampling_rate=rate,
                     aggregation=agg, training_data="synthetic" if synthetic else data, synthetic=synthetic,
                     sha256=sha256(path), sha256_of=path.name, predict_fn=fn, arch=extra.get("arch"),
                     task=extra.get("task"), window=window or None)


def load_model(source, models_directory=None) -> Predictor:
    """A :class:`Predictor` for a released name, run, release or preset directory, hub handle
    (``hf://``, ``kaggle://``), SavedModel directory, ONNX or LiteRT (``.tflite``) file."""
    if isinstance(source, Predictor):
        return source
    from ecg_keras.presets import PresetError, fetch, is_handle

    if is_handle(source):
        try:
            return _load_run(fetch(source), models_directory)
        except PresetError as e:
            raise ModelError(str(e)) from None
    path = Path(str(source)).expanduser()
    if path.is_dir():
        if any((path / f).exists() for f in (artefact.CONFIG, MANIFEST, artefact.MODEL)):
            return _load_run(path, models_directory)
        sm = _savedmodel_dir(path)
        if sm is not None:
            return _load_savedmodel(sm)
        raise ModelError(f"{path}: neither a run directory (model.keras + config.json), a release directory "
                         f"({MANIFEST}), a preset directory (preprocessor.json + metadata.json) nor a SavedModel")
    if path.is_file():
        if path.suffix.lower() == ".onnx":
            return _load_onnx(path)
        if path.suffix.lower() == ".tflite":
            return _load_litert(path)
        if path.suffix.lower() == ".keras":
            return _load_run(path, models_directory)
        raise ModelError(f"{path}: a model file must be .keras, .onnx or .tflite (or pass a run/preset/SavedModel "
                         "directory)")
    return _load_run(str(source), models_directory)

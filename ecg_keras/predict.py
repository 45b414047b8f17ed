"""Run a model on people's own ECG records: records in, probabilities (and plots) out.

    ecg-keras predict MODEL RECORD... [--out FILE.csv|.json] [--plot DIR] [--explain]
                    [--top K] [--fs HZ] [--leads I,II,...] [--units mV|uV]

MODEL is a released model name (the zoo, ``models/MANIFEST.json``, or ``--models-dir DIR``'s), a
training run, release or preset directory (read by :func:`ecg_keras.runs.resolve`), a preset on
a hub (``hf://owner/name``, ``kaggle://...``: :mod:`ecg_keras.presets`), a SavedModel directory
(a version directory, its model directory, or the ``--out`` of ``export savedmodel`` holding one
model: the highest version is used), an ONNX file exported by ``ecg_keras.export`` (its
metadata, or a sidecar ``FILE.json`` holding the serving spec, gives classes, rate and
aggregation) or a LiteRT ``.tflite`` file written by ``export litert`` (its metadata). RECORD is a WFDB record, a
CPSC/ICBEB ``.mat``, a ``.npy`` or ``.csv`` (samples x leads; ``--fs``/``--leads``/``--units``
where the file cannot say), a hospital export (DICOM waveform, HL7 aECG / GE MUSE / Philips XML,
SCP-ECG, EDF/EDF+, ISHNE; :mod:`ecg_keras.io.formats`) or a folder of them (see
:mod:`ecg_keras.io.records`). Missing limb leads are derived (8-lead exports), other missing
leads refused or, with ``--fill-missing-leads``, zero-filled; the ``leads`` column says which.
``--timeline DIR``: long recordings segment by segment over time (:mod:`ecg_keras.timeline`).

Each record is read, its leads are matched to the model's by name, it is checked, resampled to
the model's rate and predicted with the model's own whole-record rule (windows of the model's
length, stride half a window, max or mean over windows, as at evaluation).

**Invalid records.** A record that cannot be read, whose leads cannot be matched, or whose
signal has NaN/Inf samples, a flat lead or values beyond 100 mV is *never* sent to the model:
its row is marked ``valid=False`` with the reason (naming the record and the lead, e.g.
"non-finite samples (NaN/Inf) in lead(s) V2; 1 sample(s) ..."), its probabilities are left
empty, the other records are still predicted and written, and the command exits with status 1.
Status 0 means every record was valid; a model or output that cannot be used is status 1, a usage error 2.

Output: one row per record with every class probability (``--out``: CSV, or JSON with the
model identity), and in the console the model identity (name, sha256, training data: models
trained on SYNTHETIC data say so) and the top-K classes per record. ``--plot DIR`` writes one
PNG per record on ECG paper (:func:`ecg_keras.evaluation.ecg_paper.plot_ecg_paper`), with
``--explain`` the integrated-gradients attribution of the top class shaded over time.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ecg_keras import artefact
from ecg_keras.artefact import MANIFEST
from ecg_keras.datasets.base import DataError
from ecg_keras.errors import ECGKerasError
from ecg_keras.io.records import LEAD_NAMES, NAME_SUFFIXES, Record, find_records, read_any, record_name, to_model_input
from ecg_keras.paths import sha256
from ecg_keras.zoo import is_synthetic

RESERVED = ("record", "valid", "problem", "fs", "duration_s", "leads")
#: Records are predicted in groups of at most ``batch`` records and this many samples (at the
#: model's rate; 2e6 = 5.6 h at 100 Hz), so memory stays bounded for folders and long records.
MAX_BATCH_SAMPLES = 2_000_000


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
                     standardizer=run.standardizer)


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
                     task=extra.get("task"))


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


# --------------------------------------------------------------------------- prediction
@dataclass
class Item:
    """One record through the pipeline (kept for plots; not returned by :func:`predict`)."""

    name: str
    path: Path | None = None
    problem: str | None = None
    fs: float | None = None
    duration: float | None = None
    x: np.ndarray | None = None  # model input (model rate); released after prediction and on_item
    native: np.ndarray | None = None  # checked signal at the file's rate, model lead order
    probabilities: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    plot: Path | None = None
    leads: str = ""  # leads derived or zero-filled (io.leads.describe)


def _prepare(path: Path | Record, model: Predictor, fs, leads, units, fill_missing: bool = False) -> Item:
    if isinstance(path, Record):  # already read (ecg_keras.load(...).predict on arrays)
        item, rec = Item(name=path.name, path=None), path
    else:
        try:
            name = record_name(path)
        except DataError:
            name = str(path)
        item, rec = Item(name=name, path=path), None
    try:
        rec = rec or read_any(path, fs=fs, leads=leads, units=units)
        item.fs, item.duration, item.notes = rec.fs, rec.duration, rec.notes
        item.x, item.native = to_model_input(rec, model.sampling_rate, fill_missing=fill_missing)
        item.leads = rec.lead_note
    except DataError as e:
        item.problem = str(e)
    except (MemoryError, RecursionError) as e:  # one hostile file must not abort the batch
        item.problem = f"{item.name}: too large or too deeply nested to read ({type(e).__name__})"
    return item


def expand_records(records) -> list[Item | Path | Record]:
    out: list[Item | Path | Record] = []
    for r in ([records] if isinstance(records, (str, Path)) else records):
        if isinstance(r, (Item, Record)):
            out.append(r)
            continue
        try:
            out += find_records([r])
        except DataError as e:
            out.append(Item(name=str(r), problem=str(e)))
    return out


def run_predictions(model, records, *, fs=None, leads=None, units: str = "mV", batch: int = 32,
                    progress: bool | None = None, models_directory=None, on_item=None,
                    fill_missing_leads: bool = False) -> tuple[Predictor, list[Item]]:
    """Load ``model`` and predict ``records`` (paths, folders or :class:`~ecg_keras.io.records.Record`
    objects already read); returns the model and one
    :class:`Item` per record. ``on_item(item, model)`` is called for every record after its
    prediction (plots). ``fill_missing_leads``: leads neither recorded nor derivable are zeros
    (flagged in the ``leads`` column) instead of making the record invalid."""
    from tqdm.auto import tqdm

    model = load_model(model, models_directory)
    todo = expand_records(records)
    if leads is not None and isinstance(leads, str):
        leads = [x.strip() for x in leads.split(",") if x.strip()]
    show = len(todo) > 1 if progress is None else progress
    items: list[Item] = []
    pending: list[Item] = []

    def flush():
        ok = [it for it in pending if it.problem is None]
        if ok:
            probs = _predict_isolated(model, ok)
            for it, p in zip(ok, probs):
                if p is None:
                    continue
                if not np.all(np.isfinite(p)):
                    it.problem = f"{it.name}: the model returned non-finite probabilities"
                else:
                    it.probabilities = p
        for it in pending:
            if on_item is not None:
                on_item(it, model)
            it.x = it.native = None  # signals are not kept: memory stays bounded
        items.extend(pending)
        pending.clear()

    with tqdm(total=len(todo), desc="predicting", unit="rec", disable=not show, file=sys.stderr) as bar:
        for t in todo:
            pending.append(t if isinstance(t, Item) else _prepare(t, model, fs, leads, units, fill_missing_leads))
            bar.update(1)
            samples = sum(len(it.x) for it in pending if it.x is not None)
            if len(pending) >= batch or samples >= MAX_BATCH_SAMPLES:
                flush()
        flush()
    return model, items


def _predict_isolated(model: Predictor, items: list[Item]) -> list:
    """Probabilities of ``items``; if the batch fails, each record alone, so that a record the model
    cannot take becomes one invalid row (its ``problem`` says why) instead of failing the others."""
    try:
        return list(model([it.x for it in items]))
    except Exception as e:  # noqa: BLE001 - engines (TF, ONNX Runtime) raise their own types
        if len(items) == 1:
            items[0].problem = f"{items[0].name}: the model could not be run on it ({type(e).__name__}: {e})"
            return [None]
        return [p for it in items for p in _predict_isolated(model, [it])]


def to_frame(model: Predictor, items: list[Item]) -> pd.DataFrame:
    """One row per record: record, valid, problem, fs, duration_s, then one column per class."""
    rows = []
    for it in items:
        row = {"record": it.name, "valid": it.problem is None, "problem": it.problem or "",
               "fs": it.fs, "duration_s": None if it.duration is None else round(it.duration, 3), "leads": it.leads}
        for j, c in enumerate(model.classes):
            row[c] = float(it.probabilities[j]) if it.probabilities is not None else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RESERVED) + list(model.classes))
    frame.attrs["model"] = model.identity()
    return frame


def predict(model, records, *, fs: float | None = None, leads: Sequence[str] | str | None = None,
            units: str = "mV", plot_dir=None, explain: bool = False, top: int = 3,
            progress: bool | None = None, models_directory=None, overwrite: bool = False,
            fill_missing_leads: bool = False) -> pd.DataFrame:
    """Probabilities of every class for each record (see the module docstring).

    ``model``: released name, run directory, SavedModel directory, ONNX file or a loaded
    :class:`Predictor`. ``records``: paths of records or folders. Returns a DataFrame (see
    :func:`to_frame`) whose ``attrs["model"]`` is the model identity; invalid records have
    ``valid=False``, the reason in ``problem`` and NaN probabilities. ``plot_dir``: one PNG per
    valid record (``explain``: with the top class's attribution), named after the record
    (:func:`plot_names`); an existing file there is a FileExistsError unless ``overwrite``.
    The ``leads`` column names leads derived from others (8-lead exports) or, with
    ``fill_missing_leads``, zero-filled.
    """
    todo = expand_records(records)
    hook = None
    if plot_dir is not None:
        hook = plot_hook(Path(plot_dir), top, explain, names=check_plot_targets(plot_dir, todo, overwrite))
    model, items = run_predictions(model, todo, fs=fs, leads=leads, units=units, progress=progress,
                                   models_directory=models_directory, on_item=hook,
                                   fill_missing_leads=fill_missing_leads)
    return to_frame(model, items)


# --------------------------------------------------------------------------- plots
def _display_name(t: Item | Path) -> str:
    if isinstance(t, Item):
        return t.name
    try:
        return record_name(t)
    except DataError:
        return str(t)


def plot_names(names: Sequence[str]) -> list[str]:
    """PNG file name per record: the record's own name (its last path part, characters other than
    letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``, no leading dot, no record suffix such
    as ``.npy`` or ``.dcm``: :data:`~ecg_keras.io.records.NAME_SUFFIXES`), ``_2``, ``_3`` ...
    appended when two records share a name."""
    out, used = [], set()
    for name in names:
        base = Path(str(name).rstrip("/")).name
        base = base[:-len(Path(base).suffix)] if Path(base).suffix.lower() in NAME_SUFFIXES else base
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in base).lstrip(".")[-120:] or "record"
        candidate, k = stem, 1
        while candidate.lower() in used:
            k += 1
            candidate = f"{stem}_{k}"
        used.add(candidate.lower())
        out.append(f"{candidate}.png")
    return out


def check_plot_targets(plot_dir, todo: Sequence[Item | Path], overwrite: bool) -> dict[str, str]:
    """Record name -> plot file name; FileExistsError naming the first file that is in the way
    (an existing file without ``overwrite``; a link or other non-regular file always)."""
    from ecg_keras.files import check_regular

    names = [_display_name(t) for t in todo]
    files = plot_names(names)
    for name in files:
        target = Path(plot_dir) / name
        check_regular(target)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it (or choose another --plot DIR)")
    return dict(zip(names, files))


def plot_hook(out: Path, top: int, explain: bool, method: str = "ig", names: dict[str, str] | None = None):
    from ecg_keras.evaluation.ecg_paper import plot_ecg_paper

    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--plot {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    names = dict(names or {})
    warned = []

    def hook(item: Item, model: Predictor):
        if item.probabilities is None:
            return
        order = np.argsort(-item.probabilities)[:max(1, top)]
        preds = [(model.classes[j], float(item.probabilities[j])) for j in order]
        attribution = None
        if explain:
            if model.keras_model is None:
                if not warned:
                    print(f"warning: --explain needs the Keras model (a run directory or a released model); "
                          f"{model.kind} models are plotted without attribution", file=sys.stderr)
                    warned.append(1)
            else:
                from ecg_keras.evaluation.attribution import attribute_record

                res = attribute_record(model.keras_model, item.x, int(order[0]), model.standardizer,
                                       model.sampling_rate, method=method, steps=32)
                attribution = res.attribution
        file = names.get(item.name) or plot_names([item.name])[0]
        title = f"{item.name}  ({item.fs:g} Hz, {item.duration:.1f} s)"
        model_line = (f"{model.name} ({model.arch or model.kind}, task {model.task or '?'}, trained on "
                      f"{'SYNTHETIC data' if model.synthetic else model.training_data})")
        item.plot = plot_ecg_paper(item.native, item.fs, out / file, title=title, predictions=preds,
                                   model_line=model_line, warning=model.caution(), attribution=attribution,
                                   attribution_fs=model.sampling_rate,
                                   attribution_label=f"integrated gradients of {preds[0][0]}" if explain else None)

    return hook


# --------------------------------------------------------------------------- console
def format_table(frame: pd.DataFrame, classes: Sequence[str], top: int = 3) -> str:
    """Records with their top-K classes (probability), invalid records with the reason."""
    width = max([len("record")] + [len(str(r)) for r in frame["record"]])
    width = min(width, 60)
    k = max(1, min(top, len(classes)))
    header = f"{'record':<{width}}  " + "  ".join(f"{'top ' + str(i + 1):<16}" for i in range(k))
    lines = [header, "-" * len(header)]
    for _, row in frame.iterrows():
        name = str(row["record"])
        name = name if len(name) <= width else "..." + name[-(width - 3):]
        if not row["valid"]:
            lines.append(f"{name:<{width}}  INVALID: {row['problem']}")
            continue
        probs = np.array([row[c] for c in classes], dtype=float)
        order = np.argsort(-probs)[:k]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{classes[j] + ' ' + format(probs[j], '.3f'):<16}"
                                                     for j in order))
    return "\n".join(lines)


#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; others unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def write_output(frame: pd.DataFrame, path: Path) -> Path:
    """``--out``: CSV (text cells that start like a formula are prefixed with ``'``) or JSON; written
    to a temporary file and renamed (never through a planted link)."""
    from ecg_keras.files import atomic_path

    path = Path(path)
    if path.suffix.lower() == ".json":
        classes = frame.attrs["model"]["classes"]
        records = []
        for _, row in frame.iterrows():
            records.append({"record": row["record"], "valid": bool(row["valid"]), "problem": row["problem"] or None,
                            "fs": None if pd.isna(row["fs"]) else float(row["fs"]),
                            "duration_s": None if pd.isna(row["duration_s"]) else float(row["duration_s"]),
                            "leads": row["leads"] or None,
                            "probabilities": None if not row["valid"] else {c: float(row[c]) for c in classes}})
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"model": frame.attrs["model"], "records": records}, indent=2))
    else:
        out = frame.copy()
        ident = frame.attrs["model"]
        out["model"] = ident["name"]
        out["model_sha256"] = ident["sha256"]
        out["training_data"] = "SYNTHETIC" if ident["synthetic"] else ident["training_data"]
        for column in ("record", "problem", "model", "training_data"):
            out[column] = out[column].map(spreadsheet_safe)
        with atomic_path(path) as tmp:
            out.to_csv(tmp, index=False, float_format="%.6g")
    return path

"""LiteRT (TensorFlow Lite) export for devices: raw mV in, probabilities out, optionally quantised.

    from ecg_keras.export.litert import export_litert, LiteRTModel
    from ecg_keras.runs import resolve
    run = resolve("runs/fcn_wang")
    export_litert(run.model, "fcn.tflite", **run.export_kwargs())              # window model, float32
    export_litert(run.model, "fcn_int8.tflite", quantize="int8", calibration="../shared/data/ludb-1.0.1",
                  **run.export_kwargs())
    probs = LiteRTModel("fcn.tflite")(windows)                                # ai_edge_litert interpreter

    ecg-keras export litert RUN --out m.tflite [--quantize float16|dynamic|int8 --calibration DIR]
        [--whole-record [--record-seconds 10]] [--overwrite]

The graphs are the serving graphs of :mod:`ecg_keras.export.signatures` (the SavedModel and ONNX
exports use the same functions): :func:`~ecg_keras.export.signatures.window_probabilities`
standardises with the run's mean/std, runs the model in inference mode and applies the sigmoid.

* window model: input ``ecg`` (batch, window, leads) float32 mV -> ``probabilities`` (batch, classes)
  and ``valid`` (batch,) bool;
* whole-record model (``whole_record=True``): input ``ecg`` (batch, length, leads), records of one
  length per call -> ``probabilities`` (batch, classes), ``n_windows`` (batch,) and ``valid``
  (batch,) bool: windows of
  ``window`` samples every ``stride`` (windows past the end dropped; a record shorter than one
  window is zero-padded after standardisation), aggregated by max or mean, as
  ``record_probabilities`` with ``lengths=None``. The length is dynamic by default (the
  interpreter resizes the input); ``record_seconds=10`` fixes it instead (a static graph,
  which some delegates require). All windows of a call go through the model as one batch (no
  chunked loop as in the SavedModel): memory grows with batch x record length, so the model is
  meant for short records (10 s) on devices.

Why not ``record_probabilities`` itself for the whole-record graph: it masks padded records with a
boolean ``tensor[:, :, None]`` (a ``StridedSlice`` on ``bool`` with a new axis), which has no
LiteRT builtin kernel (the converter asks for the TF Select "flex" runtime, which
``ai_edge_litert`` does not ship). Without per-record lengths no mask is needed: the record is
padded in mV with the standardiser's mean, which standardises to exactly 0.0 (float32
``(m - m) / s``), and the windows go through ``window_probabilities``; the result is
bit-identical to ``record_probabilities(..., lengths=None)``.

LiteRT cannot raise on values: as in the ONNX models, windows (window model) or records
(whole-record model) with a non-finite sample or a flat lead, and records longer than
``max_record_seconds``, give ``valid = False`` and NaN probabilities. The shape assertions of the
serving graphs (``tf.debugging.Assert``: lead count, window length) are dropped by the converter;
:class:`LiteRTModel` checks shapes and refuses invalid input in Python (ValueError naming the
records and leads, as the SavedModel signatures do) before invoking the interpreter.

Quantisation (``quantize``): ``None`` float32; ``"float16"`` float16 weights (dequantised at load
on CPU); ``"dynamic"`` int8 weights, activations quantised on the fly; ``"int8"`` int8 weights and
activations calibrated on ``calibration`` (raw-mV windows or records, or a folder of records read
with :func:`ecg_keras.datasets.load` at the model's sampling rate, e.g. LUDB); ops without an int8
kernel stay float, and the input and output stay float32 mV / probabilities.

The :class:`~ecg_keras.export.signatures.ServingSpec` (classes, mean/std, window, stride, ...)
plus ``whole_record`` and ``quantize`` is stored as JSON in the flatbuffer's metadata under the
name ``ecg_keras`` (:func:`read_metadata`). The file is written atomically (temporary file +
rename); an existing file is kept unless ``overwrite=True``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # TensorFlow is imported when a model is converted (``ecg-keras export --help`` stays fast)
    import tensorflow as tf

    from ecg_keras.export.signatures import ServingSpec
    from ecg_keras.standardize import Standardizer

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
INPUT_KEY, OUTPUT_KEY, WINDOWS_KEY, VALID_KEY = "ecg", "probabilities", "n_windows", "valid"  # as signatures
METADATA_NAME = "ecg_keras"
MAX_CALIBRATION = 256  # representative samples for int8 (windows, or records for the whole-record model)


# --------------------------------------------------------------------------- graphs
def litert_record_probabilities(logits, x: "tf.Tensor", spec: "ServingSpec"
                                ) -> tuple["tf.Tensor", "tf.Tensor", "tf.Tensor"]:
    """Records of one length (batch, length, leads) raw mV -> ((batch, classes), windows per record, valid).

    The LiteRT-convertible form of ``record_probabilities(logits, x, None, spec,
    refuse_invalid=False)`` (see the module docstring): every op has a LiteRT builtin kernel.
    Records with a non-finite sample or a flat lead, or longer than ``spec.max_length``, get
    ``valid = False`` and NaN probabilities (LiteRT cannot raise), as in the ONNX models.
    """
    import tensorflow as tf

    from ecg_keras.export.signatures import window_probabilities, window_valid

    w, s = spec.window, spec.stride
    shape = tf.shape(x)
    batch, total = shape[0], shape[1]
    valid = tf.logical_and(window_valid(x), total <= spec.max_length)  # per record, over its samples
    padded = tf.maximum(total, w)
    # mV padding that standardises to exactly 0.0, i.e. zero-padding after standardisation.
    xp = tf.pad(x, [[0, 0], [0, padded - total], [0, 0]], constant_values=np.float32(spec.mean))
    n_win = (padded - w) // s + 1
    index = (tf.range(n_win) * s)[:, None] + tf.range(w)[None, :]  # (n_win, w)
    windows = tf.reshape(tf.gather(xp, index, axis=1), [batch * n_win, w, spec.leads])
    # refuse_invalid=True: its assertions are dropped by the converter; validity is per record (above)
    probs = tf.reshape(window_probabilities(logits, windows, spec), [batch, n_win, len(spec.classes)])
    agg = tf.reduce_max(probs, axis=1) if spec.aggregation == "max" else tf.reduce_mean(probs, axis=1)
    agg = tf.where(valid[:, None], agg, tf.constant(np.nan, agg.dtype))
    return agg, tf.fill([batch], n_win), valid


def _function(model, spec: "ServingSpec", whole_record: bool, record_length: int | None):
    import tensorflow as tf

    from ecg_keras.export.signatures import (INPUT_KEY, OUTPUT_KEY, VALID_KEY, WINDOWS_KEY, logits_function,
                                             window_probabilities, window_signature, window_valid)

    logits = logits_function(model, spec)
    if whole_record:
        def fn(ecg):
            probs, n, valid = litert_record_probabilities(logits, ecg, spec)
            return {OUTPUT_KEY: probs, WINDOWS_KEY: n, VALID_KEY: valid}
        signature = [tf.TensorSpec([None, record_length, spec.leads], tf.float32, name=INPUT_KEY)]
    else:
        def fn(ecg):  # as the ONNX window model: NaN probabilities and valid = False for refused windows
            return {OUTPUT_KEY: window_probabilities(logits, ecg, spec, refuse_invalid=False),
                    VALID_KEY: window_valid(ecg)}
        signature = window_signature(spec)
    return tf.function(fn, input_signature=signature)


# --------------------------------------------------------------------------- calibration
def calibration_samples(calibration, spec: "ServingSpec", *, whole_record: bool, record_length: int | None = None,
                        limit: int = MAX_CALIBRATION, seed: int = 0) -> list[np.ndarray]:
    """Representative inputs (raw mV, float32), one sample each, at most ``limit``.

    ``calibration``: an array of windows (n, window, leads) or records (n, length, leads), a list
    of (length_i, leads) records, or a folder of records (:func:`ecg_keras.datasets.load` at the
    spec's sampling rate). The window model is calibrated on evaluation windows cut from the
    records (window, stride of the spec); the whole-record model on records (cut or zero-padded
    to ``record_length`` when it is fixed).
    """
    from ecg_keras.windows import eval_windows

    if calibration is None:
        raise ValueError("quantize='int8' needs calibration data: windows/records in mV or a folder of records")
    if isinstance(calibration, (str, Path)):
        from ecg_keras.datasets import load

        signals = load(calibration, sampling_rate=spec.sampling_rate).signals
        records = [np.asarray(r, dtype=np.float32) for r in signals]
    elif isinstance(calibration, np.ndarray):
        records = list(np.asarray(calibration, dtype=np.float32))
    else:
        records = [np.asarray(r, dtype=np.float32) for r in calibration]
    if not records:
        raise ValueError("calibration data is empty")
    for r in records:
        if r.ndim != 2 or r.shape[1] != spec.leads:
            raise ValueError(f"calibration samples must be (length, {spec.leads}) in mV, got {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError("calibration data contains non-finite values (NaN/inf)")
    if whole_record:
        if record_length is not None:
            records = [np.pad(r[:record_length], [(0, max(0, record_length - len(r))), (0, 0)]) for r in records]
        samples = records
    else:
        short = [np.pad(r, [(0, spec.window - len(r)), (0, 0)]) if len(r) < spec.window else r for r in records]
        samples = list(eval_windows(short, window=spec.window, stride=spec.stride)[0])
    usable = [x for x in samples if np.ptp(x, axis=0).min() > 0]  # flat leads give NaN (valid = False)
    if not usable:
        raise ValueError("no calibration sample without a flat lead")
    samples = usable
    if len(samples) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(samples), size=limit, replace=False))
        samples = [samples[i] for i in pick]
    return [np.ascontiguousarray(s, dtype=np.float32) for s in samples]


# --------------------------------------------------------------------------- conversion
def convert_litert(model, *, standardizer: "Standardizer", classes, sampling_rate: int = 100,
                   whole_record: bool = False, record_seconds: float | None = None, aggregation: str = "max",
                   activation: str | None = "sigmoid", quantize: str | None = None, calibration=None,
                   max_record_seconds: float | None = None, extra: dict | None = None) -> tuple[bytes, dict]:
    """The LiteRT flatbuffer (bytes, metadata embedded) and its metadata dict; see :func:`export_litert`."""
    import tensorflow as tf

    from ecg_keras.export.signatures import ServingSpec

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if record_seconds is not None and not whole_record:
        raise ValueError("record_seconds applies to the whole-record model (whole_record=True)")
    limits = {} if max_record_seconds is None else {"max_record_seconds": max_record_seconds}
    spec = ServingSpec.create(model, classes=classes, standardizer=standardizer, sampling_rate=sampling_rate,
                              aggregation=aggregation, activation=activation, extra=extra, **limits)
    record_length = None if record_seconds is None else int(round(record_seconds * spec.sampling_rate))
    if record_length is not None and record_length < 1:
        raise ValueError(f"record_seconds must be positive, got {record_seconds}")
    fn = _function(model, spec, whole_record, record_length)
    concrete = fn.get_concrete_function()
    # The converter freezes the variables reachable from the trackable object: track exactly the
    # tf.Variables the traced function reads (as ServingModule does), not the Keras model.
    holder = tf.Module()
    holder.model_variables = list(concrete.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        samples = calibration_samples(calibration, spec, whole_record=whole_record, record_length=record_length)

        def representative():
            for sample in samples:
                yield [sample[None]]

        converter.representative_dataset = representative
    elif calibration is not None:
        raise ValueError(f"calibration is only used with quantize='int8', not {quantize!r}")
    flatbuffer = converter.convert()
    meta = {**spec.to_dict(), "whole_record": bool(whole_record), "record_length": record_length,
            "quantize": quantize, "format": "litert"}
    return _with_metadata(flatbuffer, meta), meta


def _with_metadata(flatbuffer: bytes, meta: dict) -> bytes:
    """``flatbuffer`` with ``meta`` as JSON in a metadata entry named :data:`METADATA_NAME`."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(path_or_bytes) -> dict:
    """The metadata JSON stored by :func:`export_litert` (spec, whole_record, quantize)."""
    from tensorflow.lite.tools import flatbuffer_utils

    data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else Path(path_or_bytes).read_bytes()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    for entry in model.metadata or []:
        if entry.name in (METADATA_NAME, METADATA_NAME.encode()):
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    raise ValueError(f"no {METADATA_NAME!r} metadata in this LiteRT model (not written by export_litert)")


def export_litert(model, path: str | Path, *, standardizer: "Standardizer", classes, sampling_rate: int = 100,
                  whole_record: bool = False, record_seconds: float | None = None, aggregation: str = "max",
                  activation: str | None = "sigmoid", quantize: str | None = None, calibration=None,
                  max_record_seconds: float | None = None, extra: dict | None = None,
                  overwrite: bool = False) -> Path:
    """Convert ``model`` (Keras, logits) to a LiteRT flatbuffer at ``path``; returns ``path``.

    Standardisation and activation (and for ``whole_record`` the windows and their aggregation)
    are inside the graph, so the model takes raw mV. ``quantize``: None | "float16" | "dynamic" |
    "int8" (``calibration`` required: see :func:`calibration_samples`). ``record_seconds`` fixes
    the whole-record input length (default: dynamic). An existing ``path`` raises
    FileExistsError unless ``overwrite``; the file is replaced atomically.
    """
    from ecg_keras.export.files import check_target, replace_file

    path = check_target(path, overwrite)  # before the (slow) conversion, as export_onnx
    if path.is_dir():
        raise IsADirectoryError(f"{path} is not a file")
    flatbuffer, _ = convert_litert(model, standardizer=standardizer, classes=classes, sampling_rate=sampling_rate,
                                   whole_record=whole_record, record_seconds=record_seconds,
                                   aggregation=aggregation, activation=activation, quantize=quantize,
                                   calibration=calibration, max_record_seconds=max_record_seconds, extra=extra)
    with replace_file(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(flatbuffer)
    return path


# --------------------------------------------------------------------------- running
class LiteRTModel:
    """An exported model in ``ai_edge_litert``'s interpreter, with the input checks the graph lacks.

    ``model(ecg)`` -> probabilities (batch, classes); for a whole-record model
    ``model.run(ecg)`` also returns ``n_windows``. ``ecg``: float32 mV, (batch, window, leads) for
    the window model, (batch, length, leads) for the whole-record model.
    """

    def __init__(self, path_or_bytes, num_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:  # pragma: no cover - the [litert] extra is missing
            raise ImportError("running LiteRT models needs ai-edge-litert: pip install 'ecg_keras[litert]'") from err
        data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else Path(path_or_bytes).read_bytes()
        self.metadata = read_metadata(data)
        self.size = len(data)
        self.interpreter = Interpreter(model_content=bytes(data), num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner()

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    def _check(self, ecg) -> np.ndarray:
        from ecg_keras.io.records import check_signal

        m = self.metadata
        x = np.ascontiguousarray(ecg, dtype=np.float32)
        length = None if m["whole_record"] else m["window"]
        length = m.get("record_length") or length
        if x.ndim != 3 or x.shape[2] != m["leads"] or (length is not None and x.shape[1] != length) or not len(x):
            want = f"(batch, {length if length else 'length'}, {m['leads']})"
            raise ValueError(f"'{INPUT_KEY}' must be {want} float32 mV, got shape {x.shape}")
        if x.shape[1] < 1:
            raise ValueError(f"records in '{INPUT_KEY}' have no samples")
        # the refusals of the SavedModel signatures and predict (DataError, a ValueError, naming records
        # and leads): the validity policy of every serving path, check_signal's defaults
        for i, record in enumerate(x):
            check_signal(record, None, f"record {i}", max_length=m.get("max_length"))
        return x

    def run(self, ecg, check: bool = True) -> dict:
        """All outputs; ``check=False`` feeds ``ecg`` unchecked (invalid rows: ``valid`` False, NaN)."""
        x = self._check(ecg) if check else np.ascontiguousarray(ecg, dtype=np.float32)
        return self.runner(**{INPUT_KEY: x})

    def __call__(self, ecg) -> np.ndarray:
        return self.run(ecg)[OUTPUT_KEY]


__all__ = ["LiteRTModel", "QUANTIZATIONS", "calibration_samples", "convert_litert", "export_litert",
           "litert_record_probabilities", "read_metadata"]

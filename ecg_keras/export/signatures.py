"""In-graph serving functions: raw mV in, probabilities out (docs/PROTOCOL.md "Windows", "Data").

Everything the Python pipeline (:mod:`ecg_keras.windows`) does around the model happens inside
the graph here, so an exported artifact needs no ecg_keras code on the serving side:

* standardisation with the run's scalar mean/std (the same float32 ops as
  :meth:`Standardizer.transform`, so results are bit-identical);
* the activation (sigmoid on logits, or none for regression);
* for whole records, test-time augmentation: windows of ``window`` samples with ``stride``
  (windows past the end dropped; records shorter than one window zero-padded *after*
  standardisation to one window), aggregated per record by element-wise max or mean.

Windows are cut with ``tf.gather`` on an index built from ``tf.range`` (not ``tf.signal.frame``)
so that the same function converts to ONNX with tf2onnx and keeps a dynamic record length. They
go through the model ``chunk_windows`` (512) at a time in a ``tf.while_loop`` that aggregates on
the fly: a 1-h record at 100 Hz adds ~0.4 GB of memory for fcn_wang (ONNX Runtime) instead of
~1.2 GB when all its windows were one batch; 512 lets a batch of up to 73 10-s records run in one
call (docs/RESULTS.md 8.8). Records over ``max_record_seconds`` (24 h) are refused.

Input the models must not answer follows the one validity policy of every serving path
(:func:`ecg_keras.io.records.check_signal`'s defaults, docs/SERVING.md "Validity policy"): a
non-finite sample, a flat lead (peak-to-peak below ``FLAT_MV`` over the record or window), a
value beyond ``MAX_MV``, no samples, or a record over ``max_record_seconds``. The SavedModel
signatures fail with InvalidArgumentError naming the records and leads; the ONNX and LiteRT
models (which cannot raise) flag them with ``valid = False`` and NaN probabilities.
"""
from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import tensorflow as tf

from ecg_keras.io.records import FLAT_MV, LEAD_NAMES, MAX_MV, lead_name
from ecg_keras.models.bnfold import as_conv2d, fold_batchnorm
from ecg_keras.standardize import Standardizer
from ecg_keras.tasks import ACTIVATIONS, AGGREGATIONS
from ecg_keras.windows import MAX_RECORD_SECONDS, model_window

#: Windows per model call in the whole-record functions (records of a batch share the budget:
#: max(1, CHUNK_WINDOWS // batch) windows of every record per step).
CHUNK_WINDOWS = 512
VALID_KEY = "valid"
INPUT_KEY = "ecg"
LENGTH_KEY = "length"
OUTPUT_KEY = "probabilities"
CLASSES_KEY = "classes"
WINDOWS_KEY = "n_windows"


@dataclass(frozen=True)
class ServingSpec:
    """Everything besides the weights that a served model needs (stored in the artifact)."""

    classes: tuple[str, ...]
    mean: float
    std: float
    sampling_rate: int = 100
    window: int = 250
    stride: int = 125
    leads: int = 12
    aggregation: str = "max"
    activation: str | None = "sigmoid"
    max_record_seconds: float = MAX_RECORD_SECONDS  # longer records are refused
    chunk_windows: int = CHUNK_WINDOWS  # windows per model call for whole records
    extra: dict = field(default_factory=dict)  # arch, task, dataset ... (documentation only)

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not self.classes:
            raise ValueError("classes must not be empty")
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"window and stride must be positive, got {self.window}, {self.stride}")
        if self.chunk_windows < 1:
            raise ValueError(f"chunk_windows must be positive, got {self.chunk_windows}")
        if not self.max_record_seconds > 0:
            raise ValueError(f"max_record_seconds must be positive, got {self.max_record_seconds}")

    @property
    def max_length(self) -> int:
        """Longest accepted record in samples (``max_record_seconds`` at the sampling rate)."""
        return int(self.max_record_seconds * self.sampling_rate)

    @classmethod
    def create(cls, model, *, classes, standardizer: Standardizer, sampling_rate: int = 100,
               aggregation: str = "max", activation: str | None = "sigmoid", window: int | None = None,
               stride: int | None = None, max_record_seconds: float = MAX_RECORD_SECONDS,
               chunk_windows: int = CHUNK_WINDOWS, extra: dict | None = None) -> "ServingSpec":
        """Spec for ``model``: window from the model's fixed input length, else 2.5 s at the rate."""
        classes = tuple(str(c) for c in classes)
        if window is None:
            window = model_window(model, sampling_rate)
        stride = stride or window // 2
        leads = int(model.input_shape[-1])
        n_out = int(model.output_shape[-1])
        if n_out != len(classes):
            raise ValueError(f"model has {n_out} outputs but {len(classes)} class names were given")
        return cls(classes=classes, mean=float(standardizer.mean), std=float(standardizer.std),
                   sampling_rate=int(sampling_rate), window=int(window), stride=int(stride), leads=leads,
                   aggregation=aggregation, activation=activation, max_record_seconds=float(max_record_seconds),
                   chunk_windows=int(chunk_windows), extra=dict(extra or {}))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["lead_order"] = list(LEAD_NAMES) if self.leads == 12 else None
        d["units"] = "mV"
        d["max_length"] = self.max_length
        return d


def _standardize(x: tf.Tensor, spec: ServingSpec) -> tf.Tensor:
    # Same float32 arithmetic as Standardizer.transform: (x - f32(mean)) / f32(std).
    return (x - tf.constant(np.float32(spec.mean))) / tf.constant(np.float32(spec.std))


def _activate(outputs: tf.Tensor, spec: ServingSpec) -> tf.Tensor:
    return tf.math.sigmoid(outputs) if spec.activation == "sigmoid" else outputs


def _assert(condition: tf.Tensor, *message) -> tf.Operation:
    """Runtime check whose error reads "assertion failed: [expected 12 leads, got] [8]"."""
    return tf.debugging.Assert(tf.reduce_all(condition), list(message), summarize=8)


def _checked_dims(x: tf.Tensor, spec: ServingSpec) -> tuple[tf.Tensor, list]:
    """(batch, samples, leads) of ``x`` as a tensor, and the lead-count check.

    Runtime check: loaded signatures (and TF Serving) feed tensors without checking them against
    the signature's shape, so without it a wrong input would fail deep inside the model. The
    message prints the whole shape, which also explains inputs of the wrong rank (a missing batch
    axis reads "got shape [1000 12]"; the rank itself cannot be checked at run time because TF
    folds it from the signature's static rank).
    """
    shape = tf.shape(x)
    padded = tf.concat([shape, tf.zeros([3], tf.int32)], 0)[:3]  # no index error for rank < 3
    leads_ok = _assert(tf.equal(padded[2], spec.leads),
                       f"'{INPUT_KEY}' must be (batch, samples, {spec.leads}) with the leads "
                       f"{', '.join(LEAD_NAMES)} in the last axis: expected {spec.leads} leads, got shape", shape)
    with tf.control_dependencies([leads_ok]):  # later checks read dims: the lead check reports first
        dims = tf.identity(padded)
    return dims, [leads_ok]


def logits_function(model, spec: ServingSpec, *, conv2d: bool = False, constant_weights: bool = False):
    """The Keras model (inference mode) as one tf.function over (n, window, leads) windows.

    The serving functions call it instead of the Keras model, so the model is traced once per
    export however many signatures use it (the dominant cost of exporting deep models). Every
    conv->BatchNorm pair is folded into the convolution first
    (:func:`~ecg_keras.models.bnfold.fold_batchnorm`): the exported graphs have no BN op there.
    ``conv2d`` (the ONNX export): the model runs as its 2-D form over (n, 1, window, leads)
    (:func:`~ecg_keras.models.bnfold.as_conv2d`) where it has one. ``constant_weights`` (the ONNX
    export): the weights are constants of the function instead of variable reads, so inside the
    whole-record ``while_loop`` they are constants of the loop body, not loop-carried values;
    tf2onnx turns a Keras LSTM / GRU into the ONNX LSTM / GRU op only when its weights are
    constants (otherwise it stays a Loop over the time steps: docs/RESULTS.md section 8.8).
    """
    model = fold_batchnorm(model)
    signature = [tf.TensorSpec([None, spec.window, spec.leads], tf.float32)]
    flat = as_conv2d(model) if conv2d else None
    net = model if flat is None else flat
    if constant_weights:
        values = [[v.numpy() for v in net.trainable_variables], [v.numpy() for v in net.non_trainable_variables]]

        def run(z):
            return net.stateless_call(*[[tf.constant(v) for v in vs] for vs in values], z, training=False)[0]
    else:
        def run(z):
            return net(z, training=False)
    if flat is not None:
        return tf.function(lambda z: run(z[:, None]), input_signature=signature)
    return tf.function(run, input_signature=signature)


def _logits(model, z: tf.Tensor) -> tf.Tensor:
    return model(z, training=False) if isinstance(model, keras.Layer) else model(z)


def _signal_problems(x: tf.Tensor, lengths: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(batch, leads) booleans of the validity policy: non-finite samples, flat leads (peak-to-peak
    below ``FLAT_MV``; a record without samples counts as flat) and values beyond ``MAX_MV``.

    Only the first ``lengths[i]`` samples of record i count (the rest is padding).
    """
    finite = tf.math.is_finite(x)
    if lengths is not None:
        inside = (tf.range(tf.shape(x)[1])[None, :] < lengths[:, None])[:, :, None]
        usable = tf.logical_and(finite, inside)
        nonfinite = tf.reduce_any(tf.logical_and(tf.logical_not(finite), inside), axis=1)
        inf = tf.constant(np.inf, x.dtype)
        hi = tf.reduce_max(tf.where(usable, x, -inf), axis=1)
        lo = tf.reduce_min(tf.where(usable, x, inf), axis=1)
    else:  # no select against +-inf constants here: an int8 LiteRT export would quantise x over them
        nonfinite = tf.reduce_any(tf.logical_not(finite), axis=1)
        hi, lo = tf.reduce_max(x, axis=1), tf.reduce_min(x, axis=1)  # a lead with NaN/Inf is refused anyway
    # compared with 0, not with the threshold: int8 LiteRT clamps a compared constant into the other
    # tensor's calibrated range (which always holds 0), and that would flag every window
    flat = tf.logical_and((hi - lo) - tf.constant(FLAT_MV, x.dtype) < 0, tf.logical_not(nonfinite))
    large = tf.logical_and(tf.maximum(hi, -lo) - tf.constant(MAX_MV, x.dtype) > 0, tf.logical_not(nonfinite))
    return nonfinite, flat, large


def _problem_checks(x: tf.Tensor, lengths: tf.Tensor | None, spec: ServingSpec, what: str) -> list:
    """Runtime errors for non-finite samples and flat leads, naming the records and leads.

    The error reads e.g. "assertion failed: [non-finite samples (NaN/Inf) in the record(s)] [1]
    [lead(s)] [V2] ...": TF Serving returns it as the error of the request (no probabilities).
    """
    nonfinite, flat, large = _signal_problems(x, lengths)
    names = tf.constant([lead_name(j, spec.leads) for j in range(spec.leads)])
    checks = []
    for bad, text in ((nonfinite, "non-finite samples (NaN/Inf)"),
                      (flat, f"a flat line (peak-to-peak below {FLAT_MV:g} mV: lead-off or a missing lead)"),
                      (large, f"values beyond {MAX_MV:g} mV (wrong units or corrupt data)")):
        checks.append(_assert(
            tf.logical_not(tf.reduce_any(bad)),
            f"{text} in the {what}(s) (0-based index in the batch)", tf.where(tf.reduce_any(bad, axis=1))[:, 0],
            "lead(s)", tf.boolean_mask(names, tf.reduce_any(bad, axis=0)),
            "; the model does not answer such input"))
    return checks


def _valid(x: tf.Tensor, lengths: tf.Tensor | None) -> tf.Tensor:
    """(batch,) bool: the record passes the validity policy (ONNX and LiteRT, which cannot raise)."""
    nonfinite, flat, large = _signal_problems(x, lengths)
    return tf.logical_not(tf.reduce_any(nonfinite | flat | large, axis=1))


def _mask_invalid(probs: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    return tf.where(valid[:, None], probs, tf.constant(np.nan, probs.dtype))


def window_probabilities(model, x: tf.Tensor, spec: ServingSpec, *, refuse_invalid: bool = True) -> tf.Tensor:
    """(batch, window, leads) raw mV -> (batch, classes): standardise, model, activation.

    ``model``: a Keras model (logits) or the :func:`logits_function` of one. Windows with
    non-finite samples or a flat lead raise InvalidArgumentError (``refuse_invalid``), else (ONNX)
    get NaN probabilities: use :func:`window_valid` for the flag.
    """
    dims, checks = _checked_dims(x, spec)
    n = dims[1]
    checks += [_assert(
        tf.equal(n, spec.window),
        f"expected windows of {spec.window} samples ({spec.window / spec.sampling_rate:g} s at "
        f"{spec.sampling_rate} Hz; use the predict_record signature for whole records), got", n)]
    with tf.control_dependencies(checks):
        x = tf.identity(x)
    if refuse_invalid:
        with tf.control_dependencies(_problem_checks(x, None, spec, "window")):
            x = tf.identity(x)
    probs = _activate(_logits(model, _standardize(x, spec)), spec)
    return probs if refuse_invalid else _mask_invalid(probs, _valid(x, None))


def window_valid(x: tf.Tensor) -> tf.Tensor:
    """(batch,) bool: the window passes the validity policy (finite, no flat lead, within ``MAX_MV``)."""
    return _valid(x, None)


def record_probabilities(model, x: tf.Tensor, lengths: tf.Tensor | None, spec: ServingSpec, *,
                         refuse_invalid: bool = True) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Whole records (batch, length, leads) raw mV -> ((batch, classes), windows per record, valid).

    ``lengths`` (batch,) int32 gives each record's true length when shorter records are
    zero-padded at the end to the batch's length (``None``: every record fills the tensor).

    Windows are cut, standardised and run through the model in chunks of at most
    ``spec.chunk_windows`` windows (``tf.while_loop``), and aggregated on the fly (running max or
    sum), so memory does not grow with the number of windows. Records longer than
    ``spec.max_length`` samples are refused. Records with non-finite samples or a flat lead (within
    their length) raise InvalidArgumentError naming the records and leads (``refuse_invalid``);
    otherwise (ONNX, which cannot raise; XLA, which ignores assertions: use ``refuse_invalid=False``
    under ``jit_compile``) their probabilities are NaN and ``valid`` is False.
    """
    w, s = spec.window, spec.stride
    dims, checks = _checked_dims(x, spec)
    batch, total = dims[0], dims[1]
    checks += [
        _assert(total > 0, f"records in '{INPUT_KEY}' have no samples: expected (batch, length >= 1, {spec.leads})"),
        _assert(total <= spec.max_length,
                f"records longer than {spec.max_length} samples ({spec.max_record_seconds:g} s at "
                f"{spec.sampling_rate} Hz, the export's max_record_seconds) are refused; split the record. Got", total)]
    if lengths is None:
        lengths = tf.fill([batch], total)
    else:
        lengths = tf.cast(lengths, tf.int32)
        checks += [
            _assert(tf.equal(tf.shape(lengths)[0], batch),
                    f"'{LENGTH_KEY}' needs one entry per record in '{INPUT_KEY}': records, lengths =",
                    batch, tf.shape(lengths)[0]),
            _assert(lengths > 0, f"every '{LENGTH_KEY}' must be >= 1, got", lengths),
            _assert(lengths <= total, f"'{LENGTH_KEY}' must not exceed the padded length", total,
                    f"of '{INPUT_KEY}', got", lengths),
        ]
    with tf.control_dependencies(checks):
        x = tf.identity(x)
    if refuse_invalid:
        valid = tf.ones([batch], tf.bool)
        with tf.control_dependencies(_problem_checks(x, lengths, spec, "record")):
            x = tf.identity(x)
    else:  # ONNX: no error possible; empty or over-long records are flagged and skipped (no window computed)
        usable = tf.logical_and(total > 0, total <= spec.max_length)
        valid = tf.logical_and(_valid(x, lengths), usable)
    n_classes = len(spec.classes)
    n_win = (tf.maximum(total, w) - w) // s + 1  # windows of the padded batch (shorter records: 1)
    valid_per_record = (tf.maximum(lengths, w) - w) // s + 1  # windows inside each record
    # windows per record per step: the batch shares the budget; no more than the record has
    per_step = tf.minimum(tf.maximum(1, spec.chunk_windows // tf.maximum(batch, 1)), n_win)
    n_steps = (n_win + per_step - 1) // per_step
    if not refuse_invalid:
        n_steps = tf.where(usable, n_steps, 0)  # no window of an empty record is cut (no Gather at -1)
    offsets = tf.range(w)
    chunk = tf.range(per_step)  # one fixed chunk shape for every step (XLA needs static shapes in the loop)

    def step(i, acc):
        win = i * per_step + chunk  # window numbers of this chunk; past n_win in the last one (unused)
        index = (win * s)[:, None] + offsets[None, :]  # (m, w) sample positions, may pass the end
        windows = tf.gather(x, tf.minimum(index, total - 1), axis=1)  # (batch, m, w, leads)
        # zeros after standardisation past each record's end (as windows.py pads short records)
        inside = (index[None, :, :] < lengths[:, None, None])[..., None]
        z = tf.where(inside, _standardize(windows, spec), tf.zeros_like(windows))
        probs = _activate(_logits(model, tf.reshape(z, [-1, w, spec.leads])), spec)
        probs = tf.reshape(probs, tf.concat([tf.shape(windows)[:2], [n_classes]], 0))
        use = (win[None, :] < valid_per_record[:, None])[:, :, None]
        if spec.aggregation == "max":
            return i + 1, tf.maximum(acc, tf.reduce_max(tf.where(use, probs, tf.constant(-np.inf, probs.dtype)),
                                                        axis=1))
        return i + 1, acc + tf.reduce_sum(tf.where(use, probs, tf.zeros_like(probs)), axis=1)

    init = tf.fill([batch, n_classes], tf.constant(-np.inf if spec.aggregation == "max" else 0.0, tf.float32))
    _, agg = tf.while_loop(lambda i, acc: i < n_steps, step, [tf.constant(0), init],
                           shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, n_classes])])
    if spec.aggregation == "mean":
        agg = agg / tf.cast(valid_per_record, agg.dtype)[:, None]
    if not refuse_invalid:
        agg = _mask_invalid(agg, valid)
    return agg, valid_per_record, valid


def window_signature(spec: ServingSpec) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, spec.window, spec.leads], tf.float32, name=INPUT_KEY)]


def record_signature(spec: ServingSpec) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, None, spec.leads], tf.float32, name=INPUT_KEY)]


def padded_record_signature(spec: ServingSpec) -> list[tf.TensorSpec]:
    return record_signature(spec) + [tf.TensorSpec([None], tf.int32, name=LENGTH_KEY)]


class ServingModule(tf.Module):
    """The object written as a SavedModel: three signatures over one Keras logits model.

    * ``serving_default(ecg)``: windows (b, window, leads) -> ``probabilities``, ``classes``;
    * ``predict_record(ecg)``: whole records of one length (b, length, leads) ->
      ``probabilities``, ``classes``, ``n_windows``;
    * ``predict_record_padded(ecg, length)``: records of different lengths zero-padded at the end
      to one length, with their true lengths.

    ``classes`` is the class-name vector repeated per row, (b, classes), so that both TF
    Serving REST formats ("instances" needs every output to share the batch dimension) carry the
    labels.
    """

    def __init__(self, model, spec: ServingSpec):
        super().__init__(name="ecg_keras_serving")
        logits = logits_function(model, spec)
        classes = tf.constant(list(spec.classes))

        def label(probs):
            return tf.tile(classes[None, :], [tf.shape(probs)[0], 1])

        def windows(ecg):
            probs = window_probabilities(logits, ecg, spec)
            return {OUTPUT_KEY: probs, CLASSES_KEY: label(probs)}

        def padded_records(ecg, length):
            probs, n, _ = record_probabilities(logits, ecg, length, spec)
            return {OUTPUT_KEY: probs, CLASSES_KEY: label(probs), WINDOWS_KEY: n}

        serving_default = tf.function(windows, input_signature=window_signature(spec))
        predict_record_padded = tf.function(padded_records, input_signature=padded_record_signature(spec))

        def records(ecg):  # one length for the batch: every record fills the tensor
            return predict_record_padded(ecg, tf.fill([tf.shape(ecg)[0]], tf.shape(ecg)[1]))

        predict_record = tf.function(records, input_signature=record_signature(spec))
        # The polymorphic functions stay out of the object graph (a plain namespace is not
        # tracked): tf.saved_model.save would retrace every tracked tf.function in its save
        # context, i.e. trace the model twice. Only their concrete functions are saved, as
        # signatures (see :meth:`signatures`).
        self._functions = types.SimpleNamespace(serving_default=serving_default, predict_record=predict_record,
                                                predict_record_padded=predict_record_padded)
        spec_json = json.dumps(spec.to_dict())
        # Not a signature (TF Serving needs inputs); Python clients: json.loads(loaded.metadata().numpy()).
        self.metadata = tf.function(lambda: tf.constant(spec_json), input_signature=[])
        # Track exactly the variables the traced functions read (the model's weights and BN
        # statistics), not the Keras model object: no Keras object graph goes into the SavedModel.
        used = {}
        for fn in self.signatures().values():
            for v in fn.variables:
                used.setdefault(id(v), v)
        self.model_variables = list(used.values())

    def signatures(self) -> dict:
        """Concrete functions for ``tf.saved_model.save(..., signatures=...)`` (traced once, cached)."""
        return {name: getattr(self._functions, name).get_concrete_function()
                for name in ("serving_default", "predict_record", "predict_record_padded")}

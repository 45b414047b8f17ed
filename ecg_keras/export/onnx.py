"""ONNX export of the window model and the whole-record model (tf2onnx ``from_function``).

The converted functions are the ones the SavedModel serves (:mod:`ecg_keras.export.signatures`),
so the ONNX graph also takes raw mV and returns probabilities:

* window model: input ``ecg`` (batch, window, leads) -> ``probabilities`` (batch, classes) and
  ``valid`` (batch,) bool;
* whole-record model (``whole_record=True``): input ``ecg`` (batch, length, leads) with a
  dynamic length (records in one batch share it) -> ``probabilities`` (batch, classes),
  ``n_windows`` (batch,) and ``valid`` (batch,) bool.

ONNX has no way to raise on values, so where the SavedModel signatures refuse an input (the
validity policy of docs/SERVING.md: non-finite samples, a flat lead, values beyond 100 mV, no
samples, a record longer than ``max_record_seconds``) the ONNX models return ``valid = False``
and NaN probabilities for that row.

Class names and the serving spec are stored in the model's metadata_props (``classes`` as a
JSON list, ``ecg_keras`` as the spec JSON). ONNX Runtime checks the declared input shape, so a
wrong lead count or window length fails with "Got invalid dimensions for input: ecg ...".
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import tensorflow as tf

from ecg_keras.export.files import check_target, replace_file
from ecg_keras.export.signatures import (CHUNK_WINDOWS, INPUT_KEY, OUTPUT_KEY, VALID_KEY, WINDOWS_KEY, ServingSpec,
                                         logits_function, record_probabilities, record_signature,
                                         window_probabilities, window_signature, window_valid)
from ecg_keras.windows import MAX_RECORD_SECONDS
from ecg_keras.standardize import Standardizer

DEFAULT_OPSET = 17


def _patch_tf2onnx_numpy2() -> None:
    # tf2onnx 1.17 predates numpy 2 in places; Keras's own ONNX export applies this same patch.
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:  # pragma: no cover - future Keras without the shim
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its np.object probe
        patch_tf2onnx()


def _name_dynamic_dims(proto, whole_record: bool) -> None:
    """Readable names for the dynamic dimensions ("batch", "length") instead of tf2onnx's unk__N."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        names = ["batch", "length" if whole_record and value.name == INPUT_KEY else None]
        for dim, name in zip(dims, names):
            if name and not dim.HasField("dim_value"):
                dim.dim_param = name


def _graph_inputs(graph) -> set[str]:
    """Every value name read by ``graph``'s nodes, their subgraphs included."""
    names = set()
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                names |= _graph_inputs(attr.g)
    return names


def _rename_input(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                _rename_input(attr.g, old, new)


def hoist_loop_invariants(graph) -> int:
    """Take the values a ``Loop`` body passes through unchanged out of the loop state; returns their count.

    TensorFlow's ``while_loop`` hands everything its body captures (the model's weights, the input
    records) to every iteration as loop variables, and tf2onnx keeps them as loop-carried values
    of the ONNX ``Loop``. ONNX Runtime then cannot constant-fold anything computed from them:
    every iteration re-ran each convolution kernel's ``Unsqueeze`` + ``Transpose`` (TF's
    (k, in, out) layout to ONNX's (out, in, 1, k)). Here a pass-through value whose final value
    is unused becomes an initializer of the body (when it is one outside) or an outer-scope
    reference (otherwise), so ONNX Runtime folds the weight transposes once at load time. The
    model computes the same values.
    """
    import onnx

    initializers = {t.name: t for t in graph.initializer}
    moved = 0
    for loop in [n for n in graph.node if n.op_type == "Loop"]:
        used = _graph_inputs(graph) | {o.name for o in graph.output}
        body = next(a.g for a in loop.attribute if a.name == "body")
        n_state = len(loop.input) - 2
        body_names = {o for n in body.node for o in n.output} | {t.name for t in body.initializer}
        keep = []
        for j in range(n_state):
            name, outer = body.input[2 + j].name, loop.input[2 + j]
            if body.output[1 + j].name != name or loop.output[j] in used or not outer or outer in body_names:
                keep.append(j)
                continue
            if outer in initializers:
                constant = onnx.TensorProto()
                constant.CopyFrom(initializers[outer])
                constant.name = name
                body.initializer.append(constant)
            else:
                _rename_input(body, name, outer)
            moved += 1
        if len(keep) < n_state:
            loop.input[:] = list(loop.input[:2]) + [loop.input[2 + j] for j in keep]
            loop.output[:] = [loop.output[j] for j in keep] + list(loop.output[n_state:])
            inputs = list(body.input[:2]) + [body.input[2 + j] for j in keep]
            outputs = list(body.output[:1]) + [body.output[1 + j] for j in keep] + list(body.output[1 + n_state:])
            for field, values in ((body.input, inputs), (body.output, outputs)):
                values = [type(v).FromString(v.SerializeToString()) for v in values]
                del field[:]
                field.extend(values)
    used = _graph_inputs(graph) | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return moved


def export_onnx(model, path: str | Path, *, standardizer: Standardizer, classes, sampling_rate: int = 100,
                whole_record: bool = False, aggregation: str = "max", activation: str | None = "sigmoid",
                opset: int = DEFAULT_OPSET, extra: dict | None = None, overwrite: bool = False,
                max_record_seconds: float = MAX_RECORD_SECONDS, chunk_windows: int = CHUNK_WINDOWS) -> Path:
    """Convert ``model`` (Keras, logits) with in-graph standardisation/activation(/TTA) to ``path``.

    An existing ``path`` is kept (FileExistsError) unless ``overwrite``. The file is written to a
    temporary name next to ``path`` and renamed onto it, so a failed write (disk full:
    :class:`~ecg_keras.export.files.ExportError`) leaves the previous file intact.
    """
    import onnx
    import tf2onnx

    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    check_target(path, overwrite)  # before the (slow) conversion
    spec = ServingSpec.create(model, classes=classes, standardizer=standardizer, sampling_rate=sampling_rate,
                              aggregation=aggregation, activation=activation, max_record_seconds=max_record_seconds,
                              chunk_windows=chunk_windows, extra=extra)
    # 2-D convolutions: the converted graph has no layout change between them (models.bnfold.as_conv2d);
    # constant weights: the LSTM layers inside the whole-record loop convert to ONNX LSTM ops (RESULTS 8.8)
    logits = logits_function(model, spec, conv2d=True, constant_weights=True)
    # ONNX cannot raise on values: inputs the SavedModel refuses (non-finite samples, a flat lead,
    # records over max_record_seconds) give valid = False and NaN probabilities instead.
    if whole_record:
        def fn(ecg):
            probs, n, valid = record_probabilities(logits, ecg, None, spec, refuse_invalid=False)
            return {OUTPUT_KEY: probs, WINDOWS_KEY: n, VALID_KEY: valid}
        signature = record_signature(spec)
    else:
        def fn(ecg):
            return {OUTPUT_KEY: window_probabilities(logits, ecg, spec, refuse_invalid=False),
                    VALID_KEY: window_valid(ecg)}
        signature = window_signature(spec)
    _patch_tf2onnx_numpy2()
    proto, _ = tf2onnx.convert.from_function(tf.function(fn, input_signature=signature), input_signature=signature,
                                             opset=opset)
    _name_dynamic_dims(proto, whole_record)
    hoist_loop_invariants(proto.graph)
    meta = {"classes": json.dumps(list(spec.classes)),
            "ecg_keras": json.dumps({**spec.to_dict(), "whole_record": bool(whole_record)})}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path = Path(path)
    with replace_file(path, overwrite=overwrite) as tmp:
        onnx.save(proto, str(tmp))
    return path


def physical_cores() -> int:
    """CPU cores (not hyperthreads) this process may run on; ``os.cpu_count()`` when unknown."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return len(cores) or len(cpus)


def session_options(threads: int | None = None):
    """``onnxruntime.SessionOptions`` for the exported models on CPU (docs/RESULTS.md section 8.4).

    All graph optimisations; ``threads`` (default: the physical cores) intra-op threads, sequential
    execution (ORT_PARALLEL was slower on the whole-record models); idle intra-op threads sleep
    instead of spinning (with other processes on the machine, spinning threads compete with the
    computation).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or physical_cores())
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def inference_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session for ``path`` with :func:`session_options`."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def read_metadata(session_or_path) -> dict:
    """The spec stored in an exported ONNX file (path or ``onnxruntime.InferenceSession``)."""
    if isinstance(session_or_path, (str, Path)):
        import onnx

        props = {p.key: p.value for p in onnx.load(str(session_or_path), load_external_data=False).metadata_props}
    else:
        props = dict(session_or_path.get_modelmeta().custom_metadata_map)
    return json.loads(props["ecg_keras"])


__all__ = ["DEFAULT_OPSET", "export_onnx", "hoist_loop_invariants", "inference_session", "physical_cores",
           "read_metadata", "session_options"]

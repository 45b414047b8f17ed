"""Import the PTB-XL benchmark's own PyTorch checkpoints into Keras, exactly.

    ecg-keras export from-torch CHECKPOINT --arch xresnet1d101 --task all --out runs/xresnet1d101_ref \\
        --standardizer standard_scaler.pkl [--classes mlb.pkl|classes.json] [--check PTBXL_DIR --expect y_test_pred.npy]

CHECKPOINT is a state dict of the reference code (helme/ecg_ptbxl_benchmarking, fastai v1 models
as ``fastai_model`` builds them: ``kernel_size=5``, ``lin_ftrs_head=[128]``, ``ps_head=0.5``):

* ``.npz`` whose keys are the state-dict keys (``np.savez(p, **{k: v.numpy() for k, v in sd.items()})``),
  read without torch;
* ``.pth`` / ``.pt``: a fastai v1 learner save (``{"model": state_dict, "opt": ...}``) or a plain
  state dict, read with ``torch.load(..., weights_only=True)`` (``pip install ecg_keras[torch]``).

Every weighted Keras layer is mapped to its PyTorch module by name and role (stem, block,
shortcut, head; :func:`plan`), never by the order of the weights. A missing, unexpected or
mis-shaped tensor stops the conversion with an error naming it, before anything is written. The
reference's xresnet blocks register their convolutions twice (``convs`` and ``convpath.0``):
such aliases must hold identical values and count once.

The result is an ordinary run directory (config.json with ``provenance``, classes.json,
standardizer.json, model.keras, COMPLETE), written to a temporary directory next to ``--out`` and
renamed at the end. The reference's ``standard_scaler.pkl`` is ONE scalar StandardScaler fitted on
all samples of all leads (``ss.fit(np.vstack(X_train).flatten()[:, None])``), i.e. exactly
:class:`ecg_keras.standardize.Standardizer`; a per-lead scaler is refused.

``--check DATA_DIR --expect y_test_pred.npy`` predicts PTB-XL's test fold with the reference's
protocol (:func:`check_predictions`), prints the max |diff| against the reference's saved
predictions and writes the run only within ``--tolerance``; the predictions are kept in
predictions/test.npz, so that ``ecg-keras evaluate RUN_DIR`` scores the imported model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_keras.export.torch_checkpoint import (  # noqa: F401  (re-exported)
    MAX_CHECKPOINT_BYTES, MIN_TORCH, ConversionError, read_checkpoint, read_classes, read_npz_headers,
    read_standard_scaler, task_classes)
from ecg_keras.export.torch_mapping import ARCHS, Entry, aliases, assign, plan  # noqa: F401  (re-exported)
from ecg_keras.paths import sha256
from ecg_keras.standardize import Standardizer

CONVERTER_VERSION = "1.0"
SAMPLING_RATE = 100
DEFAULT_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- the run directory
def build_model(arch: str, num_classes: int):
    from ecg_keras import models

    if arch not in ARCHS:
        raise ConversionError(f"unknown architecture {arch!r}; one of {', '.join(ARCHS)}")
    return models.get(arch, num_classes=num_classes)


def check_predictions(model, standardizer: Standardizer, data_dir, task: str, expect, classes) -> tuple[dict, dict]:
    """Predict PTB-XL's test fold (fold 10) as the reference does and compare with its y_test_pred.npy.

    Returns the comparison and ``{"ids", "y_true", "y_pred"}`` (written to predictions/test.npz,
    which ``ecg-keras evaluate RUN_DIR`` scores).

    Reference protocol (``fastai_model.predict``): 2.5-s windows with stride 1.25 s over every
    test record, sigmoid, element-wise max per record; records without a label of the task dropped.
    """
    from ecg_keras import datasets
    from ecg_keras.datasets.tasks import make_task, split
    from ecg_keras.windows import aggregation, predict_records

    records = datasets.load(data_dir, sampling_rate=SAMPLING_RATE)
    test = split(make_task(records, task)).test
    if list(test.classes) != list(classes):
        raise ConversionError(f"{data_dir}: task {task!r} has classes {list(test.classes)[:8]}..., the model "
                              f"{list(classes)[:8]}...; pass the reference's --classes")
    expected = np.load(expect, allow_pickle=False)
    if expected.shape != (len(test), len(classes)):
        raise ConversionError(f"{expect}: shape {expected.shape}, but the test fold of {task!r} has "
                              f"{len(test)} records x {len(classes)} classes")
    got = predict_records(model, test.signals, sampling_rate=SAMPLING_RATE, standardizer=standardizer,
                          how=aggregation(task), activation="sigmoid")
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    result = {"data": str(Path(data_dir).resolve()), "expect": str(Path(expect).resolve()),
              "records": int(len(test)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
    arrays = {"ids": np.asarray(test.ids), "y_true": np.asarray(test.y, np.float32), "y_pred": got.astype(np.float32)}
    return result, arrays


def convert(checkpoint, arch: str, task: str, out, *, standardizer: Standardizer, classes=None,
            dataset: str = "ptbxl", check=None, tolerance: float = DEFAULT_TOLERANCE, log=print) -> Path:
    """Convert ``checkpoint`` to the run directory ``out`` (see the module docstring).

    ``classes``: list of names (default: ``task_classes(task)``). ``check``: ``(data_dir,
    y_test_pred.npy)``; the run is written only if the max |diff| is within ``tolerance``.
    """
    from ecg_keras import tasks
    from ecg_keras.artefact import RunDir
    from ecg_keras.export.files import replace_directory
    from ecg_keras.preprocessing import preprocessing_spec
    from ecg_keras.version import __version__
    from ecg_keras.windows import aggregation, window_length

    checkpoint, out = Path(checkpoint), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
    classes = list(classes) if classes is not None else task_classes(task)
    state = read_checkpoint(checkpoint)
    model = build_model(arch, len(classes))
    counts = assign(arch, model, state)
    result = predictions = None
    if check is not None:
        result, predictions = check_predictions(model, standardizer, check[0], task, check[1], classes)
        ok = result["max_abs_diff"] <= tolerance
        log(f"check: {result['records']} test records, max |diff| {result['max_abs_diff']:.3g} vs the reference's "
            f"predictions (tolerance {tolerance:g}): {'OK' if ok else 'FAILED'}")
        if not ok:
            raise ConversionError(f"predictions differ from {check[1]} by up to {result['max_abs_diff']:.3g} "
                                  f"(> {tolerance:g}); nothing written")
    kind = tasks.kind_of(task)
    provenance = {"source_file": str(checkpoint.resolve()), "source_name": checkpoint.name,
                  "sha256": sha256(checkpoint), "format": checkpoint.suffix.lstrip("."),
                  "converter": "ecg_keras.export.from_torch", "converter_version": CONVERTER_VERSION,
                  "ecg_keras_version": __version__,
                  "reference": "helme/ecg_ptbxl_benchmarking (PyTorch, fastai v1)", **counts}
    if result is not None:
        provenance["check"] = {**result, "tolerance": tolerance}
    config = {"arch": arch, "task": task, "dataset": dataset, "sampling_rate": SAMPLING_RATE, "kind": kind,
              "classes": classes, "aggregation": aggregation(task), "window": window_length(SAMPLING_RATE),
              "leads": int(model.input_shape[-1]), "synthetic": False, "source": "from-torch",
              "provenance": provenance}

    with replace_directory(out) as tmp:  # built next to ``out``, renamed at the end, umask applied
        run = RunDir(tmp)
        run.write_start(config, classes, standardizer)
        run.save_model(model, preprocessing_spec(
            classes=classes, standardizer=standardizer, sampling_rate=SAMPLING_RATE, window=config["window"],
            aggregation=config["aggregation"], activation=tasks.kind(kind).activation))
        if predictions is not None:
            run.write_predictions("test", **predictions)
        run.mark_complete(source="from-torch")
    log(f"converted {checkpoint.name} ({counts['tensors']} tensors, {counts['aliases']} aliases) -> {out}: "
        f"{arch}, task {task}, {len(classes)} classes, standardizer mean {standardizer.mean:.6g} "
        f"std {standardizer.std:.6g}")
    return out

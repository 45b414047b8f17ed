"""Export for serving: SavedModel (TF Serving layout, window + whole-record signatures) and ONNX.

    from ecg_keras.export import export_savedmodel, export_onnx
    from ecg_keras.runs import resolve
    run = resolve("runs/xresnet1d101_all")   # or a released model's name, or a release directory
    export_savedmodel(run.model, "serving", version=1, **run.export_kwargs())
    export_onnx(run.model, "xresnet1d101_all.onnx", **run.export_kwargs())
    export_onnx(run.model, "xresnet1d101_all_record.onnx", whole_record=True, **run.export_kwargs())

See "Export and serving" in README.md for TF Serving and onnxruntime usage. Trained models are
read by :func:`ecg_keras.runs.resolve` (run directory, release name or release directory).
"""
from __future__ import annotations

from ecg_keras.export.files import ExportError
from ecg_keras.export.onnx import DEFAULT_OPSET, export_onnx
from ecg_keras.export.release import release_run
from ecg_keras.export.savedmodel import default_model_card, export_savedmodel, read_metadata
from ecg_keras.export.signatures import (LEAD_NAMES, ServingModule, ServingSpec, record_probabilities,
                                         window_probabilities)

__all__ = [
    "DEFAULT_OPSET", "ExportError", "LEAD_NAMES", "ServingModule", "ServingSpec", "default_model_card",
    "export_onnx", "export_savedmodel", "read_metadata", "record_probabilities", "release_run",
    "window_probabilities",
]

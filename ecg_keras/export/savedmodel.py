"""SavedModel export in TF Serving's layout: ``<base>/<model_name>/<version>/``.

The directory holds ``saved_model.pb``, ``variables/`` and ``assets/`` (``classes.txt``,
``model_card.md``, ``ecg_keras.json`` with the full :class:`ServingSpec`) and the signatures of
:class:`ServingModule` (``serving_default``, ``predict_record``, ``predict_record_padded``).
See "Export and serving" in README.md for the REST requests.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import tensorflow as tf

from ecg_keras.export.files import check_target, replace_directory
from ecg_keras.export.signatures import CHUNK_WINDOWS, LEAD_NAMES, ServingModule, ServingSpec
from ecg_keras.standardize import Standardizer
from ecg_keras.windows import MAX_RECORD_SECONDS

ASSET_FILES = ("classes.txt", "model_card.md", "ecg_keras.json")


def default_model_card(spec: ServingSpec) -> str:
    extra = spec.extra
    lines = [
        f"# ECG model: {extra.get('arch', 'unknown architecture')} / {extra.get('task', 'unknown task')}",
        "",
        f"- trained on: {extra.get('dataset', 'unknown')}",
        f"- input: raw 12-lead ECG in mV, lead order {', '.join(LEAD_NAMES)}, "
        f"{spec.sampling_rate} Hz (resample before sending)",
        f"- window: {spec.window} samples ({spec.window / spec.sampling_rate:g} s); whole records: "
        f"stride {spec.stride}, {spec.aggregation} over windows",
        f"- standardisation inside the graph: (x - {spec.mean:.6g}) / {spec.std:.6g}",
        f"- output: {'sigmoid probabilities' if spec.activation == 'sigmoid' else 'linear outputs'} "
        f"for {len(spec.classes)} classes (assets/classes.txt)",
        "- research use only; not a medical device.",
        "",
    ]
    return "\n".join(lines)


def export_savedmodel(model, out_base: str | Path, *, classes, standardizer: Standardizer,
                      sampling_rate: int = 100, model_name: str = "ecg", version: int = 1,
                      aggregation: str = "max", activation: str | None = "sigmoid",
                      model_card: str | None = None, extra: dict | None = None,
                      overwrite: bool = False, max_record_seconds: float = MAX_RECORD_SECONDS,
                      chunk_windows: int = CHUNK_WINDOWS) -> Path:
    """Write ``model`` (a Keras model outputting logits) to ``out_base/model_name/version``.

    Returns the version directory. ``extra`` (arch, task, dataset, ...) goes into the metadata
    and the default model card. Whole-record signatures refuse records longer than
    ``max_record_seconds`` (default 24 h) and run ``chunk_windows`` windows per model call.

    An existing version directory is kept (FileExistsError) unless ``overwrite``; the new version
    is built next to it and renamed into place, so a failed export (disk full:
    :class:`~ecg_keras.export.files.ExportError`) leaves the previous one intact.
    """
    spec = ServingSpec.create(model, classes=classes, standardizer=standardizer, sampling_rate=sampling_rate,
                              aggregation=aggregation, activation=activation, max_record_seconds=max_record_seconds,
                              chunk_windows=chunk_windows, extra=extra)
    if int(version) < 1:
        raise ValueError(f"version must be a positive integer (TF Serving loads the highest), got {version}")
    out = check_target(Path(out_base) / model_name / str(int(version)), overwrite,
                       hint="pass overwrite=True to replace it, or choose another version")
    module = ServingModule(model, spec)
    with tempfile.TemporaryDirectory() as tmp, replace_directory(out, overwrite=overwrite) as building:
        tmp = Path(tmp)
        (tmp / "classes.txt").write_text("\n".join(spec.classes) + "\n")
        (tmp / "model_card.md").write_text(model_card if model_card is not None else default_model_card(spec))
        (tmp / "ecg_keras.json").write_text(json.dumps(spec.to_dict(), indent=2))
        # Tracked assets are copied into <version>/assets/ and registered in the SavedModel.
        module.assets = {name.replace(".", "_"): tf.saved_model.Asset(str(tmp / name)) for name in ASSET_FILES}
        # Built next to the target and renamed into place: an existing version stays intact until the
        # new one is complete (files.replace_directory).
        tf.saved_model.save(module, str(building), signatures=module.signatures())
    return out


def read_metadata(savedmodel_dir: str | Path) -> dict:
    """The :class:`ServingSpec` dict stored in ``assets/ecg_keras.json``."""
    return json.loads((Path(savedmodel_dir) / "assets" / "ecg_keras.json").read_text())

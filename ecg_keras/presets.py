"""Presets: a trained model as one self-contained directory in keras-hub's layout, and the hubs.

A preset directory holds (file names: :data:`ecg_keras.runs.PRESET_FILES`, read by
:func:`ecg_keras.runs.resolve`, the one reader of trained models)::

    config.json          the Keras model's config (keras.saving.serialize_keras_object)
    model.weights.h5     its weights
    preprocessor.json    classes, standardiser, sampling rate, window, stride, aggregation, activation, leads
    metadata.json        name, versions, parameter count, the run's config, sha256 of the three files above
    README.md            the model card (Hugging Face reads its YAML header)

Nothing in it is pickled; the model is rebuilt with Keras's safe mode and every file is checked
against its recorded sha256 before use (a mismatch is refused, as for the manifest's weights).

Handles: ``hf://owner/name`` (optionally ``@revision``) is fetched with
``huggingface_hub.snapshot_download`` into the Hugging Face cache (``$HF_HOME``, ``$HF_HUB_CACHE``);
with ``$HF_HUB_OFFLINE=1`` only the cache is used. ``kaggle://owner/model/keras/variation[/version]``
goes through ``kagglehub.model_download`` (``pip install kagglehub``). :func:`upload_preset`
publishes a preset directory to either hub.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from ecg_keras import runs
from ecg_keras.errors import ECGKerasError
from ecg_keras.paths import sha256
from ecg_keras.preprocessing import preprocessing_spec
from ecg_keras.zoo import PretrainedInfo, is_synthetic

HF_PREFIX, KAGGLE_PREFIX = "hf://", "kaggle://"
PRESET_PATTERNS = list(runs.PRESET_FILES) + [runs.PRESET_CARD]


class PresetError(ECGKerasError, ValueError):
    """A preset handle cannot be resolved or fetched; the message says why."""


def is_handle(source) -> bool:
    """Whether ``source`` is a hub handle (``hf://...`` or ``kaggle://...``)."""
    return isinstance(source, str) and source.startswith((HF_PREFIX, KAGGLE_PREFIX))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch(handle: str, *, cache_dir: str | Path | None = None) -> Path:
    """The local directory of the preset ``handle`` (downloaded or found in the hub client's cache)."""
    if handle.startswith(HF_PREFIX):
        repo_id, _, revision = handle[len(HF_PREFIX):].partition("@")
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise PresetError(f"{handle}: expected hf://owner/name[@revision]")
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise PresetError(f"{handle}: Hugging Face presets need huggingface_hub "
                              "(pip install 'ecg_keras[hub]')") from None
        try:  # HF_HUB_OFFLINE is read now, not only when huggingface_hub was imported
            path = snapshot_download(repo_id, revision=revision or None, cache_dir=cache_dir,
                                     allow_patterns=PRESET_PATTERNS, local_files_only=_offline(),
                                     library_name="ecg_keras")
        except Exception as e:  # noqa: BLE001 - the client raises many types (offline, 404, auth)
            raise PresetError(f"{handle}: cannot fetch the preset ({type(e).__name__}: {e})") from None
        return Path(path)
    if handle.startswith(KAGGLE_PREFIX):
        try:
            import kagglehub
        except ImportError:
            raise PresetError(f"{handle}: Kaggle presets need kagglehub (pip install kagglehub)") from None
        try:
            return Path(kagglehub.model_download(handle[len(KAGGLE_PREFIX):]))
        except Exception as e:  # noqa: BLE001
            raise PresetError(f"{handle}: cannot fetch the preset ({type(e).__name__}: {e})") from None
    raise PresetError(f"{handle!r} is not a hub handle (hf://owner/name or kaggle://owner/model/keras/variation)")


def resolve(source, models_directory=None) -> runs.Run:
    """:func:`ecg_keras.runs.resolve`, with hub handles fetched first."""
    return runs.resolve(fetch(source) if is_handle(source) else source, models_directory)


# --------------------------------------------------------------------------- writing
def _card(name: str, run: runs.Run, spec: dict, meta: dict) -> str:
    cfg = run.config
    data = str(cfg.get("dataset_name") or cfg.get("dataset") or "unknown")
    synthetic = is_synthetic(cfg.get("synthetic"), data)
    warning = ("\n**Trained on SYNTHETIC data**: this preset demonstrates the pipeline only; its outputs say "
               "nothing about a real ECG.\n" if synthetic else "")
    return f"""---
library_name: keras
tags:
- ecg
- ecg_keras
- time-series-classification
---
# {name}

A 12-lead ECG classifier ({cfg.get('arch', 'unknown architecture')}, task `{cfg.get('task', '?')}`) saved as an
ecg_keras preset. Research use only; not a medical device.
{warning}
| | |
|---|---|
| training data | {'SYNTHETIC' if synthetic else data} |
| classes ({len(spec['classes'])}) | {', '.join(spec['classes'])} |
| sampling rate | {spec['sampling_rate']} Hz |
| window / stride | {spec['window']} / {spec['stride']} samples |
| aggregation over windows | {spec['aggregation']} |
| parameters | {meta['parameter_count']:,} |

```python
import ecg_keras

model = ecg_keras.load("hf://OWNER/{name}")  # or a local copy of this directory
probabilities = model.predict(signal, fs=500)  # (samples, 12 leads) in mV -> DataFrame
```
"""


def save_preset(source, directory: str | Path, *, name: str | None = None, overwrite: bool = False,
                models_directory=None) -> Path:
    """Write ``source`` (a run directory, release, released name, preset or handle) as a preset
    directory at ``directory`` (written next to it, then renamed into place)."""
    import keras

    from ecg_keras.version import __version__
    from ecg_keras.export.files import replace_directory
    from ecg_keras.models.classifier import with_preprocessing
    from ecg_keras.windows import model_window

    run = resolve(source, models_directory).check_complete()
    model = run.model
    name = name or run.name
    window = model_window(model, run.sampling_rate)
    spec = preprocessing_spec(classes=run.classes, standardizer=run.standardizer, sampling_rate=run.sampling_rate,
                              window=window, aggregation=run.aggregation, activation=run.activation)
    config_keys = ("arch", "task", "dataset", "dataset_name", "synthetic", "seed", "kind")
    meta = {"name": name, "ecg_keras_version": __version__, "keras_version": keras.__version__,
            "parameter_count": int(model.count_params()),
            "date_saved": datetime.now(timezone.utc).strftime("%Y-%m-%d@%H:%M:%S"),
            "config": {k: run.config[k] for k in config_keys if k in run.config}}
    with replace_directory(directory, overwrite=overwrite) as tmp:
        (tmp / runs.PRESET_CONFIG).write_text(json.dumps(keras.saving.serialize_keras_object(
            with_preprocessing(model, spec))))
        model.save_weights(tmp / runs.PRESET_WEIGHTS)
        (tmp / runs.PRESET_PREPROCESSOR).write_text(json.dumps(spec, indent=2))
        meta["sha256"] = {f: sha256(tmp / f) for f in runs.PRESET_CHECKED}
        (tmp / runs.PRESET_METADATA).write_text(json.dumps(meta, indent=2))
        (tmp / runs.PRESET_CARD).write_text(_card(name, run, spec, meta))
    return Path(directory)


def load_preset(source, *, include_top: bool = True):
    """The Keras model (logits) of a preset directory or handle, sha256 checked; ``model.ecg_info``
    (:class:`~ecg_keras.zoo.PretrainedInfo`, as for released weights) holds its preprocessing.
    ``include_top=False``: the pooled backbone."""
    from ecg_keras import models

    run = resolve(source)
    if not run.preset:
        raise PresetError(f"{source}: not a preset directory ({', '.join(runs.PRESET_FILES)})")
    model = run.check_complete().model
    if not include_top:
        model = models.backbone(model)
    spec, cfg = run.preprocessor, run.config
    model.ecg_info = PretrainedInfo(name=run.name, arch=str(cfg.get("arch", "")), task=str(cfg.get("task", "")),
                                    classes=tuple(run.classes), standardizer=run.standardizer,
                                    sampling_rate=run.sampling_rate, window=int(spec.get("window") or 0),
                                    training_data=str(cfg.get("dataset", "unknown")), entry=dict(spec))
    return model


def upload_preset(uri: str, preset: str | Path, *, token: str | None = None, private: bool = False,
                  license_name: str | None = None) -> str:
    """Publish the preset directory ``preset`` (checked first) to ``hf://owner/name`` or
    ``kaggle://owner/model/keras/variation``, as keras-hub's ``upload_preset``. Needs the network
    and the hub's credentials (``huggingface-cli login`` / ``kaggle.json``)."""
    run = runs.resolve(preset)
    if not run.preset:
        raise PresetError(f"{preset}: not a preset directory; write one with save_preset()")
    run.check_complete().check_preset_files()
    if uri.startswith(HF_PREFIX):
        from huggingface_hub import create_repo, upload_folder

        repo_id = uri[len(HF_PREFIX):]
        create_repo(repo_id, token=token, private=private, exist_ok=True)
        upload_folder(repo_id=repo_id, folder_path=str(preset), token=token, allow_patterns=PRESET_PATTERNS,
                      commit_message=f"ecg_keras preset {run.name}")
        return f"https://huggingface.co/{repo_id}"
    if uri.startswith(KAGGLE_PREFIX):
        import kagglehub

        kagglehub.model_upload(uri[len(KAGGLE_PREFIX):], str(preset), license_name=license_name)
        return f"https://www.kaggle.com/models/{uri[len(KAGGLE_PREFIX):]}"
    raise PresetError(f"{uri!r}: upload to hf://owner/name or kaggle://owner/model/keras/variation")

"""Released weights: the manifest and ``pretrained()`` (releases are written by
:func:`ecg_keras.export.release_run` and read as a run by :func:`ecg_keras.runs.resolve`).

A models directory holds ``MANIFEST.json`` and, optionally, the weights files it lists. The
package's own, the zoo, is the repository's top-level ``models/``, installed with the wheel as
the package-data folder ``released/`` of the installed package (manifest, model cards and the small weights shipped
beside them): the source of truth for ``list_pretrained()`` / ``pretrained()`` and, in a
checkout, the release target of ``ecg-keras export release`` (a run trained on synthetic data
goes there only with a real-data validation in its card; :mod:`ecg_keras.export.release`).
``--models-dir`` / ``models_directory=`` (the one spelling of every command and function) /
``$ECG_KERAS_MODELS_DIR`` point at any other one.

A manifest entry records everything needed to use a model: name, arch, task, classes,
standardiser, sampling rate, window, training data (and whether it is synthetic), metrics,
licence, file and sha256, and where to download the file: ``url``, or ``url_base`` + ``file``.
A file beside the manifest is used as it is; otherwise it is downloaded (:func:`download`:
connect and read timeouts, an overall deadline and a size cap; written to a temporary file and
renamed only once complete with the right sha256, so a failed download leaves nothing) into
``$ECG_KERAS_HOME/models`` (default ``~/.ecg_keras/models``), where later calls find it without
the network. The sha256 is checked either way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecg_keras import artefact
from ecg_keras.artefact import MANIFEST, REQUIRED_FIELDS, ManifestError  # noqa: F401  (re-exported; schema: artefact)
from ecg_keras.net import ChecksumError, DownloadError  # noqa: F401  (re-exported: zoo.ChecksumError, ...)
from ecg_keras.paths import inside, sha256
from ecg_keras.standardize import Standardizer
from ecg_keras.tasks import ALL

# keras (so TensorFlow) is imported inside the functions that need it: ``import ecg_keras``
# imports this module and must not start TensorFlow (see ecg_keras/__init__.py).
if TYPE_CHECKING:
    import keras

_PACKAGE = Path(__file__).resolve().parent
#: The package's models directory, the zoo: the repository's top-level ``models/`` in a checkout,
#: installed by the wheel as the package-data folder :data:`INSTALLED` (see setup.py).
INSTALLED = "released"
RELEASED_DIR = (_PACKAGE.parent / "models" if (_PACKAGE.parent / "setup.cfg").is_file()
                and (_PACKAGE.parent / "models" / MANIFEST).is_file() else _PACKAGE / INSTALLED)


def in_checkout() -> bool:
    """Whether :data:`RELEASED_DIR` is a checkout's ``models/`` (a release target), not an installed package."""
    return RELEASED_DIR.name == "models" and (RELEASED_DIR.parent / "setup.cfg").is_file()
BASE_URL_ENV = "ECG_KERAS_WEIGHTS_URL"
HOME_ENV = "ECG_KERAS_HOME"


#: Seconds to connect and to wait for each read; whole-download deadline; largest file accepted.
DOWNLOAD_TIMEOUT = 30.0
DOWNLOAD_DEADLINE = 1800.0
MAX_DOWNLOAD_BYTES = 2 << 30


@dataclass(frozen=True)
class PretrainedInfo:
    """What a released model needs besides its weights; attached to models as ``model.ecg_info``."""

    name: str
    arch: str
    task: str
    classes: tuple[str, ...]
    standardizer: Standardizer
    sampling_rate: int
    window: int
    training_data: str
    entry: dict


def models_dir(models_directory: str | Path | None = None) -> Path:
    """``models_directory``, else ``$ECG_KERAS_MODELS_DIR``, else the package's :data:`RELEASED_DIR`."""
    return Path(models_directory or os.environ.get("ECG_KERAS_MODELS_DIR") or RELEASED_DIR)


def cache_root(path: str | Path | None = None) -> Path:
    """Where downloaded weights are kept (in its ``models/``): ``path``, else ``$ECG_KERAS_HOME``,
    else ``~/.ecg_keras``."""
    return Path(path or os.environ.get(HOME_ENV) or Path.home() / ".ecg_keras").expanduser()


def read_manifest(models_directory: str | Path | None = None) -> list[dict]:
    """The checked entries of the manifest of ``models_directory`` (:func:`models_dir`; schema and
    parser: :mod:`ecg_keras.artefact`)."""
    return artefact.read_manifest(models_dir(models_directory))


def list_pretrained(models_directory: str | Path | None = None) -> list[str]:
    """Names of the released models in the manifest."""
    return sorted(e["name"] for e in read_manifest(models_directory))



def find_entry(arch: str | None = None, task: str | None = None, weights: str | None = None,
               name: str | None = None, models_directory: str | Path | None = None, *,
               entries: list[dict] | None = None) -> dict:
    """The one manifest entry named ``name``, or matching arch, task and training data
    (``weights=None``: any training data). No match, or several, raises ValueError. ``entries``:
    the manifest of ``models_directory`` if the caller has read it already."""
    entries = read_manifest(models_directory) if entries is None else entries
    names = sorted(e["name"] for e in entries)
    if name is not None:
        hits = [e for e in entries if e["name"] == name]
        wanted = f"name={name!r}"
    else:
        hits = [e for e in entries if e["arch"] == arch and e["task"] == task
                and (weights is None or weights in (e.get("training_data"), e.get("dataset")))]
        wanted = f"arch={arch!r}, task={task!r}" + (f", weights={weights!r}" if weights is not None else "")
    if not hits:
        raise ValueError(f"no released model for {wanted}; available: {names or 'none'}"
                         f" (manifest: {models_dir(models_directory) / MANIFEST})")
    if len(hits) > 1:
        raise ValueError(f"{len(hits)} released models match {wanted}: {', '.join(e['name'] for e in hits)}; "
                         "pass name= to choose one")
    return hits[0]


def resolve_weights(entry: dict, models_directory: str | Path | None = None, base_url: str | None = None,
                    cache_dir: str | Path | None = None) -> Path:
    """Local path of the entry's weights file, downloading it when needed; sha256 always checked.

    Looked up beside the manifest (``models_directory``), else in the cache (``cache_dir`` /
    :func:`cache_root`), else downloaded there from ``base_url`` (or ``$ECG_KERAS_WEIGHTS_URL``)
    + file, the entry's ``url``, or its ``url_base`` + file. The entry's ``file`` must be a plain
    name: it is only ever joined inside the models directory or the cache, and only the cache's
    copy is deleted when a download is rejected.
    """
    artefact.check_entry(entry, "manifest entry")
    local = inside(models_dir(models_directory), entry["file"], "manifest 'file' field")
    if local.exists():
        path = local
    else:
        base_url = base_url or os.environ.get(BASE_URL_ENV)
        origin = (f"{base_url.rstrip('/')}/{entry['file']}" if base_url else entry.get("url")
                  or (f"{entry['url_base'].rstrip('/')}/{entry['file']}" if entry.get("url_base") else None))
        if not origin:
            raise FileNotFoundError(f"{local} is missing and its manifest entry has no url or url_base "
                                    f"(pass base_url= or set ${BASE_URL_ENV})")
        cache = cache_root(cache_dir)
        cached = inside(cache / "models", entry["file"], "manifest 'file' field")
        if not (cached.is_file() and not cached.is_symlink() and sha256(cached) == entry["sha256"]):
            download(origin, cached, entry["sha256"])  # a cached file with the right sha256 is reused
        path = cached
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise ChecksumError(f"{path}: sha256 {actual} does not match the manifest's {entry['sha256']} "
                            f"(file modified or corrupted)")
    return path


def download(url: str, dest: str | Path, sha256_hex: str | None = None, *, timeout: float | None = None,
             deadline: float | None = None, max_bytes: int | None = None) -> Path:
    """A weights file from ``url`` into ``dest`` through :func:`ecg_keras.net.download`, bounded by
    :data:`DOWNLOAD_TIMEOUT` (connection and every read), :data:`DOWNLOAD_DEADLINE` (the whole
    download) and :data:`MAX_DOWNLOAD_BYTES` unless given; any failure leaves ``dest`` as it was."""
    from ecg_keras import net

    return net.download(url, dest, sha256_hex, timeout=DOWNLOAD_TIMEOUT if timeout is None else timeout,
                        deadline=DOWNLOAD_DEADLINE if deadline is None else deadline,
                        max_bytes=MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes)


def _info(entry: dict) -> PretrainedInfo:
    return PretrainedInfo(name=entry["name"], arch=entry["arch"], task=entry["task"],
                          classes=tuple(entry["classes"]),
                          standardizer=Standardizer.from_dict(entry["standardizer"]),
                          sampling_rate=int(entry["sampling_rate"]), window=int(entry["window"]),
                          training_data=entry["training_data"], entry=entry)


#: The training-data tag of the paper's released weights, known even before the manifest lists them.
DEFAULT_TAG = "ptbxl"


def weight_tags(models_directory: str | Path | None = None) -> list[str]:
    """The data tags ``pretrained(weights=...)`` accepts: :data:`DEFAULT_TAG` and the training data
    (``training_data`` or ``dataset``) of every entry in the manifest of ``models_directory``."""
    tags = {DEFAULT_TAG} | {e.get(k) for e in read_manifest(models_directory) for k in ("training_data", "dataset")}
    return sorted(t for t in tags if isinstance(t, str))


def _weights_source(weights, name: str | None, models_directory: str | Path | None) -> tuple:
    """``(models directory, data tag or None, name)`` that ``weights`` stands for, checked as
    keras.applications checks ``weights``: a data tag, a release directory (or its MANIFEST.json),
    or a weights file listed in the MANIFEST.json beside it; anything else is a ValueError."""
    if weights is None:
        if name is None:
            raise ValueError("pass weights= (training data such as 'ptbxl', or a release directory) or name=")
        return models_directory, None, name
    tags = weight_tags(models_directory)
    if isinstance(weights, str) and weights in tags:
        return models_directory, weights, name
    path = Path(weights) if isinstance(weights, (str, os.PathLike)) else None
    if path is not None and path.is_dir():
        if not (path / MANIFEST).is_file():
            raise FileNotFoundError(f"weights={str(path)!r} is a directory without {MANIFEST}")
        return path, None, name
    if path is not None and path.is_file():
        if path.name == MANIFEST:
            return path.parent, None, name
        listed = [e["name"] for e in read_manifest(path.parent) if e["file"] == path.name]
        if not listed:
            raise ValueError(f"weights={str(path)!r} is not listed in a {MANIFEST} beside it: pretrained() needs "
                             "its manifest entry (classes, standardiser); for the weights alone use "
                             "ecg_keras.models.get(arch, weights=path)")
        if name is not None and name not in listed:
            raise ValueError(f"weights={str(path)!r} is the file of {', '.join(listed)}, not of name={name!r}")
        return path.parent, None, listed[0]
    from ecg_keras.models.weights import invalid_weights

    raise invalid_weights(weights, ["`None` (with name=)", f"a known tag ({', '.join(map(repr, tags))})",
                                    f"a release directory containing {MANIFEST}",
                                    "the path to a weights file listed in the manifest beside it",
                                    "the path to a .keras model saved by ecg_keras (it carries its preprocessing)"])


def pretrained(arch: str = "xresnet1d101", task: str = ALL.name, include_top: bool = True,
               num_classes: int | None = None, weights: str | Path | None = DEFAULT_TAG, *,
               name: str | None = None, models_directory: str | Path | None = None, base_url: str | None = None,
               cache_dir: str | Path | None = None) -> keras.Model:
    """A released model, keras.applications style; ``model.ecg_info`` holds classes and standardiser.

    ``weights`` is where the weights come from, as in :func:`ecg_keras.models.get` (None or a file)
    plus what only a release can name: a data tag (:func:`weight_tags`: the training data of a
    manifest entry, e.g. "ptbxl"), a release directory containing ``MANIFEST.json`` (or that
    file), a weights file listed in the manifest beside it, a ``.keras`` model saved by ecg_keras
    (it carries its preprocessing, so it needs no manifest), or None with ``name=``; anything else
    is a ValueError, as in keras.applications. ``include_top=False`` returns the pooled backbone (``num_classes`` is
    then ignored); with ``include_top=True``, ``num_classes`` must be None or the number of the
    released classes (for a new output layer: ``models.replace_head(pretrained(...), n)``).
    Weights beside the manifest are used as they are; otherwise they come from the cache
    (``cache_dir``, default ``$ECG_KERAS_HOME/models`` or ``~/.ecg_keras/models``) or are
    downloaded there (``base_url`` / ``$ECG_KERAS_WEIGHTS_URL``, else the entry's URL), sha256
    checked. ``models_directory`` defaults to ``$ECG_KERAS_MODELS_DIR`` or the package's manifest.
    """
    import keras

    from ecg_keras import models

    if _unlisted_model_file(weights):  # a model saved by ecg_keras is its own entry
        return _from_model_file(Path(weights), include_top, num_classes)
    models_directory, tag, name = _weights_source(weights, name, models_directory)
    entry = find_entry(arch, task, tag, name=name, models_directory=models_directory)
    n_released = len(entry["classes"])
    if include_top and num_classes is not None and num_classes != n_released:
        raise ValueError(f"If using `weights={weights!r}` with `include_top=True`, `num_classes` should be "
                         f"{n_released} (the classes of {entry['name']}) or None. Received: num_classes={num_classes}"
                         f" (for a new output layer: models.replace_head(pretrained(...), {num_classes}))")
    return load_entry(entry, models_directory, include_top=include_top, base_url=base_url, cache_dir=cache_dir)


def _unlisted_model_file(weights) -> bool:
    """Whether ``weights`` is a ``.keras`` file that no MANIFEST.json beside it lists."""
    if not isinstance(weights, (str, os.PathLike)) or not str(weights).endswith(".keras"):
        return False
    path = Path(weights)
    return path.is_file() and not any(e["file"] == path.name for e in read_manifest(path.parent))


def _from_model_file(path: Path, include_top: bool, num_classes: int | None) -> keras.Model:
    """``pretrained(weights=path)`` for a ``.keras`` file listed in no manifest: its own preprocessing is its entry."""
    import keras

    from ecg_keras import models

    model = keras.saving.load_model(path, compile=False)
    spec = models.preprocessing_of(model)
    if spec is None:
        raise ValueError(f"weights={str(path)!r} is not listed in a {MANIFEST} beside it and carries no preprocessing "
                         "(classes, standardiser): pretrained() needs one of them; for the weights alone use "
                         "ecg_keras.models.get(arch, weights=path)")
    models.check_loaded_weights(model, path)
    if include_top and num_classes is not None and num_classes != len(spec["classes"]):
        raise ValueError(f"If using `weights={str(path)!r}` with `include_top=True`, `num_classes` should be "
                         f"{len(spec['classes'])} or None. Received: num_classes={num_classes}")
    info = PretrainedInfo(name=path.stem, arch="", task="", classes=tuple(spec["classes"]),
                          standardizer=Standardizer.from_dict(spec["standardizer"]),
                          sampling_rate=int(spec["sampling_rate"]), window=int(spec["window"]), training_data="",
                          entry={})
    if not include_top:
        model = models.backbone(model)
    model.ecg_info = info
    return model


def load_entry(entry: dict, models_directory: str | Path | None = None, *, include_top: bool = True,
               base_url: str | None = None, cache_dir: str | Path | None = None) -> keras.Model:
    """The model of the manifest ``entry`` (read once by the caller): weights found or downloaded by
    :func:`resolve_weights` (sha256 checked), loaded without compiling; ``model.ecg_info`` holds the
    entry's facts and, when the file carries it, ``model.preprocessing`` its preprocessing."""
    import keras

    from ecg_keras import models

    path = resolve_weights(entry, models_directory, base_url, cache_dir)
    model = keras.saving.load_model(path, compile=False)
    models.check_loaded_weights(model, path)
    if not include_top:
        model = models.backbone(model)
    model.ecg_info = _info(entry)
    return model


def is_synthetic(*values) -> bool:
    """The one rule for "trained on synthetic data": a ``True`` flag, or a data name that says so."""
    return any("synthetic" in v.lower() if isinstance(v, str) else bool(v) for v in values)

"""ecg_keras: the PTB-XL ECG benchmark in TensorFlow/Keras — data, models, training, evaluation, export."""
from __future__ import annotations

import os as _os
from importlib.util import find_spec as _find_spec

from ecg_keras.version import __version__

# TensorFlow's oneDNN CPU kernels (convolutions, matmul, batch norm) train the benchmark models
# faster than TF's default Eigen kernels (docs/RESULTS.md section 8.6). TF reads the variable once,
# when it is first imported, so this only applies if ecg_keras is imported before tensorflow/keras;
# TF_ENABLE_ONEDNN_OPTS=0 opts out.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# TensorFlow is not in the package's requirements, so that an installed build (GPU `tensorflow`,
# `tensorflow-cpu`, ...) is kept as it is; the extras install one (see README "Install").
if _find_spec("tensorflow") is None:
    raise ImportError("ecg_keras needs TensorFlow (2.21), which is not installed: "
                      "pip install 'ecg_keras[cpu]' for the CPU build, 'ecg_keras[and-cuda]' for NVIDIA GPUs, "
                      "or install a TensorFlow build of your choice first")

# Imported without TensorFlow or Keras: ``import ecg_keras`` stays fast and TF starts with oneDNN on.
from ecg_keras.api import Model, load, pretrained  # noqa: E402
from ecg_keras.presets import save_preset, upload_preset  # noqa: E402
from ecg_keras.zoo import list_pretrained  # noqa: E402


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Sorted names of the registered architectures, optionally filtered by a glob ``pattern``
    (:func:`ecg_keras.models.list_models`); ``pretrained=True``, as in timm: only those with released
    weights in the manifest (:func:`list_pretrained` names the released models themselves)."""
    from ecg_keras.archs import ARCH_NAMES

    names = sorted(ARCH_NAMES)
    if pretrained:
        from ecg_keras.zoo import read_manifest

        released = {e.get("arch") for e in read_manifest()}
        names = [n for n in names if n in released]
    return [n for n in names if pattern is None or _fnmatch(n, pattern)]


def _fnmatch(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(name, pattern)


# --------------------------------------------------------------------------- Keras custom objects
# ``keras.saving.load_model("model.keras")`` looks custom classes (FusedBatchNormalization, TimeStep,
# the LR schedules; registered as "ecg_keras>Name") up in Keras's registry only: Keras imports the
# ``module`` named in the file for its own packages (keras, keras_hub, ...) but never for others.
# So the registering modules must have run, and ``import ecg_keras`` is enough: when Keras is
# already imported they are imported now, otherwise right after Keras finishes importing (a
# one-shot import hook), so that ``import ecg_keras`` alone does not pay for importing Keras.
_KERAS_MODULES = ("ecg_keras.models", "ecg_keras.training.schedule")


def _register_keras_objects() -> None:
    import importlib
    import sys
    import warnings

    for name in _KERAS_MODULES:
        if name not in sys.modules:  # a module that is importing right now registers itself
            try:
                importlib.import_module(name)
            except Exception as err:  # never break ``import keras``
                warnings.warn(f"ecg_keras: could not register its Keras classes ({name}: {err}); "
                              f"import {name} before keras.saving.load_model", stacklevel=2)


def _register_after_keras_import() -> None:
    import importlib.abc
    import importlib.util
    import sys

    if "keras" in sys.modules:
        _register_keras_objects()
        return

    class _AfterKeras(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != "keras":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec("keras")
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_register(module):
                exec_module(module)
                _register_keras_objects()

            spec.loader.exec_module = exec_and_register
            return spec

    sys.meta_path.insert(0, _AfterKeras())


_register_after_keras_import()


__all__ = ["Model", "__version__", "list_models", "list_pretrained", "load", "pretrained", "save_preset",
           "upload_preset"]

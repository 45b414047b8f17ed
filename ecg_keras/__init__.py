"""ecg_keras: the PTB-XL ECG benchmark in TensorFlow/Keras — data, models, training, evaluation, export."""
from __future__ import annotations

import os as _os
from importlib.util import find_spec as _find_spec

__version__ = "0.1.0"

# TensorFlow's oneDNN CPU kernels (convolutions, matmul, batch norm) train the benchmark models
# up to 2.3x faster (inception1d; 1.0-1.5x the others) than TF's default Eigen kernels on the
# project's 2-core AMD reference machine
# (docs/RESULTS.md section 8). TF reads the variable once, when it is first imported, so this only
# applies if ecg_keras is imported before tensorflow/keras; TF_ENABLE_ONEDNN_OPTS=0 opts out.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# TensorFlow is not in the package's requirements, so that an installed build (GPU `tensorflow`,
# `tensorflow-cpu`, ...) is kept as it is; the extras install one (see README "Install").
if _find_spec("tensorflow") is None:
    raise ImportError("ecg_keras needs TensorFlow (2.21), which is not installed: "
                      "pip install 'ecg_keras[cpu]' for the CPU build, 'ecg_keras[and-cuda]' for NVIDIA GPUs, "
                      "or install a TensorFlow build of your choice first")

# Imported without TensorFlow or Keras: ``import ecg_keras`` stays fast and TF starts with oneDNN on.
from ecg_keras.zoo import list_pretrained, pretrained  # noqa: E402


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered architectures, optionally filtered by a glob ``pattern``
    (:func:`ecg_keras.models.list_models`)."""
    from ecg_keras.models import list_models as _list_models

    return _list_models(pattern)


__all__ = ["__version__", "list_models", "list_pretrained", "pretrained"]

"""ecg_keras: the PTB-XL ECG benchmark in TensorFlow/Keras — data, models, training, evaluation, export."""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# TensorFlow's oneDNN CPU kernels (convolutions, matmul, batch norm) train the benchmark models
# up to 2.3x faster (inception1d; 1.0-1.5x the others) than TF's default Eigen kernels on the
# project's 2-core AMD reference machine
# (docs/RESULTS.md section 8). TF reads the variable once, when it is first imported, so this only
# applies if ecg_keras is imported before tensorflow/keras; TF_ENABLE_ONEDNN_OPTS=0 opts out.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def list_models() -> list[str]:
    """Names of every architecture in the registry."""
    from ecg_keras.models import list_models as _list_models

    return _list_models()


def pretrained(*args, **kwargs):
    """A released model with ``model.ecg_info`` (classes, standardiser); see :func:`ecg_keras.zoo.pretrained`."""
    from ecg_keras.zoo import pretrained as _pretrained

    return _pretrained(*args, **kwargs)


def list_pretrained(*args, **kwargs) -> list[str]:
    """Names of the released models in ``models/MANIFEST.json``."""
    from ecg_keras.zoo import list_pretrained as _list_pretrained

    return _list_pretrained(*args, **kwargs)

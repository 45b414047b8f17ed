"""ecg_keras: the PTB-XL ECG benchmark in TensorFlow/Keras — data, models, training, evaluation, export."""
from __future__ import annotations

__version__ = "0.1.0"


def list_models() -> list[str]:
    """Names of every architecture in the registry."""
    from ecg_keras.models import list_models as _list_models

    return _list_models()

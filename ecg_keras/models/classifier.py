"""The saved model artefact: a functional model that carries its preprocessing in its config.

``ECGClassifier`` is a Keras functional model (same layers, same weights, logits out) whose
``get_config`` also holds ``preprocessing``: what turns a recording into its input and its
outputs into a prediction (classes, standardiser, sampling rate, window, stride, aggregation,
activation, lead order; :func:`ecg_keras.preprocessing.preprocessing_spec`). A run's ``model.keras`` is saved as one, so
``keras.saving.load_model("model.keras")`` (after ``import ecg_keras``) gives a model that knows
its preprocessing (:func:`preprocessing_of`). The first key of its config tells a user who loads
the file without ``import ecg_keras`` what to do: Keras prints the config of the class it cannot find.
"""
from __future__ import annotations

import keras

from ecg_keras.preprocessing import preprocessing_spec  # noqa: F401  (re-exported)

#: First key of the saved config: Keras shows it in its error when ecg_keras is not imported.
REQUIRES = "import ecg_keras (pip install ecg_keras) before keras.saving.load_model: this model needs its classes"


@keras.saving.register_keras_serializable(package="ecg_keras")
class ECGClassifier(keras.Model):
    """A functional model (inputs -> logits) with ``preprocessing`` (a :func:`preprocessing_spec` dict)."""

    def __init__(self, inputs, outputs, name=None, **kwargs):
        preprocessing = kwargs.pop("preprocessing", None)
        kwargs.pop("requires", None)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.preprocessing = dict(preprocessing or {})

    def get_config(self):
        return {"requires": REQUIRES, **super().get_config(), "preprocessing": self.preprocessing}


def with_preprocessing(model: keras.Model, preprocessing: dict) -> ECGClassifier:
    """``model``'s graph (the same layers and weights) as an :class:`ECGClassifier` carrying ``preprocessing``."""
    return ECGClassifier(model.input, model.output, name=model.name, preprocessing=preprocessing)  # same structure


def preprocessing_of(model) -> dict | None:
    """The preprocessing a loaded model carries, or None (a plain Keras model)."""
    spec = getattr(model, "preprocessing", None)
    return dict(spec) if spec else None

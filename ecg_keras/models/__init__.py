"""ecg_keras.models: the PTB-XL benchmark architectures as Keras 3 functional models.

    >>> from ecg_keras import models
    >>> models.list_models()
    ['fcn_wang', 'gru', 'inception1d', 'lstm', 'lstm_bidir', 'resnet1d_wang', 'xresnet1d101', ...]
    >>> m = models.get("xresnet1d101", num_classes=71)        # logits, input (None, 12)
    >>> p = models.with_sigmoid(m)                             # probabilities as one model
    >>> feats = models.get("inception1d", include_top=False)   # pooled backbone features
    >>> m5 = models.replace_head(m, 5)                         # new output layer, backbone kept

Every builder has the keras.applications-style signature ``(num_classes=71, input_shape=None,
include_top=True, pooling=None, name=<arch>, *, ..., classifier_activation=None, weights=None)``.
Conventions are documented in :mod:`ecg_keras.models.layers` (initialisation, padding, BatchNorm) and
:mod:`ecg_keras.models.heads` (layer naming: backbone vs head).
Baselines (Wavelet+NN, naive, ensemble) live in :mod:`ecg_keras.models.wavelet` and
:mod:`ecg_keras.models.baselines`.
"""
from __future__ import annotations

from ecg_keras.models._registry import get, layer_groups, list_models, register
from ecg_keras.models.classifier import ECGClassifier, preprocessing_of, with_preprocessing
from ecg_keras.models.bnfold import as_conv2d, fold_batchnorm
from ecg_keras.models.heads import (
    backbone,
    backbone_layers,
    classification_head,
    head_layers,
    probabilities,
    replace_head,
    with_activation,
    with_sigmoid,
)
from ecg_keras.models.layers import TimeStep, kaiming_normal
from ecg_keras.models.weights import check_loaded_weights

# importing the family modules fills the registry
from ecg_keras.models import fcn, inception, resnet, rnn, xresnet  # noqa: E402,F401
from ecg_keras.models.fcn import fcn_wang  # noqa: E402
from ecg_keras.models.inception import inception1d  # noqa: E402
from ecg_keras.models.resnet import resnet1d_wang  # noqa: E402
from ecg_keras.models.rnn import gru, lstm, lstm_bidir  # noqa: E402
from ecg_keras.models.xresnet import (  # noqa: E402
    xresnet1d18,
    xresnet1d34,
    xresnet1d50,
    xresnet1d101,
    xresnet1d152,
)

__all__ = [
    "get", "list_models", "register", "layer_groups",
    "ECGClassifier", "preprocessing_of", "with_preprocessing",
    "backbone", "backbone_layers", "check_loaded_weights", "fold_batchnorm", "as_conv2d", "head_layers", "replace_head",
    "classification_head",
    "with_sigmoid", "with_activation", "probabilities", "kaiming_normal", "TimeStep",
    "fcn_wang", "resnet1d_wang", "inception1d", "lstm", "lstm_bidir", "gru",
    "xresnet1d18", "xresnet1d34", "xresnet1d50", "xresnet1d101", "xresnet1d152",
]

from ecg_keras.models.baselines import (  # noqa: E402
    NaiveBaseline,
    average_probabilities,
    ensemble_model,
)
from ecg_keras.models.wavelet import (  # noqa: E402
    FeatureScaler,
    WaveletNN,
    build_wavelet_mlp,
    wavelet_features,
)

__all__ += [
    "NaiveBaseline", "average_probabilities", "ensemble_model",
    "FeatureScaler", "WaveletNN", "build_wavelet_mlp", "wavelet_features",
]

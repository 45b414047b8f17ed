"""Checks of model weights: a builder's ``weights`` argument, and the values of loaded weights."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def invalid_weights(weights, choices: Sequence[str], hint: str = "") -> ValueError:
    """keras.applications' error for a ``weights`` argument that is none of ``choices``."""
    listed = ", ".join(choices[:-1]) + ("," if len(choices) > 2 else "") + f" or {choices[-1]}"
    return ValueError(f"The `weights` argument should be either {listed}.{hint} Received: weights={weights!r}")


#: |weight| beyond this is not a trained network (a damaged or hostile file).
MAX_ABS_WEIGHT = 1e6


def check_loaded_weights(model, where) -> None:
    """ValueError naming ``where`` and the variable if a loaded model's weights are not finite, exceed
    :data:`MAX_ABS_WEIGHT` or hold negative BatchNorm variances (every load path: runs, releases,
    ``pretrained()``, ``--init-from``; from-torch checks the same before building the run)."""
    import numpy as np

    for var in model.weights:
        value = np.asarray(var)
        if value.dtype.kind not in "fc" or not value.size:
            continue
        if not np.isfinite(value).all():
            raise ValueError(f"{where}: weight {var.path} holds {int((~np.isfinite(value)).sum())} NaN/Inf value(s); "
                             "the model file is damaged")
        peak = float(np.abs(value).max())
        if peak > MAX_ABS_WEIGHT:
            raise ValueError(f"{where}: weight {var.path} reaches {peak:.3g} (> {MAX_ABS_WEIGHT:g}): not trained "
                             "weights")
        if var.path.endswith("moving_variance") and (value < 0).any():
            raise ValueError(f"{where}: weight {var.path} has negative BatchNorm variances")


def check_weights(weights) -> None:
    """A builder's ``weights``, checked as keras.applications does: None or an existing file.

    Released weights, named by their training data (e.g. "ptbxl"), come through
    :func:`ecg_keras.pretrained`, which knows their classes and standardiser.
    """
    if weights is None or (isinstance(weights, (str, os.PathLike)) and Path(weights).is_file()):
        return
    raise invalid_weights(weights, ["`None` (random initialization)", "the path to the weights file to be loaded"],
                          " Released weights (e.g. weights='ptbxl') come from ecg_keras.pretrained(arch, task, weights=...).")

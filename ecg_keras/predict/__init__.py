"""Run a model on people's own ECG records: records in, probabilities (and plots) out.

    ecg-keras predict MODEL RECORD... [--out FILE.csv|.json] [--plot DIR] [--explain]
                    [--top K] [--fs HZ] [--leads I,II,...] [--units mV|uV]

MODEL is a released model name (the zoo, ``models/MANIFEST.json``, or ``--models-dir DIR``'s), a
training run, release or preset directory (read by :func:`ecg_keras.runs.resolve`), a preset on
a hub (``hf://owner/name``, ``kaggle://...``: :mod:`ecg_keras.presets`), a SavedModel directory
(a version directory, its model directory, or the ``--out`` of ``export savedmodel`` holding one
model: the highest version is used), an ONNX file exported by ``ecg_keras.export`` (its
metadata, or a sidecar ``FILE.json`` holding the serving spec, gives classes, rate and
aggregation) or a LiteRT ``.tflite`` file written by ``export litert`` (its metadata). RECORD is a WFDB record, a
CPSC/ICBEB ``.mat``, a ``.npy`` or ``.csv`` (samples x leads; ``--fs``/``--leads``/``--units``
where the file cannot say), a hospital export (DICOM waveform, HL7 aECG / GE MUSE / Philips XML,
SCP-ECG, EDF/EDF+, ISHNE; :mod:`ecg_keras.io.formats`) or a folder of them (see
:mod:`ecg_keras.io.records`). Missing limb leads are derived (8-lead exports), other missing
leads refused or, with ``--fill-missing-leads``, zero-filled; the ``leads`` column says which.
``--timeline DIR``: long recordings segment by segment over time (:mod:`ecg_keras.timeline`).

Each record is read, its leads are matched to the model's by name, it is checked, resampled to
the model's rate and predicted with the model's own whole-record rule (windows of the model's
length, stride half a window, max or mean over windows, as at evaluation).

**Invalid records.** A record that cannot be read, whose leads cannot be matched, or whose
signal has NaN/Inf samples, a flat lead or values beyond 100 mV is *never* sent to the model:
its row is marked ``valid=False`` with the reason (naming the record and the lead, e.g.
"non-finite samples (NaN/Inf) in lead(s) V2; 1 sample(s) ..."), its probabilities are left
empty, the other records are still predicted and written, and the command exits with status 1.
Status 0 means every record was valid; a model or output that cannot be used is status 1, a usage error 2.

Output: one row per record with every class probability (``--out``: CSV, or JSON with the
model identity), and in the console the model identity (name, sha256, training data: models
trained on SYNTHETIC data say so) and the top-K classes per record. ``--plot DIR`` writes one
PNG per record on ECG paper (:func:`ecg_keras.evaluation.ecg_paper.plot_ecg_paper`), with
``--explain`` the integrated-gradients attribution of the top class shaded over time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ecg_keras.predict.plots import check_plot_targets, plot_hook, plot_names  # noqa: F401  (re-exported)
from ecg_keras.predict.predictor import ModelError, Predictor, load_model  # noqa: F401  (re-exported)
from ecg_keras.predict.records import (FORMULA_START, MAX_BATCH_SAMPLES, RESERVED, Item,  # noqa: F401  (re-exported)
                                       expand_records, format_table, run_predictions, spreadsheet_safe, to_frame,
                                       write_output)


def predict(model, records, *, fs: float | None = None, leads: Sequence[str] | str | None = None,
            units: str = "mV", plot_dir=None, explain: bool = False, top: int = 3,
            progress: bool | None = None, models_directory=None, overwrite: bool = False,
            fill_missing_leads: bool = False) -> pd.DataFrame:
    """Probabilities of every class for each record (see the module docstring).

    ``model``: released name, run directory, SavedModel directory, ONNX file or a loaded
    :class:`Predictor`. ``records``: paths of records or folders. Returns a DataFrame (see
    :func:`to_frame`) whose ``attrs["model"]`` is the model identity; invalid records have
    ``valid=False``, the reason in ``problem`` and NaN probabilities. ``plot_dir``: one PNG per
    valid record (``explain``: with the top class's attribution), named after the record
    (:func:`plot_names`); an existing file there is a FileExistsError unless ``overwrite``.
    The ``leads`` column names leads derived from others (8-lead exports) or, with
    ``fill_missing_leads``, zero-filled.
    """
    todo = expand_records(records)
    hook = None
    if plot_dir is not None:
        hook = plot_hook(Path(plot_dir), top, explain, names=check_plot_targets(plot_dir, todo, overwrite))
    model, items = run_predictions(model, todo, fs=fs, leads=leads, units=units, progress=progress,
                                   models_directory=models_directory, on_item=hook,
                                   fill_missing_leads=fill_missing_leads)
    return to_frame(model, items)

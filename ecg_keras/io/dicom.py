"""DICOM waveform storage (12-lead ECG, general ECG, ambulatory ECG IODs), read with pydicom.

The rhythm multiplex group is read (the one labelled RHYTHM, else the longest; median-beat groups
are skipped) with ``Dataset.waveform_array``, which applies each channel's sensitivity,
correction factor and baseline; the sensitivity units (uV, mV) give the scale to mV. Lead names
come from each channel's source code meaning ("Lead I (Einthoven)"; see :mod:`ecg_keras.io.leads`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecg_keras.io.base import DataError
from ecg_keras.io.base import Record, age_years, check_fs, scale, sex_letter

MAGIC_OFFSET, MAGIC = 128, b"DICM"


def is_dicom(head: bytes) -> bool:
    return head[MAGIC_OFFSET:MAGIC_OFFSET + 4] == MAGIC


def _group(ds, path) -> int:
    groups = list(ds.get("WaveformSequence") or [])
    if not groups:
        raise DataError(f"{path}: DICOM file without a waveform (no WaveformSequence): not an ECG waveform object")
    labels = [str(g.get("MultiplexGroupLabel", "")).upper() for g in groups]
    for k, label in enumerate(labels):
        if "RHYTHM" in label:
            return k
    return int(np.argmax([int(g.get("NumberOfWaveformSamples", 0) or 0) for g in groups]))


def _channel_name(channel, j: int) -> str:
    source = channel.get("ChannelSourceSequence")
    if source:
        return str(source[0].get("CodeMeaning") or source[0].get("CodeValue") or f"channel {j}")
    return str(channel.get("ChannelLabel") or f"channel {j}")


def _channel_unit(channel) -> str:
    units = channel.get("ChannelSensitivityUnitsSequence")
    return str(units[0].get("CodeValue", "uV")) if units else "uV"


def read_dicom(path: Path) -> Record:
    import pydicom

    ds = pydicom.dcmread(path)
    k = _group(ds, path)
    group = ds.WaveformSequence[k]
    fs = check_fs(group.get("SamplingFrequency"), path)
    channels = list(group.get("ChannelDefinitionSequence") or [])
    signal = np.asarray(ds.waveform_array(k), dtype=np.float64)
    if signal.ndim != 2 or signal.shape[1] != len(channels) or not len(signal):
        raise DataError(f"{path}: waveform group {k} holds {signal.shape} samples for {len(channels)} channels")
    names = [_channel_name(c, j) for j, c in enumerate(channels)]
    signal = signal * np.array([scale(_channel_unit(c), path, n) for c, n in zip(channels, names)])
    notes = [f"DICOM waveform group {k} ({group.get('MultiplexGroupLabel', 'unlabelled')}) of "
             f"{len(ds.WaveformSequence)}"] if len(ds.WaveformSequence) > 1 else []
    return Record(str(path), path, signal, fs, names, notes,
                  age=age_years(ds.get("PatientAge")), sex=sex_letter(ds.get("PatientSex")))

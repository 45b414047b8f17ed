"""A text summary of a dataset: records, rate, signal shape, folds and per-task class counts."""
from __future__ import annotations

from collections import Counter

import numpy as np

from ecg_keras.datasets.base import DataError, RecordSet
from ecg_keras.tasks import REGRESSION


def summarize(records: RecordSet) -> str:
    """Records, rate, signal shape, per-task class counts and fold sizes, as text."""
    from ecg_keras.datasets.tasks import available_tasks, make_task

    lines = [f"dataset: {records.name}{' (SYNTHETIC)' if records.synthetic else ''}",
             f"records: {len(records)}", f"sampling rate: {records.sampling_rate} Hz"]
    if isinstance(records.signals, np.ndarray):
        lines.append(f"signals: {records.signals.shape} {records.signals.dtype}")
    else:
        lengths = [len(s) for s in records.signals]
        lines.append(f"signals: {len(lengths)} variable-length records, {min(lengths)}-{max(lengths)} samples")
    if "strat_fold" in records.meta.columns:
        folds = Counter(int(f) for f in records.meta["strat_fold"])
        lines.append("folds: " + ", ".join(f"{k}: {folds[k]}" for k in sorted(folds)))
    for task in available_tasks(records):
        try:
            data = make_task(records, task)
        except DataError as e:
            lines.append(f"task {task}: {e}")
            continue
        if data.kind == REGRESSION:
            y = data.y[:, 0]
            lines.append(f"task {task}: {len(data)} records, mean {y.mean():.1f}, range {y.min():g}-{y.max():g}")
            continue
        counts = data.y.sum(0).astype(int)
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(data.classes, counts))
        noun = "class" if len(data.classes) == 1 else "classes"
        lines.append(f"task {task}: {len(data)} records, {len(data.classes)} {noun} ({per_class})")
    return "\n".join(lines)

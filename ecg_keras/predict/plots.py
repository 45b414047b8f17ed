"""Plots of ``ecg-keras predict --plot``: one PNG per record on ECG paper, named after the record
(:func:`plot_names`), with ``--explain`` the top class's attribution."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.datasets.base import DataError
from ecg_keras.io.records import NAME_SUFFIXES, record_name
from ecg_keras.predict.predictor import Predictor
from ecg_keras.predict.records import Item


def _display_name(t: Item | Path) -> str:
    if isinstance(t, Item):
        return t.name
    try:
        return record_name(t)
    except DataError:
        return str(t)


def plot_names(names: Sequence[str]) -> list[str]:
    """PNG file name per record: the record's own name (its last path part, characters other than
    letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``, no leading dot, no record suffix such
    as ``.npy`` or ``.dcm``: :data:`~ecg_keras.io.records.NAME_SUFFIXES`), ``_2``, ``_3`` ...
    appended when two records share a name."""
    out, used = [], set()
    for name in names:
        base = Path(str(name).rstrip("/")).name
        base = base[:-len(Path(base).suffix)] if Path(base).suffix.lower() in NAME_SUFFIXES else base
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in base).lstrip(".")[-120:] or "record"
        candidate, k = stem, 1
        while candidate.lower() in used:
            k += 1
            candidate = f"{stem}_{k}"
        used.add(candidate.lower())
        out.append(f"{candidate}.png")
    return out


def check_plot_targets(plot_dir, todo: Sequence[Item | Path], overwrite: bool) -> dict[str, str]:
    """Record name -> plot file name; FileExistsError naming the first file that is in the way
    (an existing file without ``overwrite``; a link or other non-regular file always)."""
    from ecg_keras.files import check_regular

    names = [_display_name(t) for t in todo]
    files = plot_names(names)
    for name in files:
        target = Path(plot_dir) / name
        check_regular(target)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it (or choose another --plot DIR)")
    return dict(zip(names, files))


def plot_hook(out: Path, top: int, explain: bool, method: str = "ig", names: dict[str, str] | None = None):
    from ecg_keras.evaluation.ecg_paper import plot_ecg_paper

    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--plot {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    names = dict(names or {})
    warned = []

    def hook(item: Item, model: Predictor):
        if item.probabilities is None:
            return
        order = np.argsort(-item.probabilities)[:max(1, top)]
        preds = [(model.classes[j], float(item.probabilities[j])) for j in order]
        attribution = None
        if explain:
            if model.keras_model is None:
                if not warned:
                    print(f"warning: --explain needs the Keras model (a run directory or a released model); "
                          f"{model.kind} models are plotted without attribution", file=sys.stderr)
                    warned.append(1)
            else:
                from ecg_keras.evaluation.attribution import attribute_record

                res = attribute_record(model.keras_model, item.x, int(order[0]), model.standardizer,
                                       model.sampling_rate, method=method, steps=32)
                attribution = res.attribution
        file = names.get(item.name) or plot_names([item.name])[0]
        title = f"{item.name}  ({item.fs:g} Hz, {item.duration:.1f} s)"
        model_line = (f"{model.name} ({model.arch or model.kind}, task {model.task or '?'}, trained on "
                      f"{'SYNTHETIC data' if model.synthetic else model.training_data})")
        item.plot = plot_ecg_paper(item.native, item.fs, out / file, title=title, predictions=preds,
                                   model_line=model_line, warning=model.caution(), attribution=attribution,
                                   attribution_fs=model.sampling_rate,
                                   attribution_label=f"integrated gradients of {preds[0][0]}" if explain else None)

    return hook

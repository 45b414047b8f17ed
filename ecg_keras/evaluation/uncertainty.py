"""Model uncertainty against the cardiologists' diagnosis likelihoods (docs/PROTOCOL.md "Metrics").

The uncertainty of a prediction is the standard deviation of the predicted probability over an
ensemble of identically configured models trained with different seeds
(:func:`ensemble_std`). For every (record, label) pair where the label is positive, that std is
related to the likelihood (in %) the label carries in the record's PTB-XL ``scp_codes``
(:func:`uncertainty_table`), grouped into the paper's likelihood bins 15, 35, 50, 80, 100
(:func:`summarize_by_likelihood`; box plot: :func:`ecg_keras.evaluation.plots.plot_uncertainty_box`).

Likelihood 0 in ``scp_codes`` means "not given" (PTB-XL uses it for most rhythm and form
statements); such pairs, and any other value outside the bins, are left out and counted.
For subclass/superclass tasks the likelihood of a node is the maximum over its statements
present in the record (needs the hierarchy mapping).

numpy + pandas only (no TensorFlow).
"""
from __future__ import annotations

import ast
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

#: Likelihood values (%) used by PTB-XL's annotators and the paper's figure.
LIKELIHOOD_BINS = (15, 35, 50, 80, 100)


def ensemble_std(predictions: Sequence) -> np.ndarray:
    """Element-wise std (ddof 0) over ensemble members: list of (n, C) arrays -> (n, C).

    All members must have the same shape and row order (align them on record ids first).
    """
    preds = [np.asarray(p, dtype=np.float64) for p in predictions]
    if len(preds) < 2:
        raise ValueError(f"an ensemble std needs at least 2 members, got {len(preds)}")
    shapes = {p.shape for p in preds}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members differ in shape: {sorted(shapes)}")
    return np.stack(preds, axis=0).std(axis=0, ddof=0)


def _parse_codes(value) -> dict:
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    if isinstance(value, str):
        d = ast.literal_eval(value)
        if not isinstance(d, dict):
            raise ValueError(f"scp_codes {value!r} is not a dict literal")
        return {str(k): float(v) for k, v in d.items()}
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {}
    raise ValueError(f"cannot read scp_codes {value!r}")


def read_likelihoods(path: str | PathLike) -> dict[str, dict[str, float]]:
    """``{record id (str): {code: likelihood}}`` from a PTB-XL ``ptbxl_database.csv`` (index
    ``ecg_id``, column ``scp_codes`` holding dict literals) or a JSON file of that mapping."""
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix.lower() == ".json":
        raw = json.loads(path.read_text())
        return {str(k): _parse_codes(v) for k, v in raw.items()}
    db = pd.read_csv(path, index_col=0)
    if "scp_codes" not in db.columns:
        raise ValueError(f"{path}: no 'scp_codes' column")
    return {str(i): _parse_codes(v) for i, v in zip(db.index, db["scp_codes"])}


def _id_key(x) -> str:
    """Record ids as strings; integral floats lose their '.0' (ids saved as float arrays)."""
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x)


def uncertainty_table(ids, y_true, std, classes: Sequence[str], likelihoods: Mapping,
                      mapping=None, y_mean=None) -> pd.DataFrame:
    """One row per positive (record, label): ``id, label, likelihood, std`` (+ ``mean`` when
    ``y_mean``, the ensemble's mean probability, is given).

    ``likelihoods``: ``{record id: {code: likelihood}}`` (ids compared as strings). A class that
    is an SCP code takes that code's likelihood; otherwise, with ``mapping`` (the hierarchy, see
    :mod:`.hierarchy`), a subclass/superclass takes the max likelihood over the record's codes
    mapped to it. Pairs without a likelihood keep NaN (filter with :func:`summarize_by_likelihood`).
    """
    from .hierarchy import normalize_mapping

    y_true = np.asarray(y_true) > 0.5
    std = np.asarray(std, dtype=np.float64)
    ids = np.asarray(ids)
    if y_true.shape != std.shape or y_true.shape != (len(ids), len(classes)):
        raise ValueError(f"ids {ids.shape}, y_true {y_true.shape}, std {std.shape} and "
                         f"{len(classes)} classes do not agree")
    m = normalize_mapping(mapping) if mapping is not None else {}
    lk = {_id_key(k): v for k, v in likelihoods.items()}
    missing = [i for i in ids if _id_key(i) not in lk]
    if len(missing) == len(ids):
        raise ValueError(f"none of the {len(ids)} record ids (e.g. {ids[:3].tolist()}) is in the "
                         "likelihood table")
    rows = []
    for r, c in zip(*np.nonzero(y_true)):
        codes = lk.get(_id_key(ids[r]), {})
        label = str(classes[c])
        if label in codes:
            like = codes[label]
        else:
            vals = [v for code, v in codes.items() if code in m and label in m[code]]
            like = max(vals) if vals else np.nan
        row = {"id": _id_key(ids[r]), "label": label, "likelihood": float(like), "std": float(std[r, c])}
        if y_mean is not None:
            row["mean"] = float(np.asarray(y_mean)[r, c])
        rows.append(row)
    cols = ["id", "label", "likelihood", "std"] + (["mean"] if y_mean is not None else [])
    return pd.DataFrame(rows, columns=cols)


def summarize_by_likelihood(table: pd.DataFrame, bins: Sequence[float] = LIKELIHOOD_BINS) -> pd.DataFrame:
    """Per likelihood bin: ``likelihood, n, mean, median, q25, q75`` of ``std``; a last row
    ``likelihood="other"`` counts the pairs left out (NaN, 0 = not given, or not a bin value)."""
    rows = []
    for b in bins:
        s = table.loc[table["likelihood"] == b, "std"].to_numpy(dtype=float)
        rows.append({"likelihood": f"{b:g}", "n": int(len(s)),
                     "mean": float(s.mean()) if len(s) else np.nan,
                     "median": float(np.median(s)) if len(s) else np.nan,
                     "q25": float(np.quantile(s, 0.25)) if len(s) else np.nan,
                     "q75": float(np.quantile(s, 0.75)) if len(s) else np.nan})
    other = int((~table["likelihood"].isin(list(bins))).sum())
    rows.append({"likelihood": "other", "n": other, "mean": np.nan, "median": np.nan,
                 "q25": np.nan, "q75": np.nan})
    return pd.DataFrame(rows, columns=["likelihood", "n", "mean", "median", "q25", "q75"])

"""ICBEB2018 (CPSC 2018 training set, 6,877 records, 500 Hz, 6-60 s, 9 classes) reader.

Two layouts are recognised under ``root`` (searched recursively):

* original CPSC 2018: ``REFERENCE.csv`` (Recording, First_label, Second_label, Third_label;
  label numbers 1..9) and ``A####.mat`` files holding a MATLAB struct ``ECG`` with fields
  ``sex``, ``age`` and ``data`` (12 x N, mV, leads I, II, III, aVR, aVL, aVF, V1-V6, 500 Hz);
* PhysioNet/CinC Challenge 2020 (``cpsc_2018``): WFDB headers with ``# Dx:`` SNOMED-CT codes
  and ``.mat`` signals, mapped to the 9 classes by ``SNOMED_TO_CLASS`` (the Challenge 2020
  scored codes, plus the Challenge 2021 equivalent codes for RBBB, PAC and PVC). Records
  without any of the 9 classes keep an empty label list (``make_task`` drops them).

Labels are multi-label (union of up to 3). Signals are resampled to ``sampling_rate``
(default 100 Hz) with ``scipy.signal.resample_poly``; variable lengths are kept (a list of
(length_i, 12) float32 arrays). ``strat_fold`` = 10 deterministic folds by iterative
stratification over the labels (seed 0), patient_id = record id. RecordSet name
``"icbeb2018"``, task ``"all"``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ecg_keras.datasets import cache
from ecg_keras.datasets.base import DataError, RecordSet, read_table
from ecg_keras.datasets.tasks import stratified_folds
from ecg_keras.datasets.wfdb_io import (check_finite, load_record_signals, read_header_text, require_dir, resample,
                                        sex_code, to_float)

NATIVE_RATE = 500
CLASSES = ("NORM", "AFIB", "1AVB", "CLBBB", "CRBBB", "PAC", "VPC", "STD_", "STE_")
LABEL_NUMBERS = {i + 1: c for i, c in enumerate(CLASSES)}  # REFERENCE.csv numbering 1..9
SNOMED_TO_CLASS = {
    "426783006": "NORM",   # sinus rhythm
    "164889003": "AFIB",   # atrial fibrillation
    "270492004": "1AVB",   # 1st degree AV block
    "164909002": "CLBBB",  # left bundle branch block
    "59118001": "CRBBB",   # right bundle branch block
    "713427006": "CRBBB",  # complete right bundle branch block (2021 equivalent)
    "284470004": "PAC",    # premature atrial contraction
    "63593006": "PAC",     # supraventricular premature beats (2021 equivalent)
    "164884008": "VPC",    # ventricular ectopics
    "427172004": "VPC",    # premature ventricular contractions (2021)
    "17338001": "VPC",     # ventricular premature beats (2021 equivalent)
    "429622005": "STD_",   # ST depression
    "164931005": "STE_",   # ST elevation
}
NAME = "icbeb2018"


def _find_one(root: Path, name: str) -> Path | None:
    direct = root / name
    if direct.is_file():
        return direct
    return next(iter(sorted(root.rglob(name))), None)


def read_cpsc_mat(path, target_fs: int | None = None, check: bool = True) -> tuple[np.ndarray, float, float]:
    """(signal float32 (N, 12) mV, age, sex 0/1) of one original CPSC 2018 ``.mat`` file.

    ``check=False`` skips the NaN/inf check (for callers that check the signal themselves)."""
    from scipy.io import loadmat, whosmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MATLAB file is missing")
    try:
        # The directory first (cheap): a damaged size field must not make loadmat build a huge struct.
        variables = {name: (shape, kind) for name, shape, kind in whosmat(path)}
        if "ECG" not in variables:
            raise DataError(f"{path}: no struct 'ECG' in the MATLAB file (found {sorted(variables)})")
        shape, kind = variables["ECG"]
        if kind != "struct" or int(np.prod(shape)) != 1:
            raise DataError(f"{path}: 'ECG' is a {kind} of shape {tuple(shape)}, expected one struct")
        mat = loadmat(path, variable_names=["ECG"])
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot read MATLAB file ({type(e).__name__}: {e})") from None
    if "ECG" not in mat:
        raise DataError(f"{path}: no struct 'ECG' in the MATLAB file")
    try:
        ecg = mat["ECG"][0, 0]
        data = np.asarray(ecg["data"], dtype=np.float64)
    except (IndexError, ValueError, TypeError) as e:
        raise DataError(f"{path}: struct 'ECG' has no numeric field 'data' ({e})") from None
    if data.ndim != 2 or data.shape[0] != 12:
        raise DataError(f"{path}: ECG.data has shape {data.shape}, expected 12 leads x samples")
    sig = data.T
    if check:
        check_finite(sig, path)
    if target_fs is not None:
        sig = resample(sig, NATIVE_RATE, target_fs, path)
    age = sex = float("nan")
    names = ecg.dtype.names or ()
    if "age" in names:
        age = to_float(np.ravel(ecg["age"])[0]) if np.size(ecg["age"]) else float("nan")
    if "sex" in names:
        sex = sex_code(np.ravel(ecg["sex"])[0]) if np.size(ecg["sex"]) else float("nan")
    with np.errstate(over="ignore"):
        out = sig.astype(np.float32)
    if check:
        check_finite(out, path)  # values beyond float32 would become inf
    return out, age, sex


def read_reference(path) -> pd.DataFrame:
    """REFERENCE.csv -> DataFrame indexed by record with a ``labels`` list column."""
    ref = read_table(path, "REFERENCE.csv", ("Recording", "First_label"))
    columns = [c for c in ("First_label", "Second_label", "Third_label") if c in ref.columns]
    labels = []
    for _, row in ref.iterrows():
        found = []
        for c in columns:
            v = row[c]
            if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
                continue
            try:
                number = int(float(v))
            except ValueError:
                number = -1
            if number not in LABEL_NUMBERS:
                raise DataError(f"{path}: record {row['Recording']}: label {v!r} is not a class number 1..9")
            if LABEL_NUMBERS[number] not in found:
                found.append(LABEL_NUMBERS[number])
        labels.append(found)
    out = pd.DataFrame(index=pd.Index(ref["Recording"].astype(str).str.strip(), name="record"))
    out["labels"] = labels
    out["first_label"] = [x[0] if x else None for x in labels]
    if out.index.duplicated().any():
        raise DataError(f"{path}: duplicate recordings {list(out.index[out.index.duplicated()][:3])}")
    return out


def _load_original(root: Path, reference: Path, sampling_rate: int, cache_dir) -> tuple:
    ref = read_reference(reference)
    mats = {p.stem: p for p in sorted(root.rglob("*.mat"))}
    missing = [r for r in ref.index if r not in mats]
    if missing:
        raise DataError(f"{reference}: {len(missing)} recordings without a .mat file under {root}, "
                        f"e.g. {missing[:3]}")
    files = [mats[r] for r in ref.index]
    key = (cache.make_key(f"{NAME}-original", sampling_rate, files, root)
           if cache.resolve_cache_dir(cache_dir) is not None else None)
    ages = np.full(len(files), np.nan)
    sexes = np.full(len(files), np.nan)

    def read(i):
        sig, ages[i], sexes[i] = read_cpsc_mat(files[i], sampling_rate)
        return sig

    def demographics() -> dict:
        return {"age": [None if np.isnan(a) else float(a) for a in ages],
                "sex": [None if np.isnan(x) else float(x) for x in sexes]}

    signals = cache.load_signals(read, len(files), key=key, cache_dir=cache_dir, fixed_length=False,
                                 desc=f"reading {NAME}", names=[str(f) for f in files],
                                 sidecar=demographics)
    meta = ref
    if np.isnan(ages).all() and np.isnan(sexes).all():  # signals came from the cache
        stored = cache.read_sidecar(key, cache_dir) or {}
        if len(stored.get("age", ())) == len(files):
            ages = np.array([np.nan if a is None else a for a in stored["age"]], float)
            sexes = np.array([np.nan if x is None else x for x in stored["sex"]], float)
    meta["age"], meta["sex"] = ages, sexes
    meta["filename"] = [f.relative_to(root).as_posix() for f in files]
    return signals, meta


def _load_cinc(root: Path, sampling_rate: int, cache_dir, n_jobs: int | None = 1) -> tuple:
    records = sorted(p.with_suffix("") for p in root.rglob("*.hea"))
    headers = [read_header_text(r) for r in records]
    meta = pd.DataFrame(index=pd.Index([r.name for r in records], name="record"))
    if meta.index.duplicated().any():
        raise DataError(f"{root}: duplicate record names {list(meta.index[meta.index.duplicated()][:3])}")
    labels = []
    for h in headers:
        found = []
        for code in h.get("dx", []):
            c = SNOMED_TO_CLASS.get(code)
            if c is not None and c not in found:
                found.append(c)
        labels.append(sorted(found, key=CLASSES.index))
    meta["labels"] = labels
    meta["first_label"] = [x[0] if x else None for x in labels]
    meta["dx"] = [h.get("dx", []) for h in headers]
    meta["age"] = [h.get("age", np.nan) for h in headers]
    meta["sex"] = [h.get("sex", np.nan) for h in headers]
    meta["filename"] = [r.relative_to(root).as_posix() for r in records]
    signals = load_record_signals(f"{NAME}-cinc", root, records, expected_fs=NATIVE_RATE,
                                  target_fs=sampling_rate, cache_dir=cache_dir, fixed_length=False,
                                  n_jobs=n_jobs)
    return signals, meta


def load_icbeb2018(root, sampling_rate: int = 100, cache_dir=None, n_jobs: int | None = 1) -> RecordSet:
    """ICBEB2018 / CPSC 2018 in the original or the CinC 2020 layout (see the module docstring).

    ``n_jobs``: worker processes for a cold read of the CinC layout's WFDB records (None = CPU
    count, 1 = serial); the original layout's ``.mat`` files are read serially.
    """
    root = require_dir(root, "ICBEB2018")
    sampling_rate = int(sampling_rate)
    reference = _find_one(root, "REFERENCE.csv")
    if reference is not None:
        signals, meta = _load_original(root, reference, sampling_rate, cache_dir)
    elif next(root.rglob("*.hea"), None) is not None:
        signals, meta = _load_cinc(root, sampling_rate, cache_dir, n_jobs)
    elif next(root.rglob("*.mat"), None) is not None:
        raise DataError(f"{root}: .mat files but no REFERENCE.csv (original layout) and no .hea "
                        f"headers (CinC 2020 layout); labels are needed")
    else:
        raise DataError(f"{root}: no ICBEB2018 data (REFERENCE.csv + A####.mat, or CinC .hea/.mat)")
    meta["patient_id"] = meta.index.to_numpy()
    meta["strat_fold"] = stratified_folds(meta["labels"].tolist(), n_folds=10, seed=0)
    return RecordSet(NAME, sampling_rate, signals, meta, None, False)

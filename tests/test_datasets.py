"""Dataset readers, tasks, splits and the signal cache (ecg_keras.datasets)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import wfdb

from conftest import shared_path
from ecg_keras import datasets
from ecg_keras.datasets import (LEADS, TASKS, DataError, RecordSet, load_icbeb2018, load_ludb, load_ptbxl,
                                load_wfdb_folder, make_task, split)
from ecg_keras.datasets.icbeb import CLASSES as ICBEB_CLASSES
from ecg_keras.datasets.icbeb import read_cpsc_mat
from ecg_keras.datasets.tasks import stratified_folds
from ecg_keras.datasets.wfdb_io import read_record

sys.path.insert(0, str(Path(__file__).parent))
from ptbxl_fixture import LEAD_NAMES, record_signal, write_ptbxl_fixture, write_record  # noqa: E402

EXPECTED_CLASSES = {"all": 71, "diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12}
N_RECORDS = 80  # 71 statements + 7 more labelled + 2 unlabelled
CINC_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(autouse=True)
def _data_root(tmp_path, monkeypatch):
    """Keep the default cache (``$ECG_KERAS_DATA``) out of the home directory."""
    monkeypatch.setenv("ECG_KERAS_DATA", str(tmp_path / "data_root"))


@pytest.fixture(scope="session")
def ptbxl_root(tmp_path_factory, scp_statements_csv):
    return write_ptbxl_fixture(tmp_path_factory.mktemp("ptbxl"), scp_statements_csv, n_records=N_RECORDS)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def ptbxl(ptbxl_root, session_cache):
    return load_ptbxl(ptbxl_root, sampling_rate=100, cache_dir=session_cache)


@pytest.fixture
def small_ptbxl(tmp_path, scp_statements_csv):
    """4 records at 100 Hz, for tests that damage files."""
    return write_ptbxl_fixture(tmp_path / "small", scp_statements_csv, n_records=4, sampling_rates=(100,),
                               n_unlabeled=0)


def _no_wfdb(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("wfdb.rdsamp called although the signals are cached")

    monkeypatch.setattr(wfdb, "rdsamp", boom)


# --------------------------------------------------------------------------- PTB-XL reader
def test_fixture_writer_matches_wrsamp(tmp_path):
    assert tuple(LEAD_NAMES) == LEADS
    x = record_signal(3, 100)
    x[5, 2] = np.nan
    for fast in (True, False):
        write_record(tmp_path / str(fast) / "r", x, 100, comments=["Dx: 1,2", "Age: 5"], fast=fast)
    for suffix in (".hea", ".dat"):
        assert (tmp_path / "True" / f"r{suffix}").read_bytes() == (tmp_path / "False" / f"r{suffix}").read_bytes()


def test_ptbxl_100hz(ptbxl, ptbxl_root):
    assert ptbxl.name == "ptbxl" and not ptbxl.synthetic and ptbxl.sampling_rate == 100
    assert ptbxl.signals.shape == (N_RECORDS, 1000, 12) and ptbxl.signals.dtype == np.float32
    assert list(ptbxl.meta.index[:3]) == [1, 2, 3] and ptbxl.meta.index.name == "ecg_id"
    assert isinstance(ptbxl.meta.loc[1, "scp_codes"], dict)
    assert len(ptbxl.statements) == 71
    np.testing.assert_allclose(ptbxl.signals[4], record_signal(5, 100), atol=1e-6)  # mV, lead order kept


def test_ptbxl_500hz(ptbxl_root, tmp_path):
    records = load_ptbxl(ptbxl_root, sampling_rate=500, cache_dir=False)
    assert records.signals.shape == (N_RECORDS, 5000, 12) and records.sampling_rate == 500
    np.testing.assert_allclose(records.signals[0], record_signal(1, 500), atol=1e-6)
    with pytest.raises(ValueError, match="250"):
        load_ptbxl(ptbxl_root, sampling_rate=250)


def test_synthetic_marker(tmp_path, scp_statements_csv):
    root = write_ptbxl_fixture(tmp_path / "syn", scp_statements_csv, n_records=3, sampling_rates=(100,),
                               synthetic=True)
    records = load_ptbxl(root, cache_dir=False)
    assert records.name == "ptbxl-synthetic" and records.synthetic
    assert records.subset([0, 1]).synthetic


# --------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("task", list(EXPECTED_CLASSES))
def test_acceptance_statement_tasks(ptbxl, task):
    data = make_task(ptbxl, task)
    assert len(data.classes) == EXPECTED_CLASSES[task]
    assert data.classes == sorted(data.classes) and data.kind == "multilabel"
    assert data.y.dtype == np.float32 and data.y.shape == (len(data), len(data.classes))
    assert set(np.unique(data.y)) <= {0.0, 1.0} and (data.y.sum(1) > 0).all()
    assert (data.y.sum(0) > 0).all()
    # independent count of the records that keep a label for this task
    st = ptbxl.statements
    diag = set(st.index[st.diagnostic == 1])
    keep_codes = {"all": set(st.index), "diagnostic": diag, "subdiagnostic": diag, "superdiagnostic": diag,
                  "form": set(st.index[st.form == 1]), "rhythm": set(st.index[st.rhythm == 1])}[task]
    expected_ids = [i for i, c in ptbxl.meta["scp_codes"].items() if set(c) & keep_codes]
    assert list(data.ids) == expected_ids
    assert N_RECORDS - 1 not in data.ids and N_RECORDS not in data.ids  # the unlabelled records
    assert data.signals.shape == (len(data), 1000, 12)
    np.testing.assert_array_equal(data.folds, ptbxl.meta.loc[data.ids, "strat_fold"].to_numpy())


def test_statement_labels_content(ptbxl):
    codes = list(ptbxl.statements.index)
    sr_id = codes.index("SR") + 1  # record with SR only
    assert sr_id not in make_task(ptbxl, "diagnostic").ids
    rhythm = make_task(ptbxl, "rhythm")
    assert sr_id in rhythm.ids
    # likelihood 0.0 counts: record 1 is {codes[0]: 100, 'SR': 0.0}
    assert ptbxl.meta.loc[1, "scp_codes"]["SR"] == 0.0
    row = rhythm.y[list(rhythm.ids).index(1)]
    assert row[rhythm.classes.index("SR")] == 1.0
    sup = make_task(ptbxl, "superdiagnostic")
    assert sup.classes == ["CD", "HYP", "MI", "NORM", "STTC"]
    imi = codes.index("IMI") + 1
    assert [c for c, v in zip(sup.classes, sup.y[list(sup.ids).index(imi)]) if v] == ["MI"]
    sub = make_task(ptbxl, "subdiagnostic")
    assert [c for c, v in zip(sub.classes, sub.y[list(sub.ids).index(imi)]) if v] == ["IMI"]


def test_age_sex_quality(ptbxl):
    age = make_task(ptbxl, "age")
    assert age.kind == "regression" and age.y.shape == (N_RECORDS, 1) and age.classes == ["age"]
    assert age.y[1, 0] == 90.0  # PTB-XL codes >89 years as 300
    assert age.y.max() <= 90
    sex = make_task(ptbxl, "sex")
    assert sex.kind == "binary" and sex.y.shape == (N_RECORDS, 1) and sex.y.sum() == N_RECORDS // 2
    quality = make_task(ptbxl, "quality")
    expected = [float(i % 11 == 0 or i % 5 == 0 or i % 7 == 0) for i in range(N_RECORDS)]
    np.testing.assert_array_equal(quality.y[:, 0], expected)
    assert set(TASKS) == set(EXPECTED_CLASSES) | {"age", "sex", "quality"}
    with pytest.raises(ValueError, match="unknown task"):
        make_task(ptbxl, "nonsense")


def test_strat_split(ptbxl):
    data = make_task(ptbxl, "all")
    s = split(data, "strat")
    assert set(s.train.folds) == set(range(1, 9)) and set(s.val.folds) == {9} and set(s.test.folds) == {10}
    assert len(s.train) + len(s.val) + len(s.test) == len(data)
    assert not set(s.train.ids) & set(s.test.ids)
    assert s.train.y.shape[1] == s.test.y.shape[1] == 71


def test_random_split(ptbxl):
    data = make_task(ptbxl, "all")
    s = split(data, "random", seed=1)
    n_hold = round(len(data) / 10)
    assert (len(s.train), len(s.val), len(s.test)) == (len(data) - 2 * n_hold, n_hold, n_hold)
    ids = np.concatenate([s.train.ids, s.val.ids, s.test.ids])
    assert sorted(ids) == sorted(data.ids)
    again = split(data, "random", seed=1)
    np.testing.assert_array_equal(again.test.ids, s.test.ids)
    other = split(data, "random", seed=2)
    assert set(other.test.ids) != set(s.test.ids)
    assert set(s.test.folds) != {10}  # not the strat folds
    with pytest.raises(ValueError, match="scheme"):
        split(data, "patient")


def test_stratified_folds_deterministic():
    rng = np.random.default_rng(0)
    labels = [list(rng.choice(list("ABCDE"), size=rng.integers(1, 3), replace=False)) for _ in range(300)]
    folds = stratified_folds(labels, 10, seed=0)
    np.testing.assert_array_equal(folds, stratified_folds(labels, 10, seed=0))
    assert set(folds) == set(range(1, 11))
    sizes = np.bincount(folds)[1:]
    assert sizes.min() >= 25 and sizes.max() <= 35
    for c in "ABCDE":  # every label spread over the folds
        per_fold = np.bincount(folds[[c in x for x in labels]], minlength=11)[1:]
        assert per_fold.max() - per_fold.min() <= 2


# --------------------------------------------------------------------------- cache
def test_cache_second_load_does_not_read_wfdb(small_ptbxl, tmp_path, monkeypatch):
    cache_dir = tmp_path / "c"
    first = load_ptbxl(small_ptbxl, cache_dir=cache_dir)
    entries = [p for p in cache_dir.iterdir()]
    assert len(entries) == 1 and entries[0].name.startswith("ptbxl-100hz-")
    _no_wfdb(monkeypatch)
    second = load_ptbxl(small_ptbxl, cache_dir=cache_dir)
    assert isinstance(second.signals, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.signals), np.asarray(second.signals))


def test_cache_invalidated_by_changed_file(small_ptbxl, tmp_path):
    cache_dir = tmp_path / "c"
    load_ptbxl(small_ptbxl, cache_dir=cache_dir)
    record = small_ptbxl / "records100/00000/00002_lr"
    write_record(record, record_signal(2, 100) + 1.0, 100)
    st = os.stat(f"{record}.dat")
    os.utime(f"{record}.dat", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_ptbxl(small_ptbxl, cache_dir=cache_dir)
    np.testing.assert_allclose(again.signals[1], record_signal(2, 100) + 1.0, atol=1e-6)
    assert len(list(cache_dir.iterdir())) == 2


def test_cache_crash_leaves_no_entry(small_ptbxl, tmp_path, monkeypatch):
    cache_dir = tmp_path / "c"
    real, calls = wfdb.rdsamp, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(wfdb, "rdsamp", flaky)
    with pytest.raises(DataError, match="00003_lr.hea.*disk on fire"):
        load_ptbxl(small_ptbxl, cache_dir=cache_dir)
    assert list(cache_dir.iterdir()) == []  # neither an entry nor a temporary folder
    monkeypatch.setattr(wfdb, "rdsamp", real)
    assert load_ptbxl(small_ptbxl, cache_dir=cache_dir).signals.shape == (4, 1000, 12)


def test_default_cache_under_data_root(small_ptbxl, tmp_path):
    assert datasets.default_data_root() == tmp_path / "data_root"
    load_ptbxl(small_ptbxl)
    assert len(list((tmp_path / "data_root" / "cache").glob("ptbxl-100hz-*"))) == 1
    assert datasets.clear_cache() == 1


# --------------------------------------------------------------------------- errors
def _expect(match, fn, *args, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_error_missing_folder_and_csvs(small_ptbxl, tmp_path):
    _expect("not found", load_ptbxl, tmp_path / "nowhere", cache_dir=False)
    (small_ptbxl / "scp_statements.csv").unlink()
    _expect("scp_statements.csv not found", load_ptbxl, small_ptbxl, cache_dir=False)
    (small_ptbxl / "ptbxl_database.csv").unlink()
    _expect("ptbxl_database.csv not found", load_ptbxl, small_ptbxl, cache_dir=False)


def test_error_database_columns_and_codes(small_ptbxl):
    csv = small_ptbxl / "ptbxl_database.csv"
    db = pd.read_csv(csv, index_col="ecg_id")
    db.loc[3, "scp_codes"] = "{'NORM': 100.0, 'XYZ9': 50.0}"
    db.to_csv(csv)
    _expect(r"record 3 .*'XYZ9'", load_ptbxl, small_ptbxl, cache_dir=False)
    db.loc[3, "scp_codes"] = "{'NORM': 100.0"
    db.to_csv(csv)
    _expect("record 3: scp_codes .* not a dict literal", load_ptbxl, small_ptbxl, cache_dir=False)
    db.drop(columns=["scp_codes"]).to_csv(csv)
    _expect(r"ptbxl_database.csv: columns \['scp_codes'\] missing", load_ptbxl, small_ptbxl, cache_dir=False)


def test_error_unknown_code_in_make_task(ptbxl):
    meta = ptbxl.meta.iloc[:3].copy()
    meta["scp_codes"] = [{"NORM": 1.0}, {"BOGUS": 1.0}, {}]
    records = RecordSet("ptbxl", 100, np.zeros((3, 10, 12), np.float32), meta, ptbxl.statements)
    _expect(r"record 2 has SCP code 'BOGUS'", make_task, records, "all")


def test_error_empty_task(ptbxl):
    rhythm = set(ptbxl.statements.index[ptbxl.statements.rhythm == 1])
    no_rhythm = np.array([not (set(c) & rhythm) for c in ptbxl.meta["scp_codes"]])
    subset = ptbxl.subset(no_rhythm)
    _expect("task 'rhythm' is empty", make_task, subset, "rhythm")
    assert len(make_task(subset, "diagnostic")) > 0


@pytest.mark.parametrize("damage, match", [
    ("corrupt_header", r"00002_lr\.hea: sampling frequency 'abc' is not a plausible"),
    ("truncated_header", r"00002_lr\.hea: the record line announces 12 signals but 4 signal line"),
    ("missing_header", r"00002_lr\.hea: .*file is missing"),
    ("truncated_signal", r"00002_lr\.dat: truncated or damaged signal file: 5000 bytes, 00002_lr.hea expects"),
    ("missing_signal", r"00002_lr\.(hea: cannot read WFDB record .*No such file.*00002_lr\.dat|dat: file is missing)"),
    ("lead_count", r"00002_lr\.hea: 11 leads"),
    ("lead_order", r"00002_lr\.hea: lead order .*V2', 'V1'"),
    ("sampling_rate", r"00002_lr\.hea: sampling frequency 250 Hz, expected 100 Hz"),
    ("nan", r"00002_lr\.hea: 3 NaN/inf samples .*'V3'"),
    ("units", r"00002_lr\.hea: lead I has unit 'mmHg'"),
    ("length", r"00002_lr\.hea: 900 samples, expected 1000"),
])
@pytest.mark.parametrize("cached", [False, True])
def test_error_bad_records(small_ptbxl, tmp_path, damage, match, cached):
    record = small_ptbxl / "records100/00000/00002_lr"
    hea, dat = Path(f"{record}.hea"), Path(f"{record}.dat")
    x = record_signal(2, 100)
    if damage == "corrupt_header":
        hea.write_text("00002_lr 12 abc\ngarbage line\n")
    elif damage == "truncated_header":
        hea.write_text("\n".join(hea.read_text().splitlines()[:5]) + "\n")
    elif damage == "missing_header":
        hea.unlink()
    elif damage == "truncated_signal":
        dat.write_bytes(dat.read_bytes()[:5000])
    elif damage == "missing_signal":
        dat.unlink()
    elif damage == "lead_count":
        write_record(record, x[:, :11], 100, lead_names=LEAD_NAMES[:11])
    elif damage == "lead_order":
        names = list(LEAD_NAMES)
        names[6], names[7] = names[7], names[6]
        write_record(record, x, 100, lead_names=names)
    elif damage == "sampling_rate":
        write_record(record, x, 250)
    elif damage == "nan":
        x[10:13, 8] = np.nan
        write_record(record, x, 100)
    elif damage == "units":
        write_record(record, x, 100, units="mmHg")
    elif damage == "length":
        write_record(record, x[:900], 100)
    message = _expect(match, load_ptbxl, small_ptbxl, cache_dir=tmp_path / "c" if cached else False)
    assert "Traceback" not in message and len(message) < 600
    assert not cached or list((tmp_path / "c").glob("*")) == []  # no entry, no temporary folder


def test_lead_names_case_insensitive(small_ptbxl):
    record = small_ptbxl / "records100/00000/00001_lr"
    write_record(record, record_signal(1, 100), 100, lead_names=[n.lower() for n in LEAD_NAMES])
    assert load_ptbxl(small_ptbxl, cache_dir=False).signals.shape == (4, 1000, 12)


# --------------------------------------------------------------------------- ICBEB2018
def _icbeb_labels(n):
    """Every class occurs, some records multi-label; REFERENCE numbers 1..9."""
    out = []
    for i in range(n):
        labels = [i % 9 + 1]
        if i % 4 == 0:
            labels.append((i + 3) % 9 + 1)
        out.append(labels)
    return out


def write_icbeb_original(root: Path, n=27, seed=0) -> list[int]:
    rng = np.random.default_rng(seed)
    rows, lengths = [], []
    for i, labels in enumerate(_icbeb_labels(n)):
        name = f"A{i + 1:04d}"
        length = int(rng.integers(3000, 4500))
        lengths.append(length)
        data = rng.normal(0, 0.3, (12, length))
        folder = root / f"TrainingSet{1 + i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(folder / f"{name}.mat",
                         {"ECG": {"sex": "Female" if i % 2 else "Male", "age": 40 + i, "data": data}})
        rows.append([name] + labels + [np.nan] * (3 - len(labels)))
    ref = pd.DataFrame(rows, columns=["Recording", "First_label", "Second_label", "Third_label"])
    ref.to_csv(root / "REFERENCE.csv", index=False)
    return lengths


def test_icbeb_original_layout(tmp_path):
    root = tmp_path / "icbeb"
    lengths = write_icbeb_original(root)
    records = load_icbeb2018(root, cache_dir=False)
    assert records.name == "icbeb2018" and records.sampling_rate == 100 and len(records) == 27
    assert isinstance(records.signals, list)
    assert [len(s) for s in records.signals] == [-(-n // 5) for n in lengths]  # ceil(n / 5)
    assert all(s.dtype == np.float32 and s.shape[1] == 12 for s in records.signals)
    assert records.meta.loc["A0002", "age"] == 41 and records.meta.loc["A0002", "sex"] == 1.0
    assert records.meta.loc["A0001", "labels"] == ["NORM", "CLBBB"]
    assert (records.meta["patient_id"] == records.meta.index).all()
    data = make_task(records, "all")
    assert data.classes == sorted(ICBEB_CLASSES) and len(data) == 27
    assert set(records.meta["strat_fold"]) == set(range(1, 11))
    again = load_icbeb2018(root, cache_dir=False)
    np.testing.assert_array_equal(again.meta["strat_fold"], records.meta["strat_fold"])
    native = load_icbeb2018(root, sampling_rate=500, cache_dir=False)
    assert [len(s) for s in native.signals] == lengths
    s = split(data)
    assert len(s.train) + len(s.val) + len(s.test) == 27 and len(s.test) >= 1


def test_icbeb_cache_keeps_demographics(tmp_path, monkeypatch):
    root = tmp_path / "icbeb"
    write_icbeb_original(root, n=9)
    first = load_icbeb2018(root, cache_dir=tmp_path / "c")
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read")))
    second = load_icbeb2018(root, cache_dir=tmp_path / "c")
    pd.testing.assert_frame_equal(first.meta, second.meta)
    assert all(np.array_equal(a, b) for a, b in zip(first.signals, second.signals))


def test_icbeb_real_cpsc_sample(tmp_path):
    sample = shared_path("cpsc2018-sample")
    for i in range(1980, 1990):
        signal, age, sex = read_cpsc_mat(sample / f"A{i}.mat")
        # 500 Hz, 10-54 s in this sample (the data README's "10-16 s" is too narrow)
        assert signal.shape[1] == 12 and 5000 <= len(signal) <= 30000 and signal.dtype == np.float32
        assert 0 < age < 120 and sex in (0.0, 1.0)
    root = tmp_path / "cpsc"
    shutil.copytree(sample, root / "TrainingSet3")
    pd.DataFrame({"Recording": [f"A{i}" for i in range(1980, 1990)], "First_label": list(range(1, 10)) + [1],
                  "Second_label": [np.nan] * 9 + [2]}).to_csv(root / "REFERENCE.csv", index=False)
    native = load_icbeb2018(root, sampling_rate=500, cache_dir=False)
    records = load_icbeb2018(root, sampling_rate=100, cache_dir=False)
    assert len(native.signals[0]) == 5000 and len(native.signals[8]) == 27157
    assert [len(b) for b in records.signals] == [-(-len(a) // 5) for a in native.signals]
    assert records.meta.loc["A1989", "labels"] == ["NORM", "AFIB"]
    assert len(make_task(records, "all").classes) == 9


def write_icbeb_cinc(root: Path, n=18, fs=500):
    dx = {c: code for code, c in reversed(list(datasets.icbeb.SNOMED_TO_CLASS.items()))}
    for i, labels in enumerate(_icbeb_labels(n)):
        codes = [dx[ICBEB_CLASSES[k - 1]] for k in labels] + (["164934002"] if i % 3 == 0 else [])
        x = np.round(np.random.default_rng(i).normal(0, 0.3, (2500 + 100 * i, 12)), 3)
        write_record(root / f"A{i + 1:04d}", x, fs, lead_names=CINC_LEADS,
                     comments=[f"Age: {50 + i}", f"Sex: {'Female' if i % 2 else 'Male'}",
                               f"Dx: {','.join(codes)}", "Rx: Unknown"])


def test_icbeb_cinc_layout(tmp_path, monkeypatch):
    root = tmp_path / "cinc"
    write_icbeb_cinc(root)
    records = load_icbeb2018(root, cache_dir=tmp_path / "c")
    assert len(records) == 18 and records.sampling_rate == 100
    assert [len(s) for s in records.signals] == [(2500 + 100 * i) // 5 for i in range(18)]
    assert records.meta.loc["A0001", "labels"] == ["NORM", "CLBBB"]  # 164934002 is not one of the 9
    assert records.meta.loc["A0002", "sex"] == 1.0 and records.meta.loc["A0002", "age"] == 51
    data = make_task(records, "all")
    assert len(data.classes) == 9
    folds = records.meta["strat_fold"].to_numpy()
    _no_wfdb(monkeypatch)
    again = load_icbeb2018(root, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again.meta["strat_fold"].to_numpy(), folds)


def test_icbeb_errors(tmp_path):
    root = tmp_path / "icbeb"
    write_icbeb_original(root, n=9)
    ref = pd.read_csv(root / "REFERENCE.csv")
    ref.loc[4, "First_label"] = 12
    ref.to_csv(root / "REFERENCE.csv", index=False)
    _expect(r"REFERENCE.csv: record A0005: label .*12.* not a class number", load_icbeb2018, root, cache_dir=False)
    ref.loc[4, "First_label"] = 5
    ref.loc[9] = ["A0099", 1, np.nan, np.nan]
    ref.to_csv(root / "REFERENCE.csv", index=False)
    _expect(r"1 recordings without a .mat file .*A0099", load_icbeb2018, root, cache_dir=False)
    ref.drop(index=9).to_csv(root / "REFERENCE.csv", index=False)
    mat = root / "TrainingSet1" / "A0004.mat"
    scipy.io.savemat(mat, {"ECG": {"sex": "Male", "age": 1, "data": np.zeros((11, 3000))}})
    _expect(r"A0004.mat: ECG.data has shape \(11, 3000\)", load_icbeb2018, root, cache_dir=False)
    scipy.io.savemat(mat, {"other": np.zeros(3)})
    _expect(r"A0004.mat: no struct 'ECG'", load_icbeb2018, root, cache_dir=False)
    mat.write_bytes(b"MATLAB 5.0 truncated")
    _expect(r"A0004.mat: cannot read MATLAB file", load_icbeb2018, root, cache_dir=False)
    data = np.zeros((12, 3000))
    data[3, 7] = np.nan
    scipy.io.savemat(mat, {"ECG": {"sex": "Male", "age": 1, "data": data}})
    _expect(r"A0004.mat: 1 NaN/inf samples .*'AVR'", load_icbeb2018, root, cache_dir=False)
    _expect("not found", load_icbeb2018, tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    _expect("no ICBEB2018 data", load_icbeb2018, tmp_path / "empty")
    cinc = tmp_path / "cinc"
    write_icbeb_cinc(cinc, n=3, fs=250)
    _expect(r"A0001.hea: sampling frequency 250 Hz, expected 500 Hz", load_icbeb2018, cinc, cache_dir=False)


# --------------------------------------------------------------------------- LUDB, CinC, generic folders
@pytest.fixture(scope="session")
def ludb500(session_cache):
    return load_ludb(shared_path("ludb-1.0.1"), sampling_rate=500, cache_dir=session_cache)


def test_ludb_500hz(ludb500):
    assert ludb500.name == "ludb" and len(ludb500) == 200
    assert ludb500.signals.shape == (200, 5000, 12) and ludb500.signals.dtype == np.float32
    data = make_task(ludb500, "rhythm")
    counts = dict(zip(data.classes, data.y.sum(0).astype(int)))
    assert counts["Sinus rhythm"] == 143 and counts["Sinus bradycardia"] == 25
    assert counts["Atrial fibrillation"] == 15 and counts["Sinus arrhythmia"] == 8
    assert counts["Sinus tachycardia"] == 4 and counts["Atrial flutter, typical"] == 3
    assert counts["Irregular sinus rhythm"] == 2 and len(data) == 200
    assert ludb500.meta.loc[1, "age"] == 51 and ludb500.meta.loc[1, "sex"] == 1.0
    assert set(ludb500.meta["strat_fold"]) == set(range(1, 11))
    assert make_task(ludb500, "sex").y.shape == (200, 1)
    with pytest.raises(ValueError, match="unknown task"):
        make_task(ludb500, "superdiagnostic")


def test_ludb_100hz_from_native_cache(ludb500, session_cache, monkeypatch):
    root = shared_path("ludb-1.0.1")
    direct = read_record(root / "data" / "7", 500, 100)
    _no_wfdb(monkeypatch)  # resampled from the cached 500 Hz signals
    ludb100 = load_ludb(root, sampling_rate=100, cache_dir=session_cache)
    assert ludb100.signals.shape == (200, 1000, 12) and ludb100.sampling_rate == 100
    np.testing.assert_allclose(ludb100.signals[6], direct, atol=1e-4)
    again = load_ludb(root, sampling_rate=100, cache_dir=session_cache)
    assert isinstance(again.signals, np.memmap)


def test_cinc2021_sample_dx_headers():
    records = load_wfdb_folder(shared_path("cinc2021-sample"), cache_dir=False)
    assert len(records) == 50 and records.sampling_rate == 500
    assert records.signals.shape == (50, 5000, 12)
    assert records.meta.loc["E07500", "labels"] == ["67741000119109", "426177001"]
    assert records.meta.loc["HR06000", "labels"] == ["164934002", "426783006"]
    assert records.meta.loc["E07500", "age"] == 78 and records.meta.loc["HR06000", "sex"] == 1.0
    assert all(len(x) > 0 for x in records.meta["labels"])
    data = make_task(records, "all")
    assert "426783006" in data.classes and data.y.sum() == sum(len(x) for x in records.meta["labels"])



def test_icbeb_on_cinc2021_sample(tmp_path):
    """CinC-layout records of the real sample (.mat signals) through the ICBEB reader."""
    sample = shared_path("cinc2021-sample")
    names = ["E07500", "E07503", "HR06000", "HR06001", "JS20000", "JS20001"]
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(sample / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    icbeb = load_icbeb2018(tmp_path, sampling_rate=100, cache_dir=False)
    assert list(icbeb.meta.index) == names and [len(s) for s in icbeb.signals] == [1000] * len(names)
    dx = {n: [ln for ln in (sample / f"{n}.hea").read_text().splitlines() if ln.startswith("# Dx:")][0]
          for n in names}
    for name in names:
        expected = [c for code, c in datasets.icbeb.SNOMED_TO_CLASS.items() if code in dx[name].split(": ")[1].split(",")]
        assert sorted(icbeb.meta.loc[name, "labels"]) == sorted(set(expected))


def test_wfdb_folder_label_tables(tmp_path):
    root = tmp_path / "folder"
    for i in range(6):
        write_record(root / "sub" / f"r{i}", record_signal(i, 250, duration=2.0 + (i % 2)), 250,
                     lead_names=CINC_LEADS)
    table = pd.DataFrame({"record": [f"r{i}" for i in range(6)],
                          "labels": ["AF", "AF;PVC", "NORM", "NORM", "", "PVC"], "age": range(30, 36)})
    records = load_wfdb_folder(root, labels=table, cache_dir=False)
    assert list(records.meta.index) == [f"sub/r{i}" for i in range(6)]
    assert records.meta.loc["sub/r1", "labels"] == ["AF", "PVC"]
    assert isinstance(records.signals, list) and [len(s) for s in records.signals] == [500, 750] * 3
    data = make_task(records, "all")
    assert data.classes == ["AF", "NORM", "PVC"] and len(data) == 5  # r4 has no label
    assert make_task(records, "age").y[0, 0] == 30
    onehot = pd.DataFrame({"AF": [1, 0], "NORM": [0, 1]}, index=["sub/r0", "sub/r2"])
    csv = tmp_path / "labels.csv"
    onehot.to_csv(csv)
    resampled = load_wfdb_folder(root, labels=csv, sampling_rate=100, cache_dir=False)
    assert list(resampled.meta["labels"]) == [["AF"], ["NORM"]]
    assert resampled.signals.shape == (2, 200, 12)
    table.loc[0, "record"] = "missing"
    _expect("record 'missing' of the label table has no WFDB header", load_wfdb_folder, root, labels=table)
    write_record(root / "other", record_signal(9, 500, duration=1.0), 500)
    _expect("different sampling rates", load_wfdb_folder, root, cache_dir=False)
    (tmp_path / "none").mkdir()
    _expect("no WFDB header", load_wfdb_folder, tmp_path / "none")


def test_load_detects_layout(ptbxl_root, session_cache, tmp_path):
    assert datasets.detect(ptbxl_root) == "ptbxl"
    assert datasets.load(ptbxl_root, cache_dir=session_cache).name == "ptbxl"
    _expect("not found; run", datasets.load, "ptbxl")
    _expect("no known dataset layout", datasets.detect, tmp_path)


def test_summary_cli(ptbxl, ptbxl_root, session_cache, capsys):
    from ecg_keras.cli.data import main

    assert main(["summary", str(ptbxl_root), "--cache-dir", str(session_cache)]) == 0
    out = capsys.readouterr().out
    assert f"records: {N_RECORDS}" in out and "sampling rate: 100 Hz" in out
    assert "task superdiagnostic: " in out and "5 classes" in out and "71 classes" in out
    assert "folds: 1: 8, 2: 8" in out
    assert main(["summary", "/nonexistent/folder"]) == 1  # a data error (docs/CLI.md)

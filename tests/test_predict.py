"""``predict``: people's own records (WFDB, CPSC .mat, .npy, .csv, folders) through every model kind.

The model is an untrained fcn_wang in a run directory marked as trained on synthetic data (what
matters here is the plumbing: reading, lead matching, resampling, aggregation, refusals, output).
Real records come from ../shared/data (tests skip without it); the others are generated.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import RHYTHM_CLASSES, beat_signal, shared_path
from ecg_keras.datasets.base import DataError
from ecg_keras.io.records import LEAD_NAMES, match_leads, read_any
from ecg_keras.cli.predict import main
from ecg_keras.predict import RESERVED, ModelError, load_model, predict
from ecg_keras.standardize import Standardizer
from ecg_keras.windows import predict_records

CLASSES = RHYTHM_CLASSES


_signal = beat_signal


@pytest.fixture(scope="module")
def run(untrained_run) -> Path:
    return untrained_run


@pytest.fixture(scope="module")
def predictor(run):
    return load_model(run)


def _write_csv(path: Path, x: np.ndarray, names=LEAD_NAMES, fs: float | None = 500.0) -> Path:
    df = pd.DataFrame(x, columns=list(names))
    if fs is not None:
        df.insert(0, "time", np.arange(len(x)) / fs)
    df.to_csv(path, index=False, float_format="%.6f")
    return path


def test_run_directory_matches_predict_records(predictor, run, tmp_path):
    x = _signal()
    np.save(tmp_path / "a.npy", x.astype(np.float32))
    frame = predict(predictor, [tmp_path / "a.npy"], fs=500, progress=False)
    assert frame["valid"].tolist() == [True]
    assert list(frame.columns[len(RESERVED):]) == CLASSES
    from scipy.signal import resample_poly

    ref = predict_records(predictor.keras_model, [resample_poly(x, 1, 5, axis=0).astype(np.float32)],
                          sampling_rate=100, standardizer=Standardizer(0.0, 0.2))
    np.testing.assert_allclose(frame[CLASSES].to_numpy(float), ref, atol=1e-5)
    assert frame.attrs["model"]["synthetic"] is True and frame.attrs["model"]["sha256"]


def test_csv_leads_are_matched_by_name(predictor, tmp_path):
    x = _signal(seed=1)
    order = [6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]
    spelled = ["v1", "V2", "v3", "V4", "V5", "V6", "I", "II", "III", "AVR", "avl", "aVF"]
    _write_csv(tmp_path / "shuffled.csv", x[:, order], spelled)  # time column gives fs
    np.save(tmp_path / "standard.npy", x)
    frame = predict(predictor, [tmp_path / "shuffled.csv", tmp_path / "standard.npy"], fs=None, progress=False)
    assert frame.loc[0, "valid"] and frame.loc[0, "fs"] == pytest.approx(500)
    assert not frame.loc[1, "valid"] and "pass --fs" in frame.loc[1, "problem"]
    frame2 = predict(predictor, [tmp_path / "standard.npy"], fs=500, progress=False)
    np.testing.assert_allclose(frame.loc[0, CLASSES].to_numpy(float), frame2.loc[0, CLASSES].to_numpy(float),
                               atol=1e-4)


def test_unmatched_or_duplicate_leads_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"cannot match the leads \['V4'\]"):
        match_leads([n for n in LEAD_NAMES if n != "V4"] + ["X"], "rec")
    with pytest.raises(DataError, match="twice"):
        match_leads(list(LEAD_NAMES[:11]) + ["avr"], "rec")
    assert match_leads(["lead I", "D2", "III", "AVR", "aVL", "avf", "V1", "V2", "V3", "V4", "V5", "V6", "X"],
                       "rec") == list(range(12))


def test_nan_in_v2_marks_the_record_invalid_and_exits_1(run, tmp_path, capsys):
    x = _signal()
    x[1234, 7] = np.nan
    _write_csv(tmp_path / "bad.csv", x)
    np.save(tmp_path / "good.npy", _signal(seed=2))
    code = main([str(run), str(tmp_path / "bad.csv"), str(tmp_path / "good.npy"), "--fs", "500",
                 "--out", str(tmp_path / "out.csv"), "--no-progress"])
    out = capsys.readouterr()
    assert code == 1
    assert ("bad.csv: non-finite samples (NaN/Inf) in lead(s) V2; 1 sample(s), the first at sample 1234 (2.468 s)"
            in out.out)
    table = pd.read_csv(tmp_path / "out.csv")
    assert table["valid"].tolist() == [False, True]
    assert np.isnan(table.loc[0, CLASSES].to_numpy(float)).all() and np.isfinite(table.loc[1, CLASSES].to_numpy(float)).all()
    assert (table["training_data"] == "SYNTHETIC").all()


def test_flat_lead_and_wrong_units_are_refused(predictor, tmp_path):
    flat = _signal()
    flat[:, 9] = 0.0
    np.save(tmp_path / "flat.npy", flat)
    np.save(tmp_path / "microvolts.npy", _signal() * 1000)
    frame = predict(predictor, [tmp_path / "flat.npy", tmp_path / "microvolts.npy"], fs=500, progress=False)
    assert "flat line (peak-to-peak below 0.01 mV over 10.0 s) in lead(s) V4" in frame.loc[0, "problem"]
    assert "wrong units" in frame.loc[1, "problem"]
    ok = predict(predictor, [tmp_path / "microvolts.npy"], fs=500, units="uV", progress=False)
    assert ok["valid"].all()


def test_wfdb_record_with_nan_code_in_v2(run, tmp_path, capsys):
    src = shared_path("ludb-1.0.1", "data")
    shutil.copy(src / "3.hea", tmp_path / "3.hea")
    d = np.fromfile(src / "3.dat", dtype="<i2").reshape(-1, 12)
    d[2000, 7] = -32768  # WFDB's missing-sample code
    d.tofile(tmp_path / "3.dat")
    assert main([str(run), str(tmp_path / "3"), "--no-progress"]) == 1
    assert f"{tmp_path / '3'}: non-finite samples (NaN/Inf) in lead(s) V2; 1 sample(s)" in capsys.readouterr().out


def test_ludb_cpsc_and_csv_acceptance(run, tmp_path, capsys):
    """#16 acceptance: a LUDB WFDB record, a CPSC .mat and a .csv -> top classes and one PNG each."""
    import wfdb

    ludb = shared_path("ludb-1.0.1", "data", "1.hea")
    mat = shared_path("cpsc2018-sample", "A1980.mat")
    x, _ = wfdb.rdsamp(str(ludb.with_suffix("")))
    _write_csv(tmp_path / "ludb1.csv", x)
    code = main([str(run), str(ludb.with_suffix("")), str(mat), str(tmp_path / "ludb1.csv"), "--plot",
                 str(tmp_path / "png"), "--top", "2", "--out", str(tmp_path / "out.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SYNTHETIC" in out and "sha256" in out and "top 2" in out
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 3 and all(p.stat().st_size > 50_000 for p in pngs)
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["model"]["synthetic"] is True and len(doc["records"]) == 3
    assert set(doc["records"][0]["probabilities"]) == set(CLASSES)
    p_wfdb, _, p_csv = (np.array([r["probabilities"][c] for c in CLASSES]) for r in doc["records"])
    np.testing.assert_allclose(p_wfdb, p_csv, atol=1e-3)  # same signal, WFDB vs CSV (6 decimals)


def test_explain_plot(predictor, tmp_path):
    np.save(tmp_path / "a.npy", _signal(seconds=6.0))
    frame = predict(predictor, [tmp_path / "a.npy"], fs=500, plot_dir=tmp_path / "png", explain=True,
                    progress=False)
    assert frame["valid"].all()
    assert len(list((tmp_path / "png").glob("*.png"))) == 1


def test_savedmodel_and_onnx_give_the_run_directory_probabilities(predictor, untrained_exports, tmp_path):
    import onnx

    sm, whole, window = (untrained_exports[k] for k in ("savedmodel", "onnx_record", "onnx_window"))
    records = []
    for i, seconds in enumerate((10.0, 7.3, 2.0)):
        np.save(tmp_path / f"r{i}.npy", _signal(seconds=seconds, seed=i))
        records.append(tmp_path / f"r{i}.npy")
    ref = predict(predictor, records, fs=500, progress=False)[CLASSES].to_numpy(float)
    for source in (sm.parent, sm, whole, window):
        got = predict(source, records, fs=500, progress=False)
        assert got["valid"].all()
        np.testing.assert_allclose(got[CLASSES].to_numpy(float), ref, atol=1e-5, err_msg=str(source))
        assert got.attrs["model"]["synthetic"] is True
    proto = onnx.load(str(whole))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="no ecg_keras metadata.*sidecar"):
        load_model(bare)
    spec = json.loads(dict((p.key, p.value) for p in onnx.load(str(whole)).metadata_props)["ecg_keras"])
    bare.with_suffix(".json").write_text(json.dumps(spec))
    got = predict(bare, records, fs=500, progress=False)
    np.testing.assert_allclose(got[CLASSES].to_numpy(float), ref, atol=1e-5)


def test_released_model_by_name(run, tmp_path, capsys):
    from ecg_keras.export import release_run

    entry = release_run(run, "tiny-demo", models_directory=tmp_path / "models")
    np.save(tmp_path / "a.npy", _signal())
    assert main(["tiny-demo", str(tmp_path / "a.npy"), "--fs", "500", "--models-dir", str(tmp_path / "models"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert entry["sha256"] in out and "SYNTHETIC" in out


def test_model_and_usage_errors(tmp_path, capsys):
    assert main([str(tmp_path / "nothing-here"), str(tmp_path)]) == 1  # a data error (docs/CLI.md)
    assert "not a run directory, SavedModel, ONNX file or released model" in capsys.readouterr().err
    (tmp_path / "m.txt").write_text("x")
    assert main([str(tmp_path / "m.txt"), str(tmp_path)]) == 1


def test_folder_expansion_and_bad_paths(predictor, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    np.save(folder / "b.npy", _signal(seed=3))
    _write_csv(folder / "a.csv", _signal(seed=4))
    (folder / "notes.txt").write_text("ignored")
    frame = predict(predictor, [folder, tmp_path / "missing.npy", tmp_path / "empty"], fs=500, progress=False)
    assert [Path(r).name for r in frame["record"]] == ["a.csv", "b.npy", "missing.npy", "empty"]
    assert frame["valid"].tolist() == [True, True, False, False]
    assert "no such record" in frame.loc[2, "problem"]


def test_reader_reads_fs_and_units_from_wfdb(tmp_path):
    import wfdb

    x = _signal(seconds=2.0, fs=250)
    wfdb.wrsamp("r", fs=250, units=["uV"] * 12, sig_name=list(LEAD_NAMES), p_signal=x * 1000, fmt=["16"] * 12,
                adc_gain=[1.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    rec = read_any(tmp_path / "r.hea")
    assert rec.fs == 250 and rec.leads == list(LEAD_NAMES)
    np.testing.assert_allclose(rec.signal, x, atol=1e-3)  # uV -> mV
    with pytest.raises(DataError, match="says 250 Hz but --fs 500"):
        read_any(tmp_path / "r", fs=500)


@pytest.mark.slow
def test_ludb_folder_of_200_records(run, tmp_path):
    folder = shared_path("ludb-1.0.1", "data")
    assert main([str(run), str(folder), "--out", str(tmp_path / "all.csv")]) == 0
    table = pd.read_csv(tmp_path / "all.csv")
    assert len(table) == 200 and table["valid"].all()


def test_ecg_paper_is_drawn_at_true_scale(tmp_path):
    import matplotlib.image

    from ecg_keras.evaluation import ecg_paper

    png = ecg_paper.plot_ecg_paper(_signal(seconds=12.0), 500.0, tmp_path / "p.png", title="t",
                                   predictions=[("SR", 0.9), ("AFIB", 0.1)], dpi=100)
    h, w = matplotlib.image.imread(png).shape[:2]
    grid_w = ecg_paper.CAL_MM + 10.0 * ecg_paper.MM_PER_S  # 10 s at 25 mm/s
    assert w == pytest.approx((grid_w + ecg_paper.PANEL_MM + 6) / 25.4 * 100, abs=2)
    assert h == pytest.approx((4 * ecg_paper.ROW_MM + 23) / 25.4 * 100, abs=2)


def test_grouping_does_not_change_results(predictor, tmp_path, monkeypatch):
    import ecg_keras.predict.records as predict_module  # run_predictions reads the limit there

    paths = []
    for i, seconds in enumerate((10.0, 3.0, 25.0)):
        np.save(tmp_path / f"r{i}.npy", _signal(seconds=seconds, seed=i))
        paths.append(tmp_path / f"r{i}.npy")
    together = predict(predictor, paths, fs=500, progress=False)[CLASSES].to_numpy(float)
    monkeypatch.setattr(predict_module, "MAX_BATCH_SAMPLES", 1)  # one record per model call
    alone = predict(predictor, paths, fs=500, progress=False)[CLASSES].to_numpy(float)
    np.testing.assert_allclose(alone, together, atol=1e-6)

"""LiteRT export (ecg_keras/export/litert.py): float parity with Keras, int8 sanity, files and CLI.

Run with ai_edge_litert's interpreter (the ``[litert]`` extra). Tiny: fcn_wang (untrained, 5
classes) on random "mV" records and, when ../shared/data is present, real LUDB records.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_path

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install 'ecg_keras[litert]')")

from ecg_keras import models  # noqa: E402
from ecg_keras.export import litert  # noqa: E402
from ecg_keras.export.litert import LiteRTModel, convert_litert, export_litert, read_metadata  # noqa: E402
from ecg_keras.export.signatures import ServingSpec, record_probabilities  # noqa: E402
from ecg_keras.standardize import Standardizer  # noqa: E402
from ecg_keras.windows import predict_records  # noqa: E402

TOL = 1e-5
CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]


@pytest.fixture(scope="module")
def records() -> np.ndarray:
    """Four 10-s 12-lead records at 100 Hz, smooth random 'ECG-like' mV values."""
    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.3, size=(4, 1000, 12)).astype(np.float32)
    return (x + 0.05 * np.cumsum(rng.normal(size=(4, 1000, 12)), axis=1)).astype(np.float32)


@pytest.fixture(scope="module")
def setup(records):
    keras.utils.set_random_seed(0)
    model = models.get("fcn_wang", input_shape=(250, 12), num_classes=len(CLASSES))
    st = Standardizer.fit(records)
    return model, st, dict(standardizer=st, classes=CLASSES, sampling_rate=100)


@pytest.fixture(scope="module")
def window_float(setup):
    model, _, kw = setup
    return LiteRTModel(convert_litert(model, **kw)[0])


def keras_windows(model, st, x):
    return keras.ops.convert_to_numpy(keras.ops.sigmoid(model(st.transform(x), training=False)))


def test_constants_match_serving_graph():
    from ecg_keras.export import signatures

    assert (litert.INPUT_KEY, litert.OUTPUT_KEY, litert.WINDOWS_KEY, litert.VALID_KEY) == (
        signatures.INPUT_KEY, signatures.OUTPUT_KEY, signatures.WINDOWS_KEY, signatures.VALID_KEY)


def test_float_window_model_parity(setup, records, window_float):
    model, st, _ = setup
    windows = records[:, 100:350]
    got = window_float(windows)
    assert got.shape == (4, len(CLASSES))
    assert np.abs(got - keras_windows(model, st, windows)).max() <= TOL
    assert np.abs(window_float(windows[:1]) - got[:1]).max() <= TOL  # the batch is dynamic
    meta = window_float.metadata
    assert meta["classes"] == CLASSES and meta["window"] == 250 and meta["whole_record"] is False
    assert meta["quantize"] is None and meta["mean"] == pytest.approx(st.mean)
    sig = window_float.interpreter.get_signature_list()["serving_default"]
    assert sig["inputs"] == ["ecg"] and sorted(sig["outputs"]) == ["probabilities", "valid"]


def test_float_window_model_parity_on_ludb(setup, window_float):
    """Real LUDB records (500 Hz, resampled to 100 Hz): every evaluation window."""
    from scipy.signal import resample_poly
    import wfdb

    from ecg_keras.windows import eval_windows

    model, st, _ = setup
    root = shared_path("ludb-1.0.1", "data")
    recs = [resample_poly(wfdb.rdsamp(str(root / r))[0], 1, 5, axis=0).astype(np.float32) for r in ("1", "2")]
    windows, _ = eval_windows(recs, window=250, stride=125)
    assert np.abs(window_float(windows) - keras_windows(model, st, windows)).max() <= TOL


def test_whole_record_dynamic_length_parity(setup, records):
    model, st, kw = setup
    lm = LiteRTModel(convert_litert(model, whole_record=True, **kw)[0])
    assert lm.metadata["whole_record"] is True and lm.metadata["record_length"] is None
    out = lm.run(records)
    ref = predict_records(model, list(records), standardizer=st)
    assert np.abs(out["probabilities"] - ref).max() <= TOL
    assert out["n_windows"].tolist() == [7, 7, 7, 7]
    spec = ServingSpec.create(model, **kw)
    for length in (500, 260, 200, 30):  # shorter than a window: zero-padded after standardisation
        got = lm.run(records[:2, :length])
        ref = record_probabilities(model, tf.constant(records[:2, :length]), None, spec)[0].numpy()
        assert np.abs(got["probabilities"] - ref).max() <= TOL, length
    assert lm.run(records[:2, :500])["n_windows"].tolist() == [3, 3]
    # invalid records (LiteRT cannot raise): valid = False and NaN, as the ONNX models; others unchanged
    bad = records.copy()
    bad[1, 10, 3] = np.nan
    bad[2, :, 7] = 0.25  # flat V2
    raw = lm.run(bad, check=False)
    assert raw["valid"].tolist() == [True, False, False, True]
    assert np.isnan(raw["probabilities"][1:3]).all()
    assert np.abs(raw["probabilities"][[0, 3]] - out["probabilities"][[0, 3]]).max() <= TOL
    with pytest.raises(ValueError, match=r"record 1: non-finite samples \(NaN/Inf\) in lead\(s\) aVR"):
        lm(bad)


def test_int8_runs_within_loose_bound(setup, records, window_float):
    model, st, kw = setup
    data, meta = convert_litert(model, quantize="int8", calibration=records, **kw)
    assert meta["quantize"] == "int8"
    lm = LiteRTModel(data)
    windows = records[:, 500:750]
    got = lm(windows)
    assert got.dtype == np.float32 and got.shape == (4, len(CLASSES)) and np.isfinite(got).all()
    assert np.abs(got - keras_windows(model, st, windows)).max() < 0.1
    assert lm.size < 0.4 * window_float.size  # int8 weights: about a quarter of float32


def test_dynamic_and_float16_run(setup, records, window_float):
    model, st, kw = setup
    windows = records[:, :250]
    for quantize, bound in (("float16", 1e-2), ("dynamic", 0.1)):
        lm = LiteRTModel(convert_litert(model, quantize=quantize, **kw)[0])
        assert np.abs(lm(windows) - keras_windows(model, st, windows)).max() < bound, quantize
        assert lm.size < 0.6 * window_float.size, quantize


def test_argument_errors(setup, records):
    model, _, kw = setup
    with pytest.raises(ValueError, match="quantize must be one of"):
        convert_litert(model, quantize="int4", **kw)
    with pytest.raises(ValueError, match="needs calibration"):
        convert_litert(model, quantize="int8", **kw)
    with pytest.raises(ValueError, match="only used with quantize='int8'"):
        convert_litert(model, quantize="dynamic", calibration=records, **kw)
    with pytest.raises(ValueError, match="whole-record"):
        convert_litert(model, record_seconds=10, **kw)
    bad = records.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        convert_litert(model, quantize="int8", calibration=bad, **kw)


def test_input_checks(window_float, records):
    with pytest.raises(ValueError, match=r"\(batch, 250, 12\).*got shape \(2, 250, 8\)"):
        window_float(records[:2, :250, :8])
    with pytest.raises(ValueError, match=r"got shape \(2, 300, 12\)"):
        window_float(records[:2, :300])
    bad = records[:2, :250].copy()
    bad[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"record 1: non-finite samples \(NaN/Inf\) in lead\(s\) I\b"):
        window_float(bad)
    raw = window_float.run(bad, check=False)
    assert raw["valid"].tolist() == [True, False] and np.isnan(raw["probabilities"][1]).all()
    flat = records[:2, :250].copy()
    flat[0, :, 11] = 0.0
    with pytest.raises(ValueError, match=r"record 0: flat line \(peak-to-peak below 0\.01 mV\) in lead\(s\) V6"):
        window_float(flat)
    assert window_float.run(flat, check=False)["valid"].tolist() == [False, True]


def test_existing_output_kept_unless_overwrite(setup, tmp_path):
    model, _, kw = setup
    path = tmp_path / "m.tflite"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_litert(model, path, **kw)
    assert path.read_bytes() == b"keep me"
    assert export_litert(model, path, overwrite=True, **kw) == path
    assert read_metadata(path)["classes"] == CLASSES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]  # no temporary file left
    # a failed conversion leaves the old file and no temporary file
    with pytest.raises(ValueError):
        export_litert(model, path, overwrite=True, quantize="int8", **kw)
    assert read_metadata(path)["classes"] == CLASSES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


def make_run(path: Path, model, st: Standardizer) -> Path:
    path.mkdir(parents=True)
    model.save(path / "model.keras")
    (path / "classes.json").write_text(json.dumps(CLASSES))
    st.save(path / "standardizer.json")
    (path / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": "superdiagnostic",
                                                  "dataset": "ptbxl", "sampling_rate": 100, "seed": 0}))
    return path


def test_cli(setup, records, tmp_path, capsys):
    from export.__main__ import main

    model, st, _ = setup
    run = make_run(tmp_path / "run", model, st)
    out = tmp_path / "m.tflite"
    assert main(["litert", str(run), "--out", str(out), "--whole-record", "--record-seconds", "10"]) == 0
    assert "LiteRT (whole-record model, float32)" in capsys.readouterr().out
    lm = LiteRTModel(out)
    assert lm.metadata["record_length"] == 1000 and lm.metadata["extra"]["arch"] == "fcn_wang"
    assert np.abs(lm(records) - predict_records(model, list(records), standardizer=st)).max() <= TOL
    before = out.read_bytes()
    assert main(["litert", str(run), "--out", str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["litert", str(run), "--out", str(out), "--quantize", "int8"]) == 2
    assert "needs --calibration" in capsys.readouterr().err
    assert main(["litert", str(run), "--out", str(out), "--overwrite"]) == 0
    assert LiteRTModel(out).metadata["whole_record"] is False


def test_cli_int8_calibrated_on_ludb(setup, tmp_path, capsys):
    """--quantize int8 --calibration DIR: a folder of real records (LUDB, read at the model's 100 Hz)."""
    from export.__main__ import main

    ludb = shared_path("ludb-1.0.1")
    model, st, _ = setup
    run = make_run(tmp_path / "run", model, st)
    out = tmp_path / "int8.tflite"
    assert main(["litert", str(run), "--out", str(out), "--quantize", "int8", "--calibration", str(ludb)]) == 0
    assert "int8" in capsys.readouterr().out
    assert read_metadata(out)["quantize"] == "int8"

"""Export reliability (issues #16, #19): atomic writes and --overwrite, bounded memory for long records,
NaN/Inf and flat-line input refused (SavedModel, predict_records) or flagged (ONNX ``valid``), and
the same inputs accepted and refused by both export formats.

A tiny untrained fcn_wang on real LUDB records (resampled to 100 Hz): only the behaviour is tested
here, parity on realistic models is in test_export.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from conftest import shared_path
from ecg_keras import models
from ecg_keras.datasets.base import DataError
from ecg_keras.export import ExportError, export_onnx, export_savedmodel
from ecg_keras.standardize import Standardizer
from ecg_keras.windows import predict_records

CLASSES = ["a", "b", "c"]
CHUNK = 3  # windows per model call in the exported whole-record functions
MAX_SECONDS = 30  # 3000 samples at 100 Hz
TOL = 1e-5


@pytest.fixture(scope="module")
def records() -> list[np.ndarray]:
    import wfdb
    from scipy.signal import resample_poly

    root = shared_path("ludb-1.0.1", "data")
    return [resample_poly(wfdb.rdsamp(str(root / r))[0], 1, 5, axis=0).astype(np.float32) for r in ("1", "2", "3")]


@pytest.fixture(scope="module")
def small(tmp_path_factory, records):
    """fcn_wang (3 classes) exported to a SavedModel and both ONNX models, chunk 3, max 30 s."""
    keras.utils.set_random_seed(0)
    model = models.get("fcn_wang", num_classes=len(CLASSES))
    st = Standardizer.fit(records)
    tmp = tmp_path_factory.mktemp("small")
    kw = dict(classes=CLASSES, standardizer=st, chunk_windows=CHUNK, max_record_seconds=MAX_SECONDS)
    sm = export_savedmodel(model, tmp / "serving", **kw)
    return {"model": model, "st": st, "dir": tmp, "sm": sm,
            "sigs": tf.saved_model.load(str(sm)).signatures,
            "record": ort.InferenceSession(str(export_onnx(model, tmp / "record.onnx", whole_record=True, **kw))),
            "window": ort.InferenceSession(str(export_onnx(model, tmp / "window.onnx", **kw)))}


def onnx_run(sess, x) -> dict:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"ecg": np.asarray(x, np.float32)})))


def with_nan_in_v2(records) -> list[np.ndarray]:
    bad = [r.copy() for r in records]
    bad[1][500, 7] = np.nan  # record 1, lead V2
    return bad


# --------------------------------------------------------------------------- non-finite / flat input
def test_nan_in_v2_refused_by_predict_records(small, records):
    with pytest.raises(DataError, match=r"record 1: non-finite samples \(NaN/Inf\) in lead\(s\) V2"):
        predict_records(small["model"], with_nan_in_v2(records), standardizer=small["st"])
    inf = [r.copy() for r in records]
    inf[2][0, 0] = np.inf
    with pytest.raises(DataError, match=r"record 2: .* lead\(s\) I;"):
        predict_records(small["model"], inf, standardizer=small["st"])


def test_nan_in_v2_refused_by_every_savedmodel_signature(small, records):
    bad = np.stack(with_nan_in_v2(records))
    sigs = small["sigs"]
    message = r"non-finite samples \(NaN/Inf\) in the record\(s\).*\] \[1\] \[lead\(s\)\] \[V2\]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        sigs["predict_record"](ecg=tf.constant(bad))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        sigs["predict_record_padded"](ecg=tf.constant(bad), length=tf.constant([1000, 1000, 1000]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"in the window\(s\).*\] \[0\] \[lead\(s\)\] \[V2\]"):
        sigs["serving_default"](ecg=tf.constant(bad[1:2, 375:625]))
    # NaN in the padding of a shorter record is not part of the record: accepted
    padded = np.stack(records)
    padded[0, 900:] = np.nan
    out = sigs["predict_record_padded"](ecg=tf.constant(padded), length=tf.constant([900, 1000, 1000]))
    assert np.isfinite(out["probabilities"].numpy()).all()


def test_nan_in_v2_flagged_by_onnx(small, records):
    bad = np.stack(with_nan_in_v2(records))
    out = onnx_run(small["record"], bad)
    assert out["valid"].tolist() == [True, False, True]
    assert np.isnan(out["probabilities"][1]).all() and np.isfinite(out["probabilities"][[0, 2]]).all()
    ref = predict_records(small["model"], [records[0], records[2]], standardizer=small["st"])
    np.testing.assert_allclose(out["probabilities"][[0, 2]], ref, atol=TOL, rtol=0)
    win = onnx_run(small["window"], bad[:, 375:625])
    assert win["valid"].tolist() == [True, False, True] and np.isnan(win["probabilities"][1]).all()


def test_flat_lead_refused_or_flagged(small, records):
    flat = [r.copy() for r in records]
    flat[2][:, 3] = 0.0  # aVR disconnected: zero variance over the whole record
    with pytest.warns(UserWarning, match=r"record 2: flat line .* lead\(s\) aVR"):
        preds = predict_records(small["model"], flat, standardizer=small["st"])  # benchmark default: warn
    assert np.isfinite(preds).all()
    with pytest.raises(DataError, match=r"record 2: flat line .* lead\(s\) aVR"):
        predict_records(small["model"], flat, standardizer=small["st"], flat="error")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"flat line.*\] \[2\] \[lead\(s\)\] \[aVR\]"):
        small["sigs"]["predict_record"](ecg=tf.constant(np.stack(flat)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"flat line.*\[lead\(s\)\] \[aVR\]"):
        small["sigs"]["serving_default"](ecg=tf.constant(flat[2][None, :250]))
    assert onnx_run(small["record"], np.stack(flat))["valid"].tolist() == [True, True, False]
    assert onnx_run(small["window"], flat[2][None, :250])["valid"].tolist() == [False]


# --------------------------------------------------------------------------- long records
def test_chunked_windows_equal_unchunked_predictions(small, records):
    """A 25-s record (19 windows) through chunks of 3 windows equals predict_records, batched or not."""
    long = np.concatenate([records[0], records[1], records[2][:500]])  # 2500 samples
    ref = predict_records(small["model"], [long], standardizer=small["st"], batch_size=256)
    np.testing.assert_array_equal(predict_records(small["model"], [long], standardizer=small["st"], batch_size=2),
                                  ref)
    out = small["sigs"]["predict_record"](ecg=tf.constant(long[None]))
    assert out["n_windows"].numpy().tolist() == [19]
    np.testing.assert_allclose(out["probabilities"].numpy(), ref, atol=TOL, rtol=0)
    # several records of different lengths share the chunk budget (3 // 2 = 1 window per record per step)
    batch = np.zeros((2, 2500, 12), np.float32)
    batch[0], batch[1, :1000] = long, records[1]
    out = small["sigs"]["predict_record_padded"](ecg=tf.constant(batch), length=tf.constant([2500, 1000]))
    ref2 = predict_records(small["model"], [long, records[1]], standardizer=small["st"])
    np.testing.assert_allclose(out["probabilities"].numpy(), ref2, atol=TOL, rtol=0)
    np.testing.assert_allclose(onnx_run(small["record"], long[None])["probabilities"], ref, atol=TOL, rtol=0)


def test_record_over_the_maximum_length_is_refused(small, records):
    long = np.tile(records[0], (4, 1))[:3001]  # one sample over 30 s at 100 Hz
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"longer than 3000 samples \(30 s at 100 Hz.*\[3001\]"):
        small["sigs"]["predict_record"](ecg=tf.constant(long[None]))
    out = onnx_run(small["record"], long[None])
    assert out["valid"].tolist() == [False] and np.isnan(out["probabilities"]).all()
    with pytest.raises(DataError, match=r"record 0: 3001 samples exceed the maximum record length of 3000"):
        predict_records(small["model"], [long], standardizer=small["st"], max_record_seconds=MAX_SECONDS)
    meta = json.loads((small["sm"] / "assets" / "ecg_keras.json").read_text())
    assert (meta["max_record_seconds"], meta["max_length"], meta["chunk_windows"]) == (30, 3000, 3)


# --------------------------------------------------------------------------- both formats agree
@pytest.mark.parametrize("case", ["ok", "leads", "window", "empty", "nan", "flat", "too_long"])
def test_savedmodel_and_onnx_accept_and_refuse_the_same_inputs(small, records, case):
    """Same input to the SavedModel (window and whole-record signatures) and the two ONNX models:
    both accept it, or the SavedModel raises and ONNX raises or returns valid = False."""
    rec = np.stack(records[:2])
    win = rec[:, :250]
    if case == "leads":
        rec, win = rec[..., :8], win[..., :8]
    elif case == "window":
        win = rec[:, :300]
    elif case == "empty":
        rec = rec[:, :0]
    elif case in ("nan", "flat"):
        rec, win = rec.copy(), win.copy()
        rec[0, :, 4] = win[0, :, 4] = np.nan if case == "nan" else 1.0
    elif case == "too_long":
        rec = np.tile(rec, (1, 4, 1))[:, :3001]

    def savedmodel(sig, x):
        try:
            small["sigs"][sig](ecg=tf.constant(x))
            return True
        except tf.errors.InvalidArgumentError:
            return False

    def onnx(sess, x):
        try:
            return bool(np.all(onnx_run(sess, x)["valid"]))
        except Exception:  # onnxruntime's shape checks
            return False

    accepted = {"sm_record": savedmodel("predict_record", rec), "onnx_record": onnx(small["record"], rec)}
    if case not in ("empty", "too_long"):  # whole-record cases only
        accepted |= {"sm_window": savedmodel("serving_default", win), "onnx_window": onnx(small["window"], win)}
    expected = {k: case == "ok" or (case == "window" and k.endswith("record")) for k in accepted}
    assert accepted == expected, accepted


# --------------------------------------------------------------------------- atomic writes, --overwrite
def current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small):
    run = tmp_path_factory.mktemp("run")
    small["model"].save(run / "model.keras")
    (run / "classes.json").write_text(json.dumps(CLASSES))
    small["st"].save(run / "standardizer.json")
    (run / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": "rhythm", "sampling_rate": 100}))
    return run


def test_cli_onnx_keeps_an_existing_file_unless_overwrite(run_dir, tmp_path, capsys, monkeypatch):
    import onnx

    from export.__main__ import main

    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous good file")
    assert main(["onnx", str(run_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err and "overwrite=True" not in err
    assert out.read_bytes() == b"previous good file"

    real_save = onnx.save

    def full_disk(proto, path, *a, **k):  # half a file written, then ENOSPC
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save", full_disk)
    assert main(["onnx", str(run_dir), "--out", str(out), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "previous version is unchanged" in err and "Traceback" not in err
    assert out.read_bytes() == b"previous good file" and leftovers(tmp_path, {"model.onnx"}) == []

    def interrupted(proto, path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["onnx", str(run_dir), "--out", str(out), "--overwrite"])
    assert out.read_bytes() == b"previous good file" and leftovers(tmp_path, {"model.onnx"}) == []

    monkeypatch.setattr(onnx, "save", real_save)
    assert main(["onnx", str(run_dir), "--out", str(out), "--overwrite", "--whole-record",
                 "--max-record-seconds", "20"]) == 0
    sess = ort.InferenceSession(str(out))
    assert json.loads(sess.get_modelmeta().custom_metadata_map["ecg_keras"])["max_length"] == 2000
    assert onnx_run(sess, np.zeros((1, 250, 12)))["valid"].tolist() == [False]  # flat
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert leftovers(tmp_path, {"model.onnx"}) == []


def test_savedmodel_version_kept_unless_overwrite(run_dir, small, tmp_path, capsys, monkeypatch):
    from export.__main__ import main

    kw = dict(classes=CLASSES, standardizer=small["st"])
    version = export_savedmodel(small["model"], tmp_path, **kw)
    before = (version / "saved_model.pb").read_bytes()
    assert main(["savedmodel", str(run_dir), "--out", str(tmp_path), "--model-name", "ecg", "--version", "1"]) == 1
    err = capsys.readouterr().err
    assert "pass --overwrite" in err and "--version" in err and "overwrite=True" not in err
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        export_savedmodel(small["model"], tmp_path, **kw)

    def full_disk(module, path, *a, **k):
        (Path(path) / "saved_model.pb").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", full_disk)
    with pytest.raises(ExportError, match="no space left on the device.*previous version is unchanged"):
        export_savedmodel(small["model"], tmp_path, overwrite=True, **kw)
    assert (version / "saved_model.pb").read_bytes() == before
    assert leftovers(version.parent, {"1"}) == []
    assert version.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # readable by TF Serving's user
    monkeypatch.undo()
    export_savedmodel(small["model"], tmp_path, overwrite=True, aggregation="mean", **kw)
    assert json.loads((version / "assets" / "ecg_keras.json").read_text())["aggregation"] == "mean"
    assert leftovers(version.parent, {"1"}) == []

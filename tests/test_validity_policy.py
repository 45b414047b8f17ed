"""Issue 23 item 7: predict, the SavedModel signatures, the ONNX and the LiteRT whole-record models
apply ONE validity policy (ecg_keras.io.records.check_signal's defaults) to the same inputs: the
SavedModel and the checked LiteRT runner raise, ONNX and raw LiteRT answer valid = False, predict
marks the row invalid; an empty record never fails inside ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest

from ecg_keras.io.records import FLAT_MV, MAX_MV

LENGTH = 300  # 3 s at the run's 100 Hz


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ok = (np.sin(np.arange(LENGTH) / 7.0)[:, None] * np.linspace(0.5, 1.5, 12) + 0.05 * rng.standard_normal(
        (LENGTH, 12))).astype(np.float32)
    nan, flat, large = ok.copy(), ok.copy(), ok.copy()
    nan[10, 7] = np.nan
    flat[:, 4] = 1.0 + FLAT_MV * 0.2 * rng.standard_normal(LENGTH).clip(-2, 2)  # not constant, still flat
    large[5, 0] = MAX_MV * 1.5
    return {"ok": ok, "nan": nan, "flat": flat, "large": large, "empty": ok[:0], "huge": ok * 1e4}


@pytest.fixture(scope="module")
def engines(untrained_run, untrained_exports):
    """The session's untrained run and its shared exports (the policy does not depend on the weights)."""
    import onnxruntime as ort
    import tensorflow as tf

    from ecg_keras.export.litert import LiteRTModel

    sm = tf.saved_model.load(str(untrained_exports["savedmodel"]))
    return {"run": untrained_run, "sm": sm.signatures["predict_record"],
            "onnx": ort.InferenceSession(str(untrained_exports["onnx_record"])),
            "litert": LiteRTModel(untrained_exports["litert_record"])}


def test_every_engine_applies_the_same_validity_policy(engines, tmp_path):
    import tensorflow as tf

    from ecg_keras.predict import predict

    cases = _cases()
    paths = []
    for name, x in cases.items():
        paths.append(tmp_path / f"{name}.npy")
        np.save(paths[-1], x)
    frame = predict(engines["run"], paths, fs=100, progress=False)
    verdicts = {"predict": dict(zip(cases, frame["valid"].tolist()))}

    def savedmodel(x):
        try:
            engines["sm"](ecg=tf.constant(x[None]))
            return True
        except tf.errors.InvalidArgumentError:
            return False

    def onnx(x):  # must not raise, even for an empty record
        out = engines["onnx"].run(["valid", "probabilities"], {"ecg": x[None]})
        assert out[0][0] or np.isnan(out[1][0]).all()
        return bool(out[0][0])

    def litert_checked(x):
        try:
            engines["litert"](x[None])
            return True
        except ValueError:
            return False

    def litert_raw(x):
        return bool(engines["litert"].run(x[None], check=False)["valid"][0])

    for engine, fn in (("savedmodel", savedmodel), ("onnx", onnx), ("litert", litert_checked),
                       ("litert_raw", litert_raw)):
        verdicts[engine] = {name: fn(x) for name, x in cases.items()}
    expected = {name: name == "ok" for name in cases}
    assert all(v == expected for v in verdicts.values()), verdicts
    assert "flat line" in frame.loc[2, "problem"] and "mV" in frame.loc[3, "problem"]

"""--precision: Keras mixed-precision policies for training; logits, probabilities and exports stay float32.

Default suite: the policy context, a mixed_bfloat16 run exported to SavedModel and ONNX (float32
in, float32 out), a mixed_float16 run (loss scaling). ``-m slow``: mixed_bfloat16 reaches the
float32 run's test macro AUC within 0.02 on the synthetic rhythm task.
"""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import data_root, make_synthetic
from ecg_keras import models
from ecg_keras.training import TrainConfig, train
from ecg_keras.training.precision import policy


def _run(data, out, precision, **kw):
    """A run of its own (conftest's trained_run is float32): the precision policy is what is tested."""
    cfg = dict(task="rhythm", dataset="synthetic", data_dir=str(data), arch="fcn_wang", epochs=2, batch_size=16,
               seed=1, output=str(out), precision=precision, verbose=0)
    return train(TrainConfig(**{**cfg, **kw}))


def test_policy_computes_in_bfloat16_with_a_float32_output_and_is_restored():
    with policy("mixed_bfloat16"):
        model = models.get("fcn_wang", num_classes=5)
    assert keras.config.dtype_policy().name == "float32"
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert convs and all(c.compute_dtype == "bfloat16" and c.variable_dtype == "float32" for c in convs)
    assert model.get_layer("head_logits").compute_dtype == "float32"
    assert model(np.zeros((2, 250, 12), np.float32)).dtype == "float32"
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="float8")


def test_mixed_bfloat16_run_exports_float32_savedmodel_and_onnx(data_env, tmp_path):
    import onnxruntime as ort
    import tensorflow as tf

    from ecg_keras.export import export_onnx, export_savedmodel
    from ecg_keras.runs import resolve

    run_dir = _run(data_env, tmp_path / "bf16", "mixed_bfloat16")
    assert (run_dir / "COMPLETE").exists()
    assert json.loads((run_dir / "config.json").read_text())["precision"] == "mixed_bfloat16"
    preds = np.load(run_dir / "predictions" / "test.npz")["y_pred"]
    assert preds.dtype == np.float32 and np.isfinite(preds).all()

    run = resolve(run_dir)  # the final model is float32: mixed precision is a training-time choice
    assert run.model.dtype_policy.name == "float32" and run.model.output.dtype == "float32"
    kw = run.export_kwargs()
    sm = tf.saved_model.load(str(export_savedmodel(run.model, tmp_path / "serving", **kw)))
    onnx_path = export_onnx(run.model, tmp_path / "window.onnx", **kw)
    x = np.random.default_rng(0).normal(size=(3, 250, 12)).astype(np.float32)

    sig = sm.signatures["serving_default"]
    assert sig.structured_input_signature[1]["ecg"].dtype == tf.float32
    out = sig(ecg=tf.constant(x))["probabilities"].numpy()
    assert out.dtype == np.float32 and sig.structured_outputs["probabilities"].dtype == tf.float32
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outputs = {o.name: o.type for o in sess.get_outputs()}
    assert sess.get_inputs()[0].type == "tensor(float)" and outputs["probabilities"] == "tensor(float)"
    (probs,) = sess.run(["probabilities"], {sess.get_inputs()[0].name: x})
    assert probs.dtype == np.float32 and probs.shape == (3, len(run.classes))
    np.testing.assert_allclose(probs, out, atol=1e-5)


def test_mixed_float16_trains_with_loss_scaling(data_env, tmp_path):
    from ecg_keras.training.lifecycle import compile_model
    from ecg_keras.training.schedule import OneCycleMomentum

    cfg = TrainConfig(arch="fcn_wang", precision="mixed_float16").resolved()
    with policy("mixed_float16"):
        model = models.get("fcn_wang", num_classes=5)
        schedule = compile_model(model, cfg, "multilabel", total_steps=10)
    assert type(model.optimizer).__name__ == "LossScaleOptimizer" and model.optimizer.built
    callback = OneCycleMomentum(schedule)
    callback.set_model(model)
    callback.on_train_begin()  # reaches AdamW's beta_1 through the wrapper

    run_dir = _run(data_env, tmp_path / "fp16", "mixed_float16", epochs=1)
    assert (run_dir / "COMPLETE").exists()
    assert np.isfinite(np.load(run_dir / "predictions" / "test.npz")["y_pred"]).all()


@pytest.fixture(scope="module")
def synthetic_large(tmp_path_factory):
    with data_root(make_synthetic(tmp_path_factory, 2000)) as path:
        yield path


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mixed_bfloat16_matches_float32_macro_auc(synthetic_large, tmp_path):
    """Synthetic rhythm (2000 records), fcn_wang, 10 epochs: bfloat16 within 0.02 test macro AUC."""
    auc = {}
    for precision in ("float32", "mixed_bfloat16"):
        run = _run(synthetic_large, tmp_path / precision, precision, epochs=10, batch_size=128, seed=0)
        auc[precision] = json.loads((run / "metrics.json").read_text())["test"]["macro_auc"]
    assert auc["float32"] > 0.8, auc
    assert abs(auc["mixed_bfloat16"] - auc["float32"]) <= 0.02, auc

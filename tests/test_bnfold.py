"""BatchNorm folding (ecg_keras.models.bnfold): the inference copies equal the models within 1e-5."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from ecg_keras import models
from ecg_keras.models.bnfold import as_conv2d, fold_batchnorm, foldable_pairs

TOL = 1e-5
# BatchNorms left after folding: the head's two (BN -> Dropout -> Dense) and inception1d's six
# after the branch concatenation.
KEPT = {"fcn_wang": 2, "resnet1d_wang": 2, "xresnet1d18": 2, "xresnet1d34": 2, "xresnet1d50": 2,
        "xresnet1d101": 2, "xresnet1d152": 2, "inception1d": 8}
DEEP = ("xresnet1d34", "xresnet1d50", "xresnet1d101", "xresnet1d152")


def batch_norms(model):
    return [l for l in model.layers if isinstance(l, layers.BatchNormalization)]


def trained_like(model, x, seed=0):
    """Nontrivial BN parameters and statistics of the scale training leaves (not 0/1, not exploding).

    One training-mode pass with momentum 0 sets every moving mean/variance to the batch's
    statistics; gamma, beta and the statistics are then perturbed per channel.
    """
    rng = np.random.default_rng(seed)
    bns = batch_norms(model)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        n = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, n))
        bn.beta.assign(rng.normal(0.0, 0.3, n))
        bn.momentum = 0.0
    model(x, training=True)
    for bn, m in zip(bns, momenta):
        n = bn.gamma.shape[0]
        bn.momentum = m
        bn.moving_mean.assign(bn.moving_mean.numpy() + rng.normal(0.0, 0.1, n) * np.sqrt(bn.moving_variance.numpy()))
        bn.moving_variance.assign(bn.moving_variance.numpy() * rng.uniform(0.7, 1.4, n) + 1e-3)
    return model


def ecg_like(shape, seed=1):
    """Standardised ECG-scale windows: a few smooth waves plus noise (unit scale, like the model inputs)."""
    rng = np.random.default_rng(seed)
    t = np.arange(shape[1])[None, :, None] / 100.0
    waves = sum(rng.normal(0, 1, (shape[0], 1, shape[2])) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
                for f in (1.1, 5.0, 13.0))
    return (waves + rng.normal(0, 0.3, shape)).astype(np.float32)


def float64_reference(model, arch, x):
    """``model``'s logits computed in float64 (the same weights): the exact answer both float32 graphs approximate."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        exact = models.get(arch, num_classes=model.output_shape[-1], input_shape=model.input_shape[1:])
    finally:
        keras.config.set_dtype_policy(policy)
    exact.set_weights([w.astype(np.float64) for w in model.get_weights()])
    return exact(x.astype(np.float64), training=False).numpy()


# xresnet1d101/152 only repeat xresnet1d50's bottleneck blocks (more of them): slow, the default suite folds xresnet1d50
@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a in ("xresnet1d101", "xresnet1d152") else a
                                  for a in sorted(KEPT)])
def test_folded_model_equals_model(arch):
    keras.utils.set_random_seed(0)  # the kernels: the same comparison in every run
    x = ecg_like((8, 64, 12))
    model = trained_like(models.get(arch, num_classes=5, input_shape=(64, 12)), x)
    want = model(x, training=False).numpy()
    folded = fold_batchnorm(model)
    got = folded(x, training=False).numpy()
    assert 0.05 < np.abs(want).max() < 1000, "logits of a sensible scale (not a trivial comparison)"
    if arch in DEEP:
        # float32 rounding differs (kernel * scale is rounded once instead of BN's ops per call) and
        # 34-152 layers amplify it, for the unfolded model too: the folded model must be about as
        # close to the float64 result as the unfolded one (measured 0.7-2.3x its error; a wrong
        # fold is off by O(1)).
        exact = float64_reference(model, arch, x)
        unfolded_error = np.abs(want - exact).max()
        assert np.abs(got - exact).max() <= max(3 * unfolded_error, TOL * np.abs(exact).max())
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL * max(1.0, np.abs(want).max()))
        sigmoid = lambda z: 1 / (1 + np.exp(-z.astype(np.float64)))  # noqa: E731
        np.testing.assert_allclose(sigmoid(got), sigmoid(want), rtol=0, atol=TOL)
    # the pairs are gone, names kept; the original model is untouched
    pairs = foldable_pairs(model)
    assert len(batch_norms(folded)) == KEPT[arch] == len(batch_norms(model)) - len(pairs)
    assert sorted(l.name for l in folded.layers) == sorted(l.name for l in model.layers if l.name not in pairs)
    for conv in pairs.values():
        assert folded.get_layer(conv).use_bias and not model.get_layer(conv).use_bias
    np.testing.assert_array_equal(model(x, training=False).numpy(), want)


def test_only_conv_bn_chains_are_folded():
    inp = keras.Input((32, 4))
    shared = layers.Conv1D(6, 3, padding="same", use_bias=False, name="shared")(inp)  # two consumers
    a = layers.BatchNormalization(name="bn_shared")(shared)
    b = layers.ReLU(name="relu_shared")(shared)
    act = layers.Conv1D(6, 3, padding="same", activation="relu", name="act")(inp)  # not linear
    c = layers.BatchNormalization(name="bn_act")(act)
    biased = layers.Conv1D(6, 3, padding="same", name="biased")(inp)  # with a bias: folded too
    d = layers.BatchNormalization(name="bn_biased")(biased)
    cat = layers.Concatenate(name="cat")([a, b, c, d])
    e = layers.BatchNormalization(name="bn_cat")(cat)  # after a concatenation: kept
    dense = layers.Dense(5, name="dense")(layers.GlobalAveragePooling1D(name="gap")(e))
    out = layers.BatchNormalization(name="bn_dense")(dense)  # Dense -> BN: folded
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(4, 32, 4)).astype(np.float32)
    trained_like(model, x)
    assert foldable_pairs(model) == {"bn_biased": "biased", "bn_dense": "dense"}
    folded = fold_batchnorm(model)
    assert {l.name for l in batch_norms(folded)} == {"bn_shared", "bn_act", "bn_cat"}
    np.testing.assert_allclose(folded(x), model(x, training=False), atol=TOL)


def test_models_without_pairs_are_returned_unchanged():
    model = models.get("lstm", num_classes=3, input_shape=(50, 12))
    assert fold_batchnorm(model) is model
    sub = keras.Sequential([keras.Input((10, 2)), layers.Conv1D(3, 3), layers.BatchNormalization()])
    assert fold_batchnorm(sub) is sub


def test_nested_models_are_folded():
    x = ecg_like((4, 64, 12))
    inner = trained_like(models.get("fcn_wang", num_classes=3, input_shape=(64, 12)), x)
    inp = keras.Input((64, 12))
    outer = keras.Model(inp, layers.Activation("sigmoid", name="probs")(inner(inp)))
    folded = fold_batchnorm(outer)
    assert len(batch_norms(folded.get_layer("fcn_wang"))) == 2
    np.testing.assert_allclose(folded(x), outer(x, training=False), atol=TOL)


@pytest.mark.parametrize("arch", ["fcn_wang", "resnet1d_wang", "xresnet1d18", "inception1d"])
def test_conv2d_form_equals_model(arch):
    keras.utils.set_random_seed(0)
    x = ecg_like((4, 64, 12))
    model = fold_batchnorm(trained_like(models.get(arch, num_classes=5, input_shape=(64, 12)), x))
    flat = as_conv2d(model)
    assert flat.input_shape == (None, 1, 64, 12) and flat.output_shape == model.output_shape
    assert not any("1D" in type(l).__name__ for l in flat.layers)
    want = model(x, training=False).numpy()
    np.testing.assert_allclose(flat(x[:, None], training=False).numpy(), want, rtol=0,
                               atol=TOL * max(1.0, np.abs(want).max()))


def test_conv2d_form_only_for_supported_models():
    assert as_conv2d(models.get("lstm", num_classes=3, input_shape=(50, 12))) is None
    assert as_conv2d(models.get("fcn_wang", num_classes=3, include_top=False, pooling="sequence")) is None


def test_onnx_graph_has_no_layout_transposes(tmp_path):
    """ONNX Runtime's optimised whole-record graph: one Transpose (the NWC input), no BN arithmetic."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from ecg_keras.export import export_onnx
    from ecg_keras.export.onnx import session_options
    from ecg_keras.standardize import Standardizer

    model = models.get("resnet1d_wang", num_classes=3, input_shape=(250, 12))
    path = export_onnx(model, tmp_path / "m.onnx", standardizer=Standardizer(0.0, 1.0), classes=["a", "b", "c"],
                       whole_record=True)
    options = session_options()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def ops(graph):
        for node in graph.node:
            yield node.op_type
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from ops(attr.g)

    optimised = list(ops(onnx.load(str(tmp_path / "optimised.onnx")).graph))
    assert optimised.count("Transpose") == 1 and "ReorderInput" not in optimised
    assert "Sqrt" not in optimised and "Reciprocal" not in optimised  # BN statistics folded at export / load


def test_onnx_whole_record_lstm_is_one_lstm_op_per_layer(tmp_path):
    """Inside the whole-record loop the recurrent layers convert to ONNX LSTM ops (constant weights), not
    to a Loop over the time steps (0.5x, docs/RESULTS.md 8.8), with the Keras model's probabilities."""
    onnx = pytest.importorskip("onnx")
    import tensorflow as tf

    from ecg_keras.export import export_onnx
    from ecg_keras.export.onnx import inference_session
    from ecg_keras.export.signatures import ServingSpec, record_probabilities
    from ecg_keras.standardize import Standardizer

    model = models.get("lstm", num_classes=3, input_shape=(250, 12), units=16)
    std, classes = Standardizer(0.0, 1.0), ["a", "b", "c"]
    path = export_onnx(model, tmp_path / "m.onnx", standardizer=std, classes=classes, whole_record=True)

    def ops(graph, depth=0):
        for node in graph.node:
            yield depth, node.op_type
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from ops(attr.g, depth + 1)

    found = list(ops(onnx.load(str(path)).graph))
    assert found.count((1, "LSTM")) == 2 and found.count((0, "Loop")) == 1
    assert [op for op in found if op[1] == "Loop"] == [(0, "Loop")]  # no loop over time steps inside
    x = ecg_like((2, 1000, 12))
    spec = ServingSpec.create(model, classes=classes, standardizer=std)
    ref = record_probabilities(model, tf.constant(x), None, spec)[0].numpy()
    np.testing.assert_allclose(inference_session(path).run(["probabilities"], {"ecg": x})[0], ref, atol=1e-5)

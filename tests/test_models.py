"""The model zoo: parameter counts (docs/PROTOCOL.md table), PyTorch-faithful shapes, training step on
real LUDB windows, .keras round trip, headless / head replacement, naming and initialisation.

Default suite: every architecture for parameter counts and forward passes (250; conv models also
1000 and 5000); training step + save/load for a representative subset (TRAIN_DEFAULT).
``-m slow``: training step + save/load for the remaining architectures.
"""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

import ecg_keras
from ecg_keras import models
from ecg_keras.models import layers

from conftest import shared_path

# docs/PROTOCOL.md, "Trainable parameter counts of the reference models" (71 classes, 5 classes)
PARAM_COUNTS = {
    "fcn_wang": (318_279, 309_765),
    "resnet1d_wang": (481_863, 473_349),
    "xresnet1d18": (373_447, 364_933),
    "xresnet1d34": (703_175, 694_661),
    "xresnet1d50": (962_503, 953_989),
    "xresnet1d101": (1_880_775, 1_872_261),
    "xresnet1d152": (2_799_047, 2_790_533),
    "inception1d": (516_167, 507_653),
    "lstm": (910_151, 901_637),
    "lstm_bidir": (2_335_047, 2_326_533),
    "gru": (711_495, 702_981),
}
ARCHS = sorted(PARAM_COUNTS)
RNNS = ("lstm", "lstm_bidir", "gru")
CONVS = [a for a in ARCHS if a not in RNNS]
BIG = ("xresnet1d50", "xresnet1d101", "xresnet1d152", "lstm_bidir")
TRAIN_DEFAULT = ("fcn_wang", "resnet1d_wang", "xresnet1d18", "inception1d", "gru")
TRAIN_SLOW = tuple(a for a in ARCHS if a not in TRAIN_DEFAULT)
HEAD_NAMES = ["head_bn1", "head_dropout1", "head_dense1", "head_relu1", "head_bn2",
              "head_dropout2", "head_logits"]


@functools.lru_cache(maxsize=None)
def built(arch: str, num_classes: int) -> keras.Model:
    """Models are built once per test module (building dominates the cost of these tests)."""
    return models.get(arch, num_classes=num_classes)


def n_trainable(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def forward(model: keras.Model, x: np.ndarray) -> np.ndarray:
    if model.name in RNNS:  # graph mode: an eager RNN steps through time op by op
        return np.asarray(model.predict_on_batch(x))
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def ludb_windows() -> np.ndarray:
    """Real ECG windows: LUDB records 1-4, 500 -> 100 Hz, 4 non-overlapping 250-sample windows
    each, lead order I..V6, standardised with one scalar mean/std -> (16, 250, 12) float32."""
    import wfdb
    from scipy.signal import resample_poly

    from ecg_keras.datasets.base import LEADS

    root = shared_path("ludb-1.0.1", "data")
    wins = []
    for rec in (1, 2, 3, 4):
        sig, fields = wfdb.rdsamp(str(root / str(rec)))
        names = [n.upper() for n in fields["sig_name"]]
        sig = sig[:, [names.index(ld) for ld in LEADS]]
        sig = resample_poly(sig, 1, 5, axis=0)  # 5000 -> 1000 samples
        wins += [sig[i:i + 250] for i in range(0, 1000, 250)]
    x = np.stack(wins)
    x = (x - x.mean()) / x.std()
    assert x.shape == (16, 250, 12) and np.isfinite(x).all()
    return x.astype("float32")


# ------------------------------------------------------------------------------- registry
def test_registry_lists_every_architecture():
    assert models.list_models() == ARCHS
    assert ecg_keras.list_models() == ARCHS
    assert models.list_models("xresnet*") == [a for a in ARCHS if a.startswith("xresnet")]
    with pytest.raises(ValueError, match="unknown model"):
        models.get("resnet9000")


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_parameter_counts_match_protocol(arch):
    want71, want5 = PARAM_COUNTS[arch]
    assert n_trainable(built(arch, 71)) == want71
    assert n_trainable(built(arch, 5)) == want5


# ------------------------------------------------------------------- shapes and forward passes
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_250(arch):
    m = built(arch, 5)
    expected = (250, 12) if arch in RNNS else (None, 12)
    assert tuple(m.inputs[0].shape[1:]) == expected
    out = forward(m, np.random.default_rng(0).normal(size=(2, 250, 12)).astype("float32"))
    assert out.shape == (2, 5) and np.isfinite(out).all()


@pytest.mark.parametrize("arch", CONVS)
def test_conv_models_run_on_any_length(arch):
    m = built(arch, 5)
    rng = np.random.default_rng(1)
    for shape in ((2, 1000, 12), (1, 5000, 12)):
        out = forward(m, rng.normal(size=shape).astype("float32"))
        assert out.shape == (shape[0], 5) and np.isfinite(out).all()


def test_rnn_length_agnostic_variant():
    m = models.get("gru", num_classes=3, input_shape=(None, 12))
    assert n_trainable(m) == n_trainable(models.get("gru", num_classes=3))
    out = np.asarray(m.predict_on_batch(np.zeros((1, 300, 12), "float32")))
    assert out.shape == (1, 3)


def _torch_conv_len(n, k, s, p):
    return (n + 2 * p - k) // s + 1


@pytest.mark.parametrize("length", [250, 251, 1000, 5000])
def test_feature_lengths_equal_pytorch(length):
    """Intermediate lengths equal PyTorch's (padding (k-1)//2, MaxPool(3,2,1), AvgPool ceil)."""
    x = np.zeros((1, length, 12), "float32")
    xr = built("xresnet1d18", 5)
    names = ["stem_pool", "stage2_block1_shortcut_pool", "stage2_block1_bn2", "stage4_block2_out"]
    outs = keras.Model(xr.inputs[0], [xr.get_layer(n).output for n in names])(x)
    t = _torch_conv_len(_torch_conv_len(length, 5, 2, 2), 3, 2, 1)
    t2 = _torch_conv_len(t, 5, 2, 2)
    t4 = _torch_conv_len(_torch_conv_len(t2, 5, 2, 2), 5, 2, 2)
    assert [o.shape[1] for o in outs] == [t, -(-t // 2), t2, t4]
    fcn = built("fcn_wang", 5)
    out = keras.Model(fcn.inputs[0], fcn.get_layer("block3_relu").output)(x)
    assert out.shape[1] == _torch_conv_len(length, 8, 1, 3)  # even kernel: one sample shorter
    rn = built("resnet1d_wang", 5)
    out = keras.Model(rn.inputs[0], rn.get_layer("stage3_block1_out").output)(x)
    assert out.shape[1] == _torch_conv_len(_torch_conv_len(length, 5, 2, 2), 5, 2, 2)


def test_padding_emulation_matches_pytorch_numerics():
    rng = np.random.default_rng(2)
    # strided conv, PyTorch padding 2 on both sides
    inp = keras.Input((None, 3))
    conv = keras.Model(inp, layers.conv1d(inp, 4, 5, strides=2, name="c"))
    x = rng.normal(size=(1, 11, 3)).astype("float32")
    w = keras.ops.convert_to_numpy(conv.get_layer("c").kernel)  # (k, in, out)
    xp = np.pad(x[0], ((2, 2), (0, 0)))
    ref = np.stack([np.einsum("ki,kio->o", xp[i:i + 5], w) for i in range(0, xp.shape[0] - 4, 2)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv(x))[0], ref, rtol=1e-5, atol=1e-5)
    # MaxPool1d(3, 2, padding=1) on non-negative inputs, even length
    inp = keras.Input((None, 2))
    pool = keras.Model(inp, layers.max_pool_after_relu(inp, 3, 2, 1, name="p"))
    x = np.abs(rng.normal(size=(1, 10, 2))).astype("float32")
    xp = np.pad(x[0], ((1, 1), (0, 0)), constant_values=-np.inf)
    ref = np.stack([xp[i:i + 3].max(0) for i in range(0, 10, 2)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pool(x))[0], ref)
    # AvgPool1d(2, ceil_mode=True) on an odd length: last window averages its one valid sample
    x = rng.normal(size=(1, 7, 2)).astype("float32")
    avg = keras.layers.AveragePooling1D(2, strides=2, padding="same")
    ref = np.stack([x[0, i:i + 2].mean(0) for i in range(0, 7, 2)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(avg(x))[0], ref, rtol=1e-6)


# ------------------------------------------------------------------ conventions and naming
@pytest.mark.parametrize("arch", ["fcn_wang", "xresnet1d50", "inception1d", "lstm_bidir"])
def test_head_backbone_naming_and_layer_config(arch):
    m = built(arch, 71)
    assert [l.name for l in models.head_layers(m)] == HEAD_NAMES
    assert m.layers[-1].name == "head_logits" and m.get_layer("pool") is not None
    bb = models.backbone_layers(m)
    assert bb and not any(l.name.startswith(("head_", "pool")) for l in bb)
    assert {id(l) for l in bb} | {id(l) for l in models.head_layers(m)} >= {
        id(l) for l in m.layers if l.weights}
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.momentum == pytest.approx(0.9) and layer.epsilon == pytest.approx(1e-5)
        if isinstance(layer, keras.layers.Conv1D):
            assert not layer.use_bias
            init = layer.kernel_initializer
            assert isinstance(init, keras.initializers.VarianceScaling)
            assert (init.scale, init.mode, init.distribution) == (2.0, "fan_in", "untruncated_normal")
    groups = models.layer_groups(m)
    assert [l.name for l in groups[-1]] == HEAD_NAMES
    assert sum(len(g) for g in groups) == len(bb) + len(HEAD_NAMES)
    assert all(groups)


def test_kaiming_normal_statistics():
    w = keras.ops.convert_to_numpy(built("resnet1d_wang", 71).get_layer("stage1_block1_conv1").kernel)
    fan_in = w.shape[0] * w.shape[1]  # kernel_size * in_channels, as in PyTorch
    assert w.std() == pytest.approx(np.sqrt(2.0 / fan_in), rel=0.03)
    assert np.abs(w).max() > 2.5 * w.std()  # untruncated (Keras HeNormal truncates at 2 sd)


def test_logits_and_probabilities():
    m = built("fcn_wang", 5)
    x = np.random.default_rng(3).normal(size=(2, 250, 12)).astype("float32")
    logits = forward(m, x)
    probs = keras.ops.convert_to_numpy(models.with_sigmoid(m)(x, training=False))
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)
    m_act = models.get("fcn_wang", num_classes=5, classifier_activation="sigmoid")
    assert m_act.layers[-1].name == "head_activation"


# --------------------------------------------------------------- headless and new heads
@pytest.mark.parametrize("arch", ["xresnet1d18", "lstm"])
def test_include_top_false_returns_pooled_features(arch):
    m = models.get(arch, include_top=False)
    n_ch = 64 if arch == "xresnet1d18" else 256
    n_pool = 2 if arch == "xresnet1d18" else 3  # [max, avg] / [mean, max, last]
    assert tuple(m.outputs[0].shape) == (None, n_pool * n_ch)
    assert not models.head_layers(m) and m.layers[-1].name == "pool"
    assert tuple(models.get(arch, include_top=False, pooling="avg").outputs[0].shape) == (None, n_ch)
    seq = models.get(arch, include_top=False, pooling="sequence")
    assert len(seq.outputs[0].shape) == 3
    with pytest.raises(ValueError):
        models.get(arch, pooling="sequence")


@pytest.mark.parametrize("reinit", ["logits", "head"])
def test_replace_head_keeps_backbone(reinit):
    m = models.get("inception1d", num_classes=71)
    x = np.random.default_rng(4).normal(size=(2, 250, 12)).astype("float32")
    before = {l.name: [keras.ops.convert_to_numpy(w) for w in l.weights]
              for l in models.backbone_layers(m)}
    m5 = models.replace_head(m, 5, reinit=reinit)
    assert tuple(m5.outputs[0].shape) == (None, 5)
    assert n_trainable(m5) == PARAM_COUNTS["inception1d"][1]
    for layer in models.backbone_layers(m5):
        for w_old, w_new in zip(before[layer.name], layer.weights):
            np.testing.assert_array_equal(w_old, keras.ops.convert_to_numpy(w_new))
    kept = {l.name for l in models.head_layers(m5) if l.weights and l is m.get_layer(l.name)}
    assert kept == ({"head_bn1", "head_dense1", "head_bn2"} if reinit == "logits" else set())
    f_old = keras.ops.convert_to_numpy(models.backbone(m)(x, training=False))
    f_new = keras.ops.convert_to_numpy(models.backbone(m5)(x, training=False))
    np.testing.assert_array_equal(f_old, f_new)


def test_single_output_regression_head():
    m = models.get("fcn_wang", num_classes=1)
    assert tuple(m.outputs[0].shape) == (None, 1)
    m.compile(optimizer="adam", loss="mse", run_eagerly=True)
    loss = m.train_on_batch(np.random.default_rng(5).normal(size=(4, 250, 12)).astype("float32"),
                            np.full((4, 1), 60.0, "float32"))
    assert np.isfinite(loss)


# -------------------------------------------- one training step on real data + .keras round trip
def _train_step_and_round_trip(arch, windows, tmp_path):
    batch = 4 if arch in BIG else 8
    x = windows[:batch]
    y = (np.random.default_rng(6).random((batch, 5)) < 0.3).astype("float32")
    m = built(arch, 5)
    m.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-2, beta_2=0.99),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        run_eagerly=arch not in RNNS,  # eager is much faster than tracing one step of a CNN
    )
    loss = float(m.train_on_batch(x, y))
    assert np.isfinite(loss)
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in m.weights)
    path = tmp_path / f"{arch}.keras"
    m.save(path)
    loaded = keras.models.load_model(path)
    assert [l.name for l in loaded.layers] == [l.name for l in m.layers]
    a, b = forward(m, x), forward(loaded, x)
    assert np.isfinite(a).all()
    assert np.max(np.abs(a - b)) < 1e-6


@pytest.mark.shared_data
@pytest.mark.parametrize("arch", TRAIN_DEFAULT)
def test_train_step_and_keras_round_trip(arch, ludb_windows, tmp_path):
    _train_step_and_round_trip(arch, ludb_windows, tmp_path)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("arch", TRAIN_SLOW)
def test_train_step_and_keras_round_trip_all(arch, ludb_windows, tmp_path):
    _train_step_and_round_trip(arch, ludb_windows, tmp_path)


def _bn_pair(channels: int, rank: int = 3):
    """A Keras BatchNormalization and a FusedBatchNormalization with the same non-trivial weights."""
    pair = (keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
            layers.FusedBatchNormalization(momentum=0.9, epsilon=1e-5))
    for bn in pair:
        bn.build((None,) * (rank - 1) + (channels,))
        bn.gamma.assign(np.linspace(0.5, 2.0, channels))
        bn.beta.assign(np.linspace(-1.0, 1.0, channels))
        bn.moving_mean.assign(np.full(channels, 0.3))
        bn.moving_variance.assign(np.full(channels, 2.0))
    return pair


def test_fused_batch_norm_equals_keras_batch_norm():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(1.0, 3.0, (16, 50, 8)), tf.float32)

    def train_pass(bn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bn(x, training=True)
            loss = tf.reduce_sum(tf.sin(y))
        return [np.asarray(t) for t in [y, *tape.gradient(loss, [x, bn.gamma, bn.beta])]]

    plain, fused = _bn_pair(8)
    got, want = train_pass(fused), train_pass(plain)
    for g, w in zip(got, want):  # output, dx, dgamma, dbeta
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max())
    assert np.abs(got[0]).max() > 1.0  # not a trivial (all-zero) comparison
    # the moving statistics move (momentum 0.9) by the same biased batch variance as Keras's layer
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-6)
    assert abs(float(fused.moving_variance.numpy().mean()) - 2.0) > 0.1
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=2e-6)
    # rank-2 inputs (the head) take Keras's code path and give identical results
    plain2, fused2 = _bn_pair(8, rank=2)
    np.testing.assert_array_equal(fused2(x[:, 0], training=True), plain2(x[:, 0], training=True))


def test_models_use_fused_batch_norm_and_round_trip(tmp_path):
    model = models.get("resnet1d_wang", num_classes=5)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(isinstance(b, layers.FusedBatchNormalization) for b in bns)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer(bns[0].name)) is layers.FusedBatchNormalization


def test_pointwise_conv_trains_as_one_matmul_and_equals_conv1d(tmp_path):
    """Kernel-1 convolutions train through MatMul (not oneDNN's convolution) with Conv1D's results."""
    import tensorflow as tf

    inp = keras.Input((40, 6))
    pointwise = layers.conv1d(inp, 5, 1, name="pw")
    assert isinstance(pointwise._keras_history.operation, layers.PointwiseConv1D)
    for k, stride in ((5, 1), (1, 2)):  # other kernels and strides keep Keras's layer
        assert type(layers.conv1d(inp, 5, k, strides=stride, name=f"c{k}{stride}")._keras_history.operation) \
            is keras.layers.Conv1D
    pw = pointwise._keras_history.operation
    plain = keras.layers.Conv1D(5, 1, use_bias=False)
    plain.build((None, 40, 6))
    plain.kernel.assign(pw.kernel)
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 40, 6)), tf.float32)

    def train_pass(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x, training=True)))
        return [loss, *tape.gradient(loss, [x, layer.kernel])]

    for g, w in zip(train_pass(pw), train_pass(plain)):  # loss, dx, dkernel
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * float(tf.reduce_max(tf.abs(w))))
    ops = {op.type for op in tf.function(lambda t: pw(t, training=True)).get_concrete_function(x).graph
           .get_operations()}
    assert "MatMul" in ops and not ops & {"Conv2D", "Conv1D"}
    ops = {op.type for op in tf.function(lambda t: pw(t, training=False)).get_concrete_function(x).graph
           .get_operations()}
    assert "Conv2D" in ops and "MatMul" not in ops  # inference (and every export) keeps the convolution
    # bfloat16 compute (mixed precision) and a saved model keep the class
    mixed = layers.PointwiseConv1D(5, 1, dtype="mixed_bfloat16")
    assert mixed(x, training=True).dtype == tf.bfloat16
    model = models.get("xresnet1d50", num_classes=3)
    assert sum(isinstance(l, layers.PointwiseConv1D) for l in model.layers) == 2 * 16 + 1  # + stage 1's shortcut
    keras.Model(inp, pointwise).save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras").get_layer("pw")
    assert type(loaded) is layers.PointwiseConv1D
    np.testing.assert_array_equal(loaded(x), pw(x))


def test_builder_weights_are_none_or_an_existing_file(tmp_path):
    """keras.applications' check: anything but None or the path of an existing file is a ValueError."""
    for bad in ("ptbxl", str(tmp_path / "missing.weights.h5"), str(tmp_path), 1):
        with pytest.raises(ValueError, match=r"The `weights` argument should be either `None` \(random initialization\) "
                                             r"or the path to the weights file to be loaded\..*pretrained.*"
                                             r"Received: weights="):
            models.get("fcn_wang", num_classes=3, weights=bad)
    with pytest.raises(ValueError, match="Received: weights='ptbxl'"):
        models.fcn_wang(num_classes=3, weights="ptbxl")
    source = models.get("fcn_wang", num_classes=3)
    source.save_weights(tmp_path / "fcn.weights.h5")
    loaded = models.get("fcn_wang", num_classes=3, weights=tmp_path / "fcn.weights.h5")
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)

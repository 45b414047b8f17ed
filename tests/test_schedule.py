"""One-cycle schedule: closed-form values, fastai v1 equivalence, momentum callback, AdamW."""
import math

import keras
import numpy as np
import pytest

from ecg_keras.training.schedule import OneCycle, OneCycleMomentum, make_optimizer, one_cycle_values

LR = 1e-2


@pytest.mark.parametrize("total", [100, 1000, 4301])
def test_lr_and_momentum_at_0_30_and_100_percent(total):
    sched = OneCycle(LR, total)
    a1 = int(0.3 * total)
    expected = {0: (LR / 25, 0.95), a1: (LR, 0.85), total: (LR / 25e4, 0.95)}
    for step, (lr, mom) in expected.items():
        got_lr, got_mom = one_cycle_values(step, total, LR)
        assert got_lr == pytest.approx(lr, rel=1e-12)
        assert got_mom == pytest.approx(mom, rel=1e-12)
        assert float(sched(step)) == pytest.approx(lr, rel=1e-5)  # the Keras schedule, float32
        assert sched.momentum(step) == pytest.approx(mom, rel=1e-12)


def test_halfway_points_are_cosine_midpoints():
    total = 1000
    lr_mid_warm, mom_mid_warm = one_cycle_values(150, total, LR)
    assert lr_mid_warm == pytest.approx((LR / 25 + LR) / 2)
    assert mom_mid_warm == pytest.approx(0.90)
    lr_mid, mom_mid = one_cycle_values(300 + 350, total, LR)
    assert lr_mid == pytest.approx((LR + LR / 25e4) / 2)
    assert mom_mid == pytest.approx(0.90)


def _fastai_v1(n, lr_max, pct=0.3, div=25.0, moms=(0.95, 0.85)):
    """The values fastai v1's OneCycleScheduler sets before each of n batches (re-derived)."""
    def cos(start, end, p):
        return end + (start - end) / 2 * (math.cos(math.pi * p) + 1)

    a1 = int(n * pct)
    a2 = n - a1
    phases = [((lr_max / div, lr_max), moms, a1), ((lr_max, lr_max / div / 1e4), moms[::-1], a2)]
    out, idx, k = [(lr_max / div, moms[0])], 0, 0
    while len(out) < n:
        k += 1
        (l0, l1), (m0, m1), steps = phases[idx]
        out.append((cos(l0, l1, k / steps), cos(m0, m1, k / steps)))
        if k >= steps:
            idx, k = idx + 1, 0
    return np.array(out)


def test_every_step_matches_fastai_v1():
    n = 437
    ref = _fastai_v1(n, LR)
    sched = OneCycle(LR, n)
    ours = np.array([one_cycle_values(k, n, LR) for k in range(n)])
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    keras_lr = keras.ops.convert_to_numpy(sched(keras.ops.arange(n)))
    np.testing.assert_allclose(keras_lr, ref[:, 0], rtol=1e-5)


def test_schedule_serialises():
    sched = OneCycle(3e-3, 77, pct_start=0.25)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert isinstance(again, OneCycle)
    assert float(again(10)) == pytest.approx(float(sched(10)))


def test_momentum_callback_drives_adam_beta1_and_weight_decay_is_decoupled():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False)])
    total = 10
    opt, sched = make_optimizer(LR, total, weight_decay=0.1)
    model.compile(optimizer=opt, loss="mse")
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 1), np.float32)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.beta_1)))

    model.fit(x, y, batch_size=8, epochs=6, verbose=0, shuffle=False, callbacks=[OneCycleMomentum(sched), Spy()])
    np.testing.assert_allclose(seen, [sched.momentum(k) for k in range(6)], rtol=1e-6)
    assert int(keras.ops.convert_to_numpy(opt.iterations)) == 6
    # zero gradient => only the decoupled decay acts: w <- w * (1 - lr_k * wd) per step
    model2 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    opt2, sched2 = make_optimizer(LR, total, weight_decay=0.1)
    model2.compile(optimizer=opt2, loss=lambda yt, yp: 0.0 * keras.ops.sum(yp))
    model2.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False, callbacks=[OneCycleMomentum(sched2)])
    expected = np.prod([1 - sched2.values(k)[0] * 0.1 for k in range(3)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model2.weights[0]), expected, rtol=1e-5)

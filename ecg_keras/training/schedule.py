"""One-cycle policy with fastai v1 semantics (docs/PROTOCOL.md "Training").

For ``total_steps`` optimiser steps, ``a1 = int(total_steps * pct_start)`` warm-up steps and
``a2 = total_steps - a1`` annealing steps, the value used by step ``k`` (0-based, i.e. the
optimiser's ``iterations`` before the update) is

* ``k <= a1``: ``cos_anneal(lr_max / div_factor, lr_max, k / a1)``, momentum ``cos_anneal(0.95, 0.85, k / a1)``
* ``k >  a1``: ``cos_anneal(lr_max, lr_max / (div_factor * final_div), (k - a1) / a2)``,
  momentum ``cos_anneal(0.85, 0.95, (k - a1) / a2)``

with ``cos_anneal(start, end, p) = end + (start - end) / 2 * (1 + cos(pi * p))``, exactly what
fastai v1's ``OneCycleScheduler`` sets before each batch. The learning rate is a Keras
``LearningRateSchedule`` (a pure function of ``optimizer.iterations``, so it resumes for free);
Adam's beta_1 is a variable that :class:`OneCycleMomentum` sets before every batch.
"""
from __future__ import annotations

import math

import keras
from keras import ops

from ecg_keras.training.config import RNN_ARCHS  # noqa: F401  (re-export)


def cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def _phases(total_steps: int, pct_start: float) -> tuple[int, int]:
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    a1 = int(total_steps * pct_start)
    return a1, total_steps - a1


def one_cycle_values(step: int, total_steps: int, lr_max: float, *, pct_start: float = 0.3,
                     div_factor: float = 25.0, final_div: float = 1e4,
                     moms: tuple[float, float] = (0.95, 0.85)) -> tuple[float, float]:
    """Closed-form (learning rate, beta_1) used by optimiser step ``step`` (plain Python floats)."""
    a1, a2 = _phases(total_steps, pct_start)
    lr_start = lr_max / div_factor
    if a1 > 0 and step <= a1:
        p = step / a1
        return cos_anneal(lr_start, lr_max, p), cos_anneal(moms[0], moms[1], p)
    p = min(max(step - a1, 0) / a2, 1.0)
    return cos_anneal(lr_max, lr_start / final_div, p), cos_anneal(moms[1], moms[0], p)


@keras.saving.register_keras_serializable(package="ecg_keras")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """fastai-v1 one-cycle learning rate as a Keras schedule (see module docstring)."""

    def __init__(self, lr_max: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div: float = 1e4, moms: tuple[float, float] = (0.95, 0.85)):
        self.lr_max = float(lr_max)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div = float(final_div)
        self.moms = (float(moms[0]), float(moms[1]))
        self.warmup_steps, self.anneal_steps = _phases(self.total_steps, self.pct_start)

    def _anneal(self, step, start_end_1, start_end_2):
        step = ops.cast(step, "float32")
        a1, a2 = float(self.warmup_steps), float(self.anneal_steps)
        p1 = ops.clip(step / max(a1, 1.0), 0.0, 1.0)
        p2 = ops.clip((step - a1) / a2, 0.0, 1.0)

        def cos(start, end, p):  # (1 + cos(pi p)) / 2 = cos(pi p / 2)^2, no cancellation in float32
            return end + (start - end) * ops.square(ops.cos((math.pi / 2.0) * p))

        warm = cos(*start_end_1, p1)
        anneal = cos(*start_end_2, p2)
        return ops.where(ops.logical_and(step <= a1, a1 > 0), warm, anneal)

    def __call__(self, step):
        lr_start = self.lr_max / self.div_factor
        return self._anneal(step, (lr_start, self.lr_max), (self.lr_max, lr_start / self.final_div))

    def momentum(self, step: int) -> float:
        """beta_1 for optimiser step ``step`` (Python float, used by :class:`OneCycleMomentum`)."""
        return self.values(step)[1]

    def values(self, step: int) -> tuple[float, float]:
        return one_cycle_values(step, self.total_steps, self.lr_max, pct_start=self.pct_start,
                                div_factor=self.div_factor, final_div=self.final_div, moms=self.moms)

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div_factor": self.div_factor, "final_div": self.final_div, "moms": list(self.moms)}


class OneCycleMomentum(keras.callbacks.Callback):
    """Set Adam's beta_1 before every training batch from the optimiser's step count.

    The optimiser's ``beta_1`` must be a variable (see :func:`make_optimizer`): a Python float
    would be baked into the compiled train step and never change.
    """

    def __init__(self, schedule: OneCycle):
        super().__init__()
        self.schedule = schedule
        self._step = 0

    def on_train_begin(self, logs=None):
        opt = self._optimizer()
        if not isinstance(opt.beta_1, keras.Variable):
            raise TypeError("optimizer.beta_1 must be a keras.Variable; build it with make_optimizer()")
        self._step = int(ops.convert_to_numpy(opt.iterations))

    def _optimizer(self):  # the AdamW itself, also under a LossScaleOptimizer (mixed_float16)
        opt = self.model.optimizer
        return getattr(opt, "inner_optimizer", opt)

    def on_train_batch_begin(self, batch, logs=None):
        self._optimizer().beta_1.assign(self.schedule.momentum(self._step))
        self._step += 1


@keras.saving.register_keras_serializable(package="ecg_keras")
class OneCycleAdamW(keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with the per-step scalars computed once per step, not per variable.

    Keras evaluates the learning-rate schedule once per variable for the decoupled weight decay
    and recomputes ``beta_1 ** t``, ``beta_2 ** t`` and Adam's step size in every variable's
    update: with the one-cycle schedule that is ~40 scalar ops per variable, which made the first
    (tracing) train step of xresnet1d101 take ~65 s instead of ~42 s on a 2-core CPU and added
    hundreds of tiny ops to every step (docs/RESULTS.md).
    Here they are computed once at the start of :meth:`apply` (same float32 arithmetic, hence
    identical updates); everything else is Keras's AdamW. Under a multi-replica strategy
    (replica threads share the optimiser) the stock per-variable path is used.
    """

    _step_scalars = None

    def _backend_apply_gradients(self, grads, trainable_variables):
        if self.gradient_accumulation_steps or self.amsgrad or _multi_replica():
            return super()._backend_apply_gradients(grads, trainable_variables)
        lr = super()._get_current_learning_rate()
        local_step = ops.cast(self.iterations + 1, "float32")
        beta_1_power = ops.power(ops.cast(self.beta_1, "float32"), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, "float32"), local_step)
        lr32 = ops.cast(lr, "float32")
        # Exactly Keras's expressions and operand types (``1 - self.beta_2`` stays a Python float).
        self._step_scalars = {"lr": lr, "lr32": lr32, "alpha": lr32 * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power),
                              "one_minus_beta_1": 1 - self.beta_1, "one_minus_beta_2": 1 - self.beta_2,
                              "wd": None if self.weight_decay is None else ops.cast(self.weight_decay, "float32")}
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self._step_scalars = None

    def _get_current_learning_rate(self):
        if self._step_scalars is not None:
            return self._step_scalars["lr"]
        return super()._get_current_learning_rate()

    def _apply_weight_decay(self, variables):
        cached = self._step_scalars
        if cached is None or self.weight_decay is None:
            return super()._apply_weight_decay(variables)
        for variable in variables:
            if self._use_weight_decay(variable) and variable.dtype == "float32":
                variable.assign_sub(variable * cached["wd"] * cached["lr32"])
            elif self._use_weight_decay(variable):
                lr = ops.cast(cached["lr"], variable.dtype)
                variable.assign_sub(variable * ops.cast(self.weight_decay, variable.dtype) * lr)

    def update_step(self, gradient, variable, learning_rate):
        cached = self._step_scalars
        if cached is None or variable.dtype != "float32":
            return super().update_step(gradient, variable, learning_rate)
        gradient = ops.cast(gradient, variable.dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), cached["one_minus_beta_1"]))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), cached["one_minus_beta_2"]))
        self.assign_sub(variable, ops.divide(ops.multiply(m, cached["alpha"]), ops.add(ops.sqrt(v), self.epsilon)))


def _multi_replica() -> bool:
    import tensorflow as tf

    return tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1


@keras.saving.register_keras_serializable(package="ecg_keras")
class DiscriminativeAdamW(OneCycleAdamW):
    """:class:`OneCycleAdamW` with a learning-rate factor per variable (fastai's discriminative
    learning rates): variable ``v`` is updated with ``lr(step) * multipliers[id(v)]`` and decayed by
    ``weight_decay * lr(step) * multipliers[id(v)]``; unlisted variables get ``default_multiplier``.
    With every factor 1 it is exactly :class:`OneCycleAdamW` (and so Keras's AdamW)."""

    def __init__(self, learning_rate=0.001, multipliers: dict | None = None, default_multiplier: float = 1.0,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._multiplier_by_id = dict(multipliers or {})
        self.default_multiplier = float(default_multiplier)
        self.variable_multipliers: list[float] = []

    def build(self, var_list):
        super().build(var_list)
        self.variable_multipliers = [float(self._multiplier_by_id.get(id(v), self.default_multiplier))
                                     for v in var_list]

    def _factor(self, variable) -> float:
        return self.variable_multipliers[self._get_variable_index(variable)]

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                lr = ops.cast(self._get_current_learning_rate(), variable.dtype)
                wd = ops.cast(self.weight_decay, variable.dtype)
                variable.assign_sub(variable * wd * lr * self._factor(variable))

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factor(variable)
        cached = self._step_scalars
        if cached is None or variable.dtype != "float32":
            return super().update_step(gradient, variable, ops.cast(learning_rate, variable.dtype) * factor)
        scaled = {**cached, "alpha": cached["alpha"] * factor}
        self._step_scalars = scaled
        try:
            super().update_step(gradient, variable, learning_rate)
        finally:
            self._step_scalars = cached

    def get_config(self):
        return {**super().get_config(), "default_multiplier": self.default_multiplier}


def make_optimizer(lr_max: float, total_steps: int, *, weight_decay: float = 1e-2, beta_2: float = 0.99,
                   epsilon: float = 1e-8, global_clipnorm: float | None = None, pct_start: float = 0.3,
                   div_factor: float = 25.0, final_div: float = 1e4, moms: tuple[float, float] = (0.95, 0.85),
                   multipliers: dict | None = None) -> tuple["OneCycleAdamW", OneCycle]:
    """AdamW (decoupled weight decay, scaled by the lr as in fastai/PyTorch) on a one-cycle schedule.

    Call inside the distribution strategy's scope. Returns the optimiser and its schedule; pass
    ``OneCycleMomentum(schedule)`` to ``fit``. ``global_clipnorm`` clips the global gradient norm
    (PyTorch ``clip_grad_norm_``), 0.25 for the RNNs. ``multipliers`` (``{id(variable): factor}``,
    also ``{}``) gives a :class:`DiscriminativeAdamW` (finetuning's per-layer-group learning rates).
    """
    schedule = OneCycle(lr_max, total_steps, pct_start=pct_start, div_factor=div_factor,
                        final_div=final_div, moms=moms)
    kwargs = dict(learning_rate=schedule, weight_decay=weight_decay, beta_1=moms[0], beta_2=beta_2, epsilon=epsilon,
                  global_clipnorm=global_clipnorm)
    opt = DiscriminativeAdamW(multipliers=multipliers, **kwargs) if multipliers is not None else OneCycleAdamW(**kwargs)
    opt.beta_1 = keras.Variable(schedule.momentum(0), trainable=False, dtype="float32", name="beta_1")
    return opt, schedule


def optimizer_for(config, lr_max: float, total_steps: int, multipliers: dict | None = None):
    """:func:`make_optimizer` with the hyper-parameters of a TrainConfig (the one place that maps them)."""
    return make_optimizer(lr_max, total_steps, weight_decay=config.wd, beta_2=config.beta_2, epsilon=config.epsilon,
                          global_clipnorm=config.clipnorm, pct_start=config.pct_start, div_factor=config.div_factor,
                          final_div=config.final_div, moms=tuple(config.moms), multipliers=multipliers)

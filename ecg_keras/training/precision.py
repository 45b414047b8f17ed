"""``--precision float32 | mixed_float16 | mixed_bfloat16``: Keras mixed-precision policies for training.

Under a mixed policy layers compute in float16 / bfloat16 and keep float32 variables; the output
layer (``head_logits``) computes in float32 (:func:`ecg_keras.models.layers.output_dtype`), so the
logits, the loss and every probability stay float32. ``mixed_float16`` needs loss scaling:
``model.compile`` wraps the optimiser in ``keras.optimizers.LossScaleOptimizer`` (dynamic loss
scale); use :func:`inner_optimizer` to reach the AdamW underneath (its ``beta_1``, its step count).

The policy applies while the training model is built; the final ``model.keras`` of a run, its
predictions and every export are built in float32 from the trained (float32) variables, so
exported signatures take and return float32 whatever ``--precision`` trained them.
bfloat16 and float16 speed on this project's CPU: docs/RESULTS.md ("Mixed precision"); per
architecture (mixed_bfloat16 is the faster training path on avx512_bf16 CPUs for every benchmarked
model but xresnet1d101, the default stays float32): docs/RESULTS.md section 10.
"""
from __future__ import annotations

from contextlib import contextmanager

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@contextmanager
def policy(name: str = "float32"):
    """Set Keras's global dtype policy to ``name`` for the block (restored afterwards)."""
    import keras

    if name not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def inner_optimizer(optimizer):
    """The optimiser itself, or the one a ``LossScaleOptimizer`` wraps."""
    return getattr(optimizer, "inner_optimizer", optimizer)

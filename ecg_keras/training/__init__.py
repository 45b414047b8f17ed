"""Training: one-cycle AdamW with ``model.fit``, per-epoch checkpoints, resume, tf.distribute.

    >>> from ecg_keras.training import TrainConfig, train
    >>> run_dir = train(TrainConfig(task="rhythm", dataset="synthetic", arch="resnet1d_wang", epochs=5))

``finetune`` and ``sweep`` are functions too; their modules are :mod:`ecg_keras.training.transfer`
and :mod:`ecg_keras.training.sweeps` (no submodule shares a public function's name, so importing
one never shadows the function).

The run directory layout is documented in :mod:`ecg_keras.training.rundir`. TensorFlow is
imported lazily, so ``ecg-keras train --help`` stays fast.
"""
from ecg_keras.training.config import TASKS, TrainConfig

_LAZY = {
    "train": "loop", "make_strategy": "distribute", "set_seed": "lifecycle",
    "RunDir": "rundir", "OneCycle": "schedule", "OneCycleMomentum": "schedule", "make_optimizer": "schedule",
    "optimizer_for": "schedule", "OneCycleAdamW": "schedule", "DiscriminativeAdamW": "schedule",
    "one_cycle_values": "schedule", "run_experiment": "experiment",
    "finetune": "transfer", "sweep": "sweeps",
}

__all__ = ["TASKS", "TrainConfig", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"ecg_keras.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ecg_keras.training' has no attribute {name!r}")

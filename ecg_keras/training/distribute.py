"""tf.distribute for training: the strategy, who writes, input sharding, and a Keras 3 fix.

``--distribute none | mirrored | multiworker`` (docs/DISTRIBUTED.md). With ``multiworker``
every worker runs the same ``ecg-keras train`` command with its own ``$TF_CONFIG``; all workers
train in lockstep (gradients are all-reduced every step, so their weights stay identical)
and only the chief writes the run directory.

Why ``model.fit`` failed under ``MultiWorkerMirroredStrategy`` (Keras 3.15, TF 2.21): before
the first epoch, ``TensorFlowTrainer._maybe_symbolic_build`` takes one input batch and calls
``strategy.reduce("MEAN", (x, y), axis=None)`` on it, only to read its shapes and dtypes.
``MirroredStrategy`` returns a nested structure unchanged, but ``MultiWorkerMirroredStrategy``
with more than one worker hands the whole ``(x, y)`` tuple of ``PerReplica`` values to its
cross-device all-reduce, which accepts one value only: "Attempt to convert a value
(PerReplica...) ... to a Tensor". :func:`prepare_fit` replaces that step on the model with
one that reads the first local replica's batch (same shapes and dtypes, no communication).
The next failure is in every train step: the scalar logs (``loss``) are averaged over the
replicas with ``strategy.reduce("MEAN", v, axis=0)``, which is invalid for a scalar ("Invalid
reduction dimension 0 for input with 0 dimensions"); :func:`prepare_fit` routes that case to
``strategy.reduce("MEAN", v, axis=None)``, the mean over replicas that ``MirroredStrategy``
computes on one machine.

Under every strategy with several replicas, Keras 3 scales each replica's mean loss by
``1 / replicas`` before the gradients are summed over the replicas: the replicas' means weigh
equally, so a global batch split unevenly (the last one of an epoch: 15 windows = 8 + 7) gives
another gradient than one device on the same batch. :func:`prepare_fit` scales each replica's
loss by its share of the global batch instead (``sum / global batch``, what
``tf.nn.compute_average_loss`` computes), which is one device's mean.
"""
from __future__ import annotations

import os
import sys
import types

import keras
import numpy as np
import tensorflow as tf

_MULTIWORKER: list = []  # one MultiWorkerMirroredStrategy per process (sweeps train many runs)


def make_strategy(kind: str = "none") -> tf.distribute.Strategy:
    """``none`` (default strategy), ``mirrored`` (all local GPUs, else all logical CPUs) or
    ``multiworker`` (``MultiWorkerMirroredStrategy`` configured by $TF_CONFIG, created once per
    process: the cluster's collectives are configured once)."""
    if kind in (None, "none"):
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            print("warning: --distribute multiworker without $TF_CONFIG trains on this worker only", file=sys.stderr)
        if not _MULTIWORKER:
            _MULTIWORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        return _MULTIWORKER[0]
    raise ValueError(f"unknown distribution {kind!r}")


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Processes that train together (1 unless a multi-worker cluster)."""
    if not is_multiworker(strategy):
        return 1
    return int(getattr(strategy.extended, "_num_workers", 1))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The process that writes: the ``chief`` task, else worker 0 (the TF convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multiworker(strategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def task_name(strategy: tf.distribute.Strategy) -> str:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multiworker(strategy) or resolver.task_type is None:
        return "local"
    return f"{resolver.task_type}:{resolver.task_id}"


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Every worker builds the same batches and keeps its slice of each global batch
    (``AutoShardPolicy.DATA``; the datasets are in-memory tensors, there are no files to shard).
    Training: the global batch is split across replicas. ``model.predict``: Keras gathers the
    slices from all workers back in order, so every worker gets every window's prediction."""
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(opts)


def worker_datasets(strategy: tf.distribute.Strategy, make):
    """The training input under ``strategy``: ``make(shard=(workers, index))`` builds a worker's
    part of every global batch.

    With several workers of one replica each, every worker builds and reads only its own part
    (``distribute_datasets_from_function``: the workers read disjoint windows, none reads the whole
    data), a contiguous slice of each global batch. Otherwise (one process, or several replicas
    per worker) every process builds the global batches, sharded by data (:func:`shard_by_data`)."""
    workers = num_workers(strategy)
    if workers < 2 or strategy.num_replicas_in_sync != workers:
        return shard_by_data(make(shard=(1, 0)))
    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(
        lambda ctx: make(shard=(ctx.num_input_pipelines, ctx.input_pipeline_id)), options)


def prepare_fit(model, strategy: tf.distribute.Strategy):
    """Make ``model.fit`` weigh replicas by their batch sizes and ``model.fit``/``predict`` work
    under ``MultiWorkerMirroredStrategy`` (see module docstring).

    A no-op with one replica; the multi-worker part is skipped for other strategies and for
    Keras versions without ``_maybe_symbolic_build``.
    """
    if strategy.num_replicas_in_sync > 1:
        _weigh_replicas_by_batch(model)
    if not is_multiworker(strategy) or not hasattr(model, "_maybe_symbolic_build"):
        return model

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, batch)
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    object.__setattr__(model, "_maybe_symbolic_build", types.MethodType(_maybe_symbolic_build, model))
    _patch_reduce_per_replica()
    return model


def _weigh_replicas_by_batch(model) -> None:
    """Keras 3's ``train_step`` with each replica's loss weighted by its share of the global batch.

    Keras scales a replica's mean loss by ``1 / replicas`` and sums the replicas' gradients; the
    loss here is rescaled by ``replicas * local batch / global batch`` (exactly 1 when the batch
    splits evenly), so the summed gradient is that of the mean over the global batch. The loss
    tracker is updated as Keras does (its weighted mean over replicas is already right).
    """
    if not hasattr(model, "_loss_tracker"):  # another Keras layout: leave Keras's step alone
        return

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        local = tf.cast(tf.shape(next(i for i in tf.nest.flatten(x) if i is not None))[0], tf.float32)
        context = tf.distribute.get_replica_context()
        share = context.num_replicas_in_sync * local / context.all_reduce(tf.distribute.ReduceOp.SUM, local)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            self._loss_tracker.update_state(loss * context.num_replicas_in_sync, sample_weight=local)
            loss = self.optimizer.scale_loss(loss * tf.cast(share, loss.dtype))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    object.__setattr__(model, "train_step", types.MethodType(train_step, model))


def _patch_reduce_per_replica() -> None:
    """Keras's ``reduce_per_replica`` with the multi-worker ``mean`` of scalar logs fixed (it
    raises for every scalar today); every other case goes to Keras's own code. Idempotent."""
    try:
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:  # another Keras layout: nothing to patch
        return
    original = getattr(tf_trainer, "reduce_per_replica", None)
    if original is None or getattr(original, "_ecg_keras_fixed", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multiworker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._ecg_keras_fixed = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def all_agree(strategy: tf.distribute.Strategy, values) -> bool:
    """True when every worker passed bitwise-identical ``values`` (a float vector). A collective:
    every worker must call it at the same point; it doubles as a barrier. True without workers."""
    if num_workers(strategy) < 2:
        return True
    x = tf.constant(np.asarray(values, np.float64).ravel())

    @tf.function
    def gather(v):
        return tf.distribute.get_replica_context().all_gather(v[None], axis=0)

    rows = np.asarray(strategy.experimental_local_results(strategy.run(gather, args=(x,)))[0])
    return bool((rows == rows[:1]).all())


def synchronize_batchnorm(model) -> None:
    """BatchNorm statistics over the global batch (= one device on the global batch), and the
    same moving statistics on every replica."""
    import keras

    def walk(layer):
        for sub in getattr(layer, "layers", []):
            yield sub
            yield from walk(sub)

    for layer in walk(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


def weights_fingerprint(variables) -> np.ndarray:
    """Per-variable sums and sums of squares (float64) of ``variables``: equal on every worker
    when the weights are (the same computation on identical arrays)."""
    out = []
    for v in variables:
        a = np.asarray(keras.ops.convert_to_numpy(v), np.float64).ravel()
        out += [a.sum(), np.square(a).sum()]
    return np.asarray(out, np.float64)

"""``train(config) -> run dir``: one-cycle AdamW training with ``model.fit``, per-epoch
checkpoints, exact resume and optional tf.distribute: one phase of the run lifecycle
(:mod:`ecg_keras.training.lifecycle`)."""
from __future__ import annotations

from pathlib import Path

from ecg_keras.datasets.base import Splits
from ecg_keras.standardize import Standardizer
from ecg_keras.training import distribute as dist
from ecg_keras.training import lifecycle
from ecg_keras.training import rundir as rd
from ecg_keras.training.config import TrainConfig


def train(config: TrainConfig, splits: Splits | None = None, *, data_path: str | None = None, download: bool = False,
          log=print) -> Path:
    """Train ``config`` and return the run directory (see :mod:`ecg_keras.training.rundir`).

    ``splits`` overrides the data named by ``config.dataset`` (programmatic use, tests;
    ``data_path`` then names where they came from, for config.json). With
    ``config.resume`` the stored config.json of ``config.output`` is used and training
    continues after the newest checkpoint; a complete run is returned unchanged.
    """
    config = config.resolved()
    strategy = dist.make_strategy(config.distribute)
    chief = dist.is_chief(strategy)  # with several workers only the chief writes the run directory
    run = rd.RunDir(config.output)
    if config.resume:
        stored = _stored_config(run)
        if run.is_complete():
            log(f"{run.path} is already complete; nothing to resume.")
            return run.path
        config = TrainConfig.from_dict({**stored.to_dict(), "resume": True, "verbose": config.verbose,
                                        "distribute": config.distribute, "output": config.output,
                                        "data_dir": config.data_dir or stored.data_dir,
                                        "cache_dir": config.cache_dir}).resolved()
    elif not run.is_empty():
        raise FileExistsError(f"{run.path} already holds a run; pass --resume to continue it or choose another --output")

    lifecycle.set_seed(config.seed, config.deterministic)
    ckpt = run.latest_checkpoint() if config.resume else None  # every worker reads the chief's (shared) one
    # Every worker has read the run directory before the chief writes to it, and all agree where to start.
    if not dist.all_agree(strategy, [float(ckpt["epoch"]) if ckpt else -1.0]):
        raise RuntimeError(f"the workers see different checkpoints in {run.path}; --output must be one shared "
                           "directory (see docs/DISTRIBUTED.md)")
    with lifecycle.claimed(run, chief, resume=config.resume, log=log):
        synthetic = config.dataset == "synthetic"
        if splits is None:
            from ecg_keras.training.data import load_splits

            splits, records, root = load_splits(config, download=download, log=log)
            data_path, synthetic = str(root), synthetic or bool(getattr(records, "synthetic", False))
        if synthetic and config.verbose:
            log("=" * 78 + "\n  SYNTHETIC DATA: a generated PTB-XL-like demo set, not real ECGs. Results say nothing\n"
                "  about clinical performance.\n" + "=" * 78)
        start = lifecycle.Start(config, run, strategy, chief, splits, Standardizer.fit(splits.train.signals),
                                synthetic=synthetic, data_path=data_path, checkpoint=ckpt, resuming=config.resume)
        model = lifecycle.build(start, lambda n_outputs, shape: lifecycle.build_model(config, n_outputs, shape))
        phases = [lifecycle.Phase(epochs=config.epochs, lr=config.lr)]
        train_td = splits.train
        description = (
            f"{config.arch} on {config.dataset}/{config.task}: {len(train_td)} train / {len(splits.val)} val / "
            f"{len(splits.test)} test records, {len(train_td.classes)} outputs, {config.window_seconds:g}-s windows, "
            f"{config.epochs} epochs x "
            f"{start.steps_per_epoch} steps, lr {config.lr:g}, {strategy.num_replicas_in_sync} replica(s), "
            f"XLA {'on' if config.jit else 'off'}")
        return lifecycle.run_phases(start, model, phases, info=lifecycle.run_info(start, model, phases),
                                    description=description, log=log)


def _stored_config(run: rd.RunDir) -> TrainConfig:
    """The TrainConfig of the run in ``run`` (for --resume); a clear error if there is none."""
    if not run.path.exists():
        raise FileNotFoundError(f"--resume: {run.path} does not exist; drop --resume to start a new run there")
    if not run.config.exists():
        raise FileNotFoundError(f"--resume: {run.path} holds no run (no config.json); drop --resume to start one")
    try:
        stored = run.read_config()
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"--resume: {run.config} is not a training run's config ({err})") from None
    missing = [k for k in ("arch", "task", "dataset", "data_fingerprint") if not isinstance(stored, dict) or k not in stored]
    if missing:
        raise ValueError(f"--resume: {run.config} is not an ecg_keras training run's config (no "
                         f"{', '.join(missing)}); choose another --output")
    return TrainConfig.from_dict(stored)

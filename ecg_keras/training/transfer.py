"""Transfer learning: ``finetune(config, init_from) -> run dir`` (docs/PROTOCOL.md "Training", finetuning).

    >>> from ecg_keras.training import TrainConfig
    >>> from ecg_keras.training import finetune
    >>> run = finetune(TrainConfig(task="all", dataset="icbeb2018"), "runs/ptbxl-all-xresnet1d101-seed0")

What the reference (fastai v1, ``fastai_model.fit`` with a pretrained folder) does, and this port:

1. The source model's output layer is replaced by a freshly initialised one for the new classes
   (``models.replace_head(..., reinit="logits")``; hidden head layers keep their weights). The
   SOURCE standardiser is reused; no standardiser is fitted on the new data.
2. Phase 1 (``phase_epochs[0]``, default 30): gradual unfreezing step one, ``learn.freeze()`` —
   only the last layer group (the head) trains, one-cycle at ``lr``. As in the reference
   (``learn.train_bn = True``), BatchNorm layers of the frozen backbone stay trainable (their
   scale/shift train and their running statistics follow the new data); ``train_bn=False``
   freezes them as well. Every other backbone weight is unchanged after phase 1.
3. Phase 2 (``phase_epochs[1]``, default 30): ``learn.unfreeze()``, one-cycle with discriminative
   learning rates ``slice(lr/1000, lr/10)``: fastai's ``even_mults`` gives layer group ``i`` of
   ``n`` (``models.layer_groups``: backbone groups, then the head) the maximum learning rate
   ``lr/1000 * 100 ** (i / (n - 1))``, i.e. backbone ``lr/1000`` ... head ``lr/10``. A fresh
   optimiser starts each phase (fastai's ``freeze_to`` calls ``create_opt``).

Per-group learning rates in Keras 3: :class:`DiscriminativeAdamW` is Adam with decoupled weight
decay whose ``update_step`` multiplies the scheduled learning rate by a per-variable factor
(scaling gradients would not work: Adam's update is invariant to the gradient scale). Weight
decay uses the group's learning rate too (fastai ``true_wd``: ``p *= 1 - wd * lr_group``). One
one-cycle schedule drives all groups (fastai scales every group's schedule by the same
factor), with its ``lr_max`` = the head's learning rate, so ``history.csv``'s ``lr`` column is the
head's.

``init_from`` is a training run directory (``model.keras``, ``standardizer.json``,
``classes.json``, ``config.json``), a release directory or the name of a released model in the
manifest, read by :func:`ecg_keras.runs.resolve`. The finetuned run directory has the layout of
:func:`train`'s (:mod:`ecg_keras.training.rundir`) plus ``config.json["init_from"]`` and ``["finetune"]`` and a
``phase`` column in ``history.csv``. Finetuning runs are not resumable: ``resume=True`` returns a
complete run unchanged and restarts an unfinished one. ``--distribute mirrored | multiworker``
works as for :func:`loop.train` (the chief alone writes; docs/DISTRIBUTED.md); ``--precision``
other than float32 is not supported here (the source model's layers are stored in float32).

Command line (``ecg-keras train``; options in :mod:`ecg_keras.cli.train`)::

    ecg-keras train --task all --dataset icbeb2018 --init-from runs/ptbxl-all-xresnet1d101-seed0
    ecg-keras train --task rhythm --dataset ../shared/data/ludb-1.0.1 --init-from RUN --phase-epochs 15,15
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ecg_keras import tasks
from ecg_keras.datasets.base import DataError, Splits, TaskData
from ecg_keras.runs import Run, RunError, resolve
from ecg_keras.training.config import TrainConfig

#: Epochs of phase 1 (head only) and phase 2 (all layers), docs/PROTOCOL.md.
PHASE_EPOCHS = (30, 30)
#: Discriminative learning rates of phase 2: ``slice(lr / 1000, lr / 10)``.
BACKBONE_DIV, HEAD_DIV = 1000.0, 10.0

#: LUDB rhythm classes for transfer experiments: merges and drops so that every kept class has
#: enough records to be scored by AUC on a 20-40 record evaluation set (see ``ludb_rhythm_task``).
LUDB_RHYTHM_MERGE = {"Atrial flutter, typical": "Atrial fibrillation/flutter",
                     "Atrial fibrillation": "Atrial fibrillation/flutter",
                     "Irregular sinus rhythm": "Sinus arrhythmia"}
LUDB_RHYTHM_DROP = ("Sinus tachycardia", "Wandering atrial pacemaker", "Aberrant conduction")


# --------------------------------------------------------------------------- learning rates
def discriminative_lrs(lr: float, n_groups: int, low_div: float = BACKBONE_DIV,
                       high_div: float = HEAD_DIV) -> list[float]:
    """fastai v1 ``lr_range(slice(lr/low_div, lr/high_div))`` = ``even_mults``: a geometric
    progression from the first layer group to the head (``[lr/1000, lr/100, lr/10]`` for 3)."""
    lo, hi = lr / low_div, lr / high_div
    if n_groups == 1:
        return [hi]
    step = (hi / lo) ** (1.0 / (n_groups - 1))
    return [lo * step ** i for i in range(n_groups)]


def group_multipliers(groups: Sequence[Sequence], factors: Sequence[float]) -> dict:
    """``{id(variable): factor}`` for every variable of every layer of each group."""
    if len(groups) != len(factors):
        raise ValueError(f"{len(groups)} layer groups but {len(factors)} factors")
    out = {}
    for group, factor in zip(groups, factors):
        for layer in group:
            for v in layer.weights:
                out[id(v)] = float(factor)
    return out


def set_phase_trainable(model, groups: Sequence[Sequence], phase: int, train_bn: bool = True) -> None:
    """Phase 1: only the head (last group) trains (+ backbone BatchNorm with ``train_bn``); phase 2: all."""
    import keras

    for layer in model.layers:
        layer.trainable = True
    if phase == 1:
        for group in groups[:-1]:
            for layer in group:
                if not (train_bn and isinstance(layer, keras.layers.BatchNormalization)):
                    layer.trainable = False


# --------------------------------------------------------------------------- source models
def source_description(source: Run) -> dict:
    """What ``config.json["finetune"]["source"]`` records of the ``init_from`` model."""
    cfg = source.config
    if source.release:
        return {"type": "release", "name": source.name, "arch": source.arch, "task": cfg.get("task"),
                "training_data": source.release["training_data"], "sha256": source.release.get("sha256")}
    return {"type": "run", "path": str(source.path.resolve()), "arch": source.arch, "task": cfg.get("task"),
            "dataset": cfg.get("dataset"), "synthetic": bool(cfg.get("synthetic", False)),
            "init_from": cfg.get("init_from")}


# --------------------------------------------------------------------------- data
def is_ludb(dataset: str) -> bool:
    p = Path(str(dataset)).expanduser()
    if str(dataset).lower() == "ludb":
        return True
    from ecg_keras.datasets import detect

    return p.is_dir() and detect(p) == "ludb"


def ludb_rhythm_task(root, sampling_rate: int = 100, merge: dict | None = None,
                     drop: Sequence[str] | None = None, seed: int = 0, log=None) -> TaskData:
    """LUDB's rhythm task for transfer experiments, with rare classes merged or dropped.

    Defaults: atrial flutter joins atrial fibrillation ("Atrial fibrillation/flutter", 15 + 3),
    irregular sinus rhythm joins sinus arrhythmia (8 + 2); sinus tachycardia (4 records),
    wandering atrial pacemaker (3, always with another rhythm) and aberrant conduction (1) are
    dropped — too rare to have positives in a 20-40 record test set. Records left without a
    label (the 4 sinus tachycardia records) are dropped, leaving 196 records and 4 classes.
    Folds: 10 deterministic folds, iteratively stratified on the final labels
    (``tasks.stratified_folds``, ``seed``); train 1-8, validation 9, test 10. ``log`` (e.g. print)
    is told what was merged and dropped, with counts.
    """
    from ecg_keras.datasets.tasks import make_task, stratified_folds
    from ecg_keras.datasets.wfdb_folder import load_ludb

    merge = LUDB_RHYTHM_MERGE if merge is None else merge
    drop = set(LUDB_RHYTHM_DROP if drop is None else drop)
    records = load_ludb(root, sampling_rate=sampling_rate)
    original = list(records.meta["labels"])
    labels = [sorted({merge.get(c, c) for c in x if c not in drop and merge.get(c, c) not in drop})
              for x in records.meta["labels"]]
    meta = records.meta.copy()
    meta["labels"] = labels
    meta["strat_fold"] = stratified_folds(labels, n_folds=10, seed=seed)
    records = dataclasses.replace(records, meta=meta)
    (ludb_task,) = tasks.label_tasks(records.name)
    task = make_task(records, ludb_task)
    if log is not None:
        from collections import Counter

        counts = Counter(c for x in original for c in x)
        merged = sorted(f"{c} ({counts[c]}) -> {merge[c]}" for c in counts if c in merge and c not in drop)
        dropped = sorted(f"{c} ({counts[c]})" for c in counts if c in drop)
        log(f"LUDB rhythm: {len(original)} records; merged classes: {', '.join(merged) or 'none'}; dropped "
            f"classes (too rare to score): {', '.join(dropped) or 'none'}; {len(original) - len(task)} record(s) "
            f"left without a class dropped; {len(task)} records, {len(task.classes)} classes: "
            f"{', '.join(task.classes)}")
    return task


def load_transfer_splits(config: TrainConfig, download: bool = False, log=print) -> tuple[Splits, str, bool]:
    """(splits, data path, synthetic?) for ``config``: LUDB (``--dataset ludb`` or a folder with
    ``ludb.csv``, task rhythm) via :func:`ludb_rhythm_task`, everything else via ``data.load_splits``."""
    from ecg_keras.datasets.tasks import split

    if is_ludb(config.dataset):
        root = Path(config.data_dir or config.dataset).expanduser()
        (ludb_task,) = tasks.label_tasks("ludb")
        if config.task != ludb_task:
            raise ValueError(f"LUDB answers the task {ludb_task!r} only, not {config.task!r}")
        return split(ludb_rhythm_task(root, config.sampling_rate, log=log), scheme=config.split, seed=config.seed), \
            str(root.resolve()), False
    from ecg_keras.training.data import load_splits

    splits, records, root = load_splits(config, download=download, log=log)
    used = sum(len(td) for td in (splits.train, splits.val, splits.test))
    if used < len(records.meta):
        log(f"{records.name}: {len(records.meta) - used} of {len(records.meta)} records have no class of the task "
            f"{config.task!r} and are not used; {used} records, {len(splits.train.classes)} classes: "
            f"{', '.join(splits.train.classes)}")
    return splits, str(root), bool(getattr(records, "synthetic", False)) or config.dataset == "synthetic"


# --------------------------------------------------------------------------- finetune
def default_output(config: TrainConfig, source: Run) -> str:
    from ecg_keras.training.config import default_run_name

    return str(Path("runs") / f"{default_run_name(config)}-ft-{source.name}")


def finetune(config: TrainConfig, init_from: str | Path, phase_epochs: Sequence[int] = PHASE_EPOCHS, *,
             splits: Splits | None = None, data_path: str | None = None, download: bool = False,
             train_bn: bool = True, reinit: str = "logits",
             on_phase_end: Callable | None = None, log=print) -> Path:
    """Finetune the model of ``init_from`` on ``config``'s task and data; returns the run directory.

    ``config.arch`` and ``config.epochs`` are replaced by the source's architecture and
    ``sum(phase_epochs)``; its sampling rate and window must be the source's (else ValueError);
    ``config.lr`` (default 1e-2) is phase 1's lr and phase 2's ``lr`` of
    ``slice(lr/1000, lr/10)``. ``splits`` overrides the data named by ``config.dataset``.
    ``on_phase_end(phase, model)`` is called after each phase (tests, diagnostics).
    """
    from ecg_keras import models
    from ecg_keras.training import distribute as dist, lifecycle, rundir as rd

    p1, p2 = (int(e) for e in phase_epochs)
    if p1 < 0 or p2 < 0 or p1 + p2 < 1:
        raise ValueError(f"phase_epochs must be two non-negative epoch counts, not both 0; got {tuple(phase_epochs)}")
    if config.precision != "float32":
        raise ValueError("finetuning trains in float32 only (the source model is stored in float32); "
                         f"drop --precision {config.precision}")
    # seeded before the source model is loaded: its Dropout layers draw their seed-generator state then
    lifecycle.set_seed(config.seed, config.deterministic)
    strategy = dist.make_strategy(config.distribute)
    chief = dist.is_chief(strategy)  # with several workers only the chief writes the run directory
    try:
        source = resolve(init_from).check_complete()
    except (FileNotFoundError, RunError) as e:
        raise FileNotFoundError(f"--init-from: {e}") from None
    with strategy.scope():
        source.model  # noqa: B018  (loaded in the strategy's scope)
    if source.sampling_rate != config.sampling_rate:
        raise ValueError(f"{init_from} was trained at {source.sampling_rate} Hz; finetune with "
                         f"--sampling-rate {source.sampling_rate} (got {config.sampling_rate})")
    source_window = source.model.input_shape[1]
    if source_window is not None and source_window != config.window:
        raise ValueError(f"{init_from} was trained on {source_window / source.sampling_rate:g}-s windows "
                         f"({source_window} samples); finetune with --window {source_window / source.sampling_rate:g} "
                         f"(got {config.window_seconds:g})")
    if config.arch != source.arch and config.verbose:
        log(f"note: finetuning keeps the source architecture {source.arch}")
    config = dataclasses.replace(config, arch=source.arch, epochs=p1 + p2)
    if config.output is None:
        config = dataclasses.replace(config, output=default_output(config, source))
    config = config.resolved()
    run = rd.RunDir(config.output)
    if run.is_complete() and config.resume:
        log(f"{run.path} is already complete; nothing to do.")
        return run.path
    ckpt = None
    if not run.is_empty():
        if not (config.resume and run.config.exists() and "init_from" in run.read_config()):
            raise FileExistsError(f"{run.path} already holds a run; choose another --output "
                                  "(an unfinished finetuning run continues with --resume)")
        ckpt = run.latest_checkpoint()
        if ckpt is None:
            log(f"Restarting the unfinished finetuning run {run.path} (no checkpoint yet).")
    # every worker has looked at the run directory before the chief clears or writes it
    dist.all_agree(strategy, [0.0])
    with lifecycle.claimed(run, chief, resume=config.resume, log=log):
        if chief and ckpt is None:
            rd.clear(run)  # nothing to continue: start from the first epoch

        lifecycle.set_seed(config.seed, config.deterministic)
        synthetic = False
        if splits is None:
            splits, data_path, synthetic = load_transfer_splits(config, download=download, log=log)
        synthetic = synthetic or config.dataset == "synthetic"
        leads = int(np.asarray(splits.train.signals[0]).shape[-1])
        src_in = tuple(source.model.input_shape[1:])
        if src_in[-1] != leads:
            raise DataError(f"{init_from} expects {src_in[-1]} leads, the data has {leads}")
        start = lifecycle.Start(config, run, strategy, chief, splits, source.standardizer, synthetic=synthetic,
                                data_path=data_path, checkpoint=ckpt, resuming=ckpt is not None)
        model = lifecycle.build(start, lambda n_outputs, shape: models.replace_head(source.model, n_outputs,
                                                                                   reinit=reinit))
        groups = models.layer_groups(model, source.arch)
        lrs = discriminative_lrs(config.lr, len(groups))
        phases = finetune_phases(config.lr, lrs, groups, (p1, p2), train_bn)
        info = lifecycle.run_info(
            start, model, phases, init_from=str(init_from),
            finetune={"source": source_description(source), "source_classes": list(source.classes),
                      "phase_epochs": [p1, p2], "train_bn": train_bn, "reinit": reinit,
                      "standardizer": "source", "lr_phase1": config.lr, "lr_groups_phase2": lrs,
                      "layer_groups": [[layer.name for layer in g] for g in groups]})
        description = (
            f"Finetuning {source.arch} from {init_from} on {config.dataset}/{config.task}: {len(splits.train)} train / "
            f"{len(splits.val)} val / {len(splits.test)} test records, {len(splits.train.classes)} outputs; phase 1 "
            f"(head) {p1} epochs at lr {config.lr:g}, phase 2 (all layers) {p2} epochs at lrs "
            f"{', '.join(f'{x:g}' for x in lrs)}")
        return lifecycle.run_phases(start, model, phases, info=info, description=description,
                                    on_phase_end=on_phase_end, log=log)


def finetune_phases(lr: float, lrs: Sequence[float], groups: Sequence[Sequence], phase_epochs: Sequence[int],
                    train_bn: bool = True) -> list:
    """Phase 1: the head alone (+ backbone BatchNorm with ``train_bn``) at ``lr``; phase 2: all layers,
    the one-cycle schedule at the head's learning rate ``lrs[-1]`` and every other group scaled
    relative to it (:func:`group_multipliers`)."""
    from ecg_keras.training.lifecycle import Phase

    p1, p2 = phase_epochs
    return [Phase(epochs=p1, lr=lr, number=1, what="finetuning (phase 1)",
                  trainable=lambda model: set_phase_trainable(model, groups, 1, train_bn)),
            Phase(epochs=p2, lr=lrs[-1], number=2, what="finetuning (phase 2)",
                  multipliers=group_multipliers(groups, [x / lrs[-1] for x in lrs]),
                  trainable=lambda model: set_phase_trainable(model, groups, 2, train_bn))]

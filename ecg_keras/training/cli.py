"""Command line of ``train.py`` (see ``python train.py --help``)."""
from __future__ import annotations

import argparse
import sys

from ecg_keras.training.config import DEFAULT_JIT, DISTRIBUTE, PRECISIONS, TASKS, TrainConfig

EXAMPLES = """examples:
  python train.py --task rhythm --dataset synthetic --arch resnet1d_wang --epochs 5   # demo, no download
  python train.py --task superdiagnostic                                              # PTB-XL, xresnet1d101
  python train.py --task rhythm --resume                                              # continue a killed run
  python train.py --task superdiagnostic --experiment archs --archs fcn_wang,resnet1d_wang,xresnet1d101
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py", description="Train a PTB-XL benchmark model (one-cycle AdamW).",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    S = argparse.SUPPRESS  # unset arguments stay absent, so --resume can tell what was given
    p.add_argument("--task", choices=TASKS, default=S, help="label set / target (default rhythm)")
    p.add_argument("--arch", default=S, help="architecture from ecg_keras.models.list_models() (default xresnet1d101)")
    p.add_argument("--dataset", default=S, help="ptbxl (default), icbeb2018, synthetic, or a WFDB folder")
    p.add_argument("--data-dir", default=S, help="dataset folder (default: <$ECG_KERAS_DATA or ~/.ecg_keras/datasets>/<dataset>)")
    p.add_argument("--cache-dir", default=S, metavar="DIR",
                   help="signal cache folder (default <data root>/cache; 'off' reads without a cache)")
    p.add_argument("--download", action="store_true", help="download PTB-XL / ICBEB2018 if missing")
    p.add_argument("--sampling-rate", type=int, choices=(100, 500), default=S, help="Hz (default 100)")
    p.add_argument("--epochs", type=int, default=S, help="default 50")
    p.add_argument("--batch-size", type=int, default=S, help="global batch size (default 128)")
    p.add_argument("--lr", type=float, default=S, help="max learning rate (default 1e-2; 1e-3 for lstm/lstm_bidir/gru)")
    p.add_argument("--wd", type=float, default=S, help="decoupled weight decay (default 1e-2)")
    p.add_argument("--seed", type=int, default=S, help="default 0")
    p.add_argument("--output", default=S, help="run directory (default runs/<dataset>-<task>-<arch>-seed<seed>)")
    p.add_argument("--split", choices=("strat", "random"), default=S, help="folds 1-8/9/10 (default) or random")
    p.add_argument("--resume", action="store_true", help="continue the run in --output after its last checkpoint")
    p.add_argument("--distribute", choices=DISTRIBUTE, default=S,
                   help="tf.distribute: mirrored (local GPUs/CPUs) or multiworker ($TF_CONFIG)")
    p.add_argument("--precision", choices=PRECISIONS, default=S,
                   help="training dtype policy (default float32); logits, probabilities and exports stay float32 "
                        "(see docs/RESULTS.md, Mixed precision)")
    p.add_argument("--jit", dest="jit", action="store_true", default=S,
                   help=f"XLA-compile the train step (default {'on' if DEFAULT_JIT else 'off'} on one device, off with --distribute; see docs/RESULTS.md)")
    p.add_argument("--no-jit", dest="jit", action="store_false", default=S)
    p.add_argument("--no-deterministic", dest="deterministic", action="store_false", default=S,
                   help="skip tf.config.experimental.enable_op_determinism()")
    p.add_argument("--no-sync-bn", dest="sync_batchnorm", action="store_false", default=S,
                   help="with --distribute: per-replica BatchNorm statistics (default: synchronised)")
    p.add_argument("--keep-checkpoints", type=int, default=S,
                   help="per-epoch checkpoints to keep (newest; default 2, 0 = all)")
    p.add_argument("--synthetic-records", type=int, default=S, help="size of the generated demo set (default 2000)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--experiment", default=None, metavar="NAME",
                   help="train several --archs on one task into <output or runs>/NAME and write a comparison table")
    p.add_argument("--archs", default=None, help="comma-separated architectures for --experiment")
    from ecg_keras.training.finetune import add_transfer_arguments

    add_transfer_arguments(p)
    return p


def config_from_args(ns: argparse.Namespace) -> tuple[TrainConfig, set]:
    from ecg_keras.training.finetune import TRANSFER_ARGS

    special = {"download", "resume", "quiet", "experiment", "archs", *TRANSFER_ARGS}
    given = {k: v for k, v in vars(ns).items() if k not in special}
    cfg = TrainConfig(**given, resume=ns.resume, verbose=0 if ns.quiet else 1)
    return cfg, set(given)


def main(argv=None) -> int:
    ns = parser().parse_args(argv)
    from ecg_keras.training.finetune import run_from_args

    if (code := run_from_args(ns)) is not None:
        return code
    from ecg_keras.datasets.base import DataError

    try:
        cfg, given = config_from_args(ns)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if ns.experiment:
            from ecg_keras.training.experiment import run_experiment

            archs = [a.strip() for a in (ns.archs or "").split(",") if a.strip()]
            table = run_experiment(ns.experiment, cfg, archs or None, download=ns.download)
            print(table)
            return 0
        from ecg_keras.training.loop import train

        if cfg.resume:
            _check_resume_conflicts(cfg, given)
        train(cfg, download=ns.download)
        return 0
    except (DataError, OSError, ValueError, RuntimeError) as e:  # incl. NonFiniteError, RunLockedError
        print(f"\nerror: {e}", file=sys.stderr)
        return 1


def _check_resume_conflicts(cfg: TrainConfig, given: set) -> None:
    """--resume continues the stored configuration: a flag that contradicts it is an error."""
    from ecg_keras.training.rundir import RunDir

    run = RunDir(cfg.resolved().output)
    if not run.config.exists():
        return  # train() names what is missing
    stored = run.read_config()
    differ = [f"--{name.replace('_', '-')} {getattr(cfg, name)!r} (the run has {stored[name]!r})"
              for name in sorted(given - {"output", "verbose", "distribute", "data_dir", "cache_dir"})
              if isinstance(stored, dict) and name in stored and stored[name] != getattr(cfg, name)]
    if differ:
        raise ValueError(f"--resume continues {run.path} as it was started; these flags differ: {'; '.join(differ)}. "
                         "Drop them, or start a new run in another --output")

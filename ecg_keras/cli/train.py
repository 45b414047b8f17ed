"""``ecg-keras train ...``: train a benchmark model, finetune one (``--init-from``) or sweep training sizes.

In a checkout ``python train.py`` is the same command. The work is :mod:`ecg_keras.training`'s.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ecg_keras.archs import ARCH_NAMES, check
from ecg_keras.cli import command
from ecg_keras.errors import UsageError
from ecg_keras.preprocessing import WINDOW_SECONDS
from ecg_keras.training.config import DEFAULT_JIT, DISTRIBUTE, PRECISIONS, TASKS, TrainConfig
from ecg_keras.training.transfer import PHASE_EPOCHS

EXAMPLES = """examples:
  ecg-keras train --task rhythm --dataset synthetic --arch resnet1d_wang --epochs 5   # demo, no download
  ecg-keras train --task superdiagnostic                                              # PTB-XL, xresnet1d101
  ecg-keras train --task rhythm --resume                                              # continue a killed run
  ecg-keras train --task rhythm --dataset synthetic --arch xresnet1d18 --window 10   # 10-s windows, not the protocol
  ecg-keras train --task superdiagnostic --experiment archs --archs fcn_wang,resnet1d_wang,xresnet1d101
"""


def name_type(what: str, choices, many: bool = False):
    """An argparse ``type`` accepting one of ``choices`` (comma-separated ones with ``many``), refusing
    anything else while the arguments are parsed (before TensorFlow starts), with "did you mean"."""
    def parse(text: str):
        try:
            if many:
                return ",".join(check(what, a.strip(), choices) for a in text.split(",") if a.strip())
            return check(what, text, choices)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = what
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecg-keras train", description="Train a PTB-XL benchmark model (one-cycle AdamW).",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    S = argparse.SUPPRESS  # unset arguments stay absent, so --resume can tell what was given
    p.add_argument("--task", type=name_type("task", TASKS), metavar="{" + ",".join(TASKS) + "}", default=S,
                   help="label set / target (default rhythm)")
    p.add_argument("--arch", type=name_type("architecture", ARCH_NAMES), default=S,
                   help="architecture from ecg_keras.models.list_models() (default xresnet1d101)")
    p.add_argument("--dataset", default=S, help="ptbxl (default), icbeb2018, synthetic, or a WFDB folder")
    p.add_argument("--data-dir", default=S, help="dataset folder (default: <$ECG_KERAS_DATA or ~/.ecg_keras/datasets>/<dataset>)")
    p.add_argument("--cache-dir", default=S, metavar="DIR",
                   help="signal cache folder (default <data root>/cache; 'off' reads without a cache)")
    p.add_argument("--download", action="store_true", help="download PTB-XL / ICBEB2018 if missing")
    p.add_argument("--sampling-rate", type=int, choices=(100, 500), default=S, help="Hz (default 100)")
    p.add_argument("--window", dest="window_seconds", type=float, default=S, metavar="SECONDS",
                   help=f"training window in seconds, a whole number of samples at the rate (default "
                        f"{WINDOW_SECONDS:g}, the paper's benchmark protocol; e.g. 10 for a whole PTB-XL record)")
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
                   help=f"XLA-compile the train step (default {'on' if DEFAULT_JIT else 'off'} on one device, off with --distribute; needs --no-deterministic; see docs/RESULTS.md)")
    p.add_argument("--no-jit", dest="jit", action="store_false", default=S)
    p.add_argument("--no-deterministic", dest="deterministic", action="store_false", default=S,
                   help="skip tf.config.experimental.enable_op_determinism()")
    p.add_argument("--no-sync-bn", dest="sync_batchnorm", action="store_false", default=S,
                   help="with --distribute: per-replica BatchNorm statistics (default: synchronised)")
    p.add_argument("--keep-checkpoints", type=int, default=S,
                   help="per-epoch checkpoints to keep (newest; default 2, 0 = all)")
    p.add_argument("--synthetic-records", type=int, default=S, help="size of the generated demo set (default 2000)")
    p.add_argument("--augment", default=S, metavar="NAMES",
                   help="training augmentations, comma-separated: amplitude,baseline,noise,timewarp,leaddrop or all "
                        "(default none, the paper's protocol; see ecg_keras.augment and docs/SYNTHETIC.md)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--experiment", default=None, metavar="NAME",
                   help="train several --archs on one task into <output or runs>/NAME and write a comparison table")
    p.add_argument("--archs", type=name_type("architecture", ARCH_NAMES, many=True), default=None,
                   help="comma-separated architectures for --experiment")
    add_transfer_arguments(p)
    return p


def config_from_args(ns: argparse.Namespace) -> tuple[TrainConfig, set]:
    """The TrainConfig of the parsed arguments and the names given; invalid values are a UsageError."""
    special = {"download", "resume", "quiet", "experiment", "archs", *TRANSFER_ARGS}
    given = {k: v for k, v in vars(ns).items() if k not in special}
    try:
        cfg = TrainConfig(**given, resume=ns.resume, verbose=0 if ns.quiet else 1)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return cfg, set(given)


@command
def main(argv=None) -> int:
    ns = parser().parse_args(argv)
    if (code := run_from_args(ns)) is not None:
        return code
    cfg, given = config_from_args(ns)
    # from here on an error is a data error or a run failure (NonFiniteError, RunLockedError ...): exit 1
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


#: Flags not spelled like their TrainConfig field.
FLAGS = {"window_seconds": "window"}


def _check_resume_conflicts(cfg: TrainConfig, given: set) -> None:
    """--resume continues the stored configuration: a flag that contradicts it is an error."""
    from ecg_keras.training.rundir import RunDir

    run = RunDir(cfg.resolved().output)
    if not run.config.exists():
        return  # train() names what is missing
    stored = run.read_config()
    if isinstance(stored, dict) and {"arch", "task"} <= stored.keys():  # an ecg_keras run: a field it
        # predates was its default (e.g. a 2.5-s window); anything else is refused by train() itself
        stored = {**TrainConfig().to_dict(), **stored}
    differ = [f"--{FLAGS.get(name, name.replace('_', '-'))} {getattr(cfg, name)!r} (the run has {stored[name]!r})"
              for name in sorted(given - {"output", "verbose", "distribute", "data_dir", "cache_dir"})
              if isinstance(stored, dict) and name in stored and stored[name] != getattr(cfg, name)]
    if differ:
        raise ValueError(f"--resume continues {run.path} as it was started; these flags differ: {'; '.join(differ)}. "
                         "Drop them, or start a new run in another --output")


# --------------------------------------------------------------------------- transfer options
def _phase_epochs(text: str) -> tuple[int, int]:
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 0 or sum(values) < 1:
        raise argparse.ArgumentTypeError(f"expected two epoch counts like 30,30; got {text!r}")
    return values


def _sizes(text: str) -> tuple[float, ...]:
    from fractions import Fraction

    try:
        values = tuple(float(Fraction(p)) for p in str(text).replace(" ", "").split(",") if p)
    except (ValueError, ZeroDivisionError):
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected training sizes in folds like 1/8,1/4,1,8; got {text!r}")
    return values


TRANSFER_ARGS = ("init_from", "phase_epochs", "sweep_train_size", "sweep_eval", "sweep_seeds", "bootstrap",
                 "no_train_bn")


def add_transfer_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--init-from``, ``--phase-epochs``, ``--sweep-train-size`` and their options (idempotent)."""
    if any("--init-from" in a.option_strings for a in parser._actions):
        return parser
    g = parser.add_argument_group("transfer learning")
    g.add_argument("--init-from", default=None, metavar="NAME_OR_RUN_DIR",
                   help="finetune a pretrained model: a run directory, a release directory or a released model "
                        "name (new head, gradual unfreezing, discriminative lrs, the source's standardiser)")
    g.add_argument("--phase-epochs", type=_phase_epochs, default=None, metavar="P1,P2",
                   help=f"finetuning epochs: head only, then all layers (default {PHASE_EPOCHS[0]},{PHASE_EPOCHS[1]})")
    g.add_argument("--no-train-bn", action="store_true", default=False,
                   help="also freeze the backbone's BatchNorm layers in phase 1 (reference: they train)")
    g.add_argument("--sweep-train-size", nargs="?", const="default", default=None, metavar="SIZES",
                   help="training-size sweep: finetune (with --init-from) and train from scratch on subsets of the "
                        "training folds; SIZES in folds, default 1/8,1/4,1/2,1,2,4,8")
    g.add_argument("--sweep-eval", default=None, metavar="PARTS",
                   help="splits the sweep scores on: test (default) or val,test (pooled; valid because no "
                        "model selection uses the validation fold)")
    g.add_argument("--sweep-seeds", default=None, metavar="SEEDS", help="comma-separated seeds per size (default: --seed)")
    g.add_argument("--bootstrap", type=int, default=None, metavar="N", help="bootstrap resamples of the sweep (default 1000)")
    return parser


def run_from_args(ns: argparse.Namespace, download: bool | None = None) -> int | None:
    """Run a finetuning or sweep request from ``ecg-keras train``'s parsed arguments.

    Returns None when no transfer option was given (the caller trains as usual); the transfer
    attributes are removed from ``ns`` either way, so ``config_from_args(ns)`` accepts it.
    """
    from ecg_keras.training.transfer import finetune

    opts = {k: getattr(ns, k, None) for k in TRANSFER_ARGS}
    for k in TRANSFER_ARGS:
        if hasattr(ns, k):
            delattr(ns, k)
    if opts["init_from"] is None and opts["sweep_train_size"] is None:
        for k in ("phase_epochs", "sweep_eval", "sweep_seeds", "bootstrap"):
            if opts[k] is not None:
                raise UsageError(f"--{k.replace('_', '-')} needs --init-from or --sweep-train-size")
        return None
    download = bool(getattr(ns, "download", False)) if download is None else download
    cfg, _ = config_from_args(ns)
    phase_epochs = opts["phase_epochs"] or PHASE_EPOCHS
    if opts["sweep_train_size"] is not None:
        from ecg_keras.training import sweeps

        sizes = sweeps.TRAIN_SIZES if opts["sweep_train_size"] == "default" else _sizes(opts["sweep_train_size"])
        try:
            seeds = ([int(s) for s in opts["sweep_seeds"].split(",") if s.strip()] if opts["sweep_seeds"]
                     else [cfg.seed])
        except ValueError:
            raise UsageError(f"--sweep-seeds must be comma-separated integers, got {opts['sweep_seeds']!r}") from None
        eval_parts = tuple(p.strip() for p in (opts["sweep_eval"] or "test").split(",") if p.strip())
        out = sweeps.sweep(cfg, opts["init_from"], sizes=sizes, phase_epochs=phase_epochs, seeds=seeds,
                          eval_parts=eval_parts, n_bootstrap=opts["bootstrap"] or sweeps.N_BOOTSTRAP,
                          train_bn=not opts["no_train_bn"], download=download)
        if (Path(out) / "results.md").exists():  # not on the other workers of a multi-worker sweep
            print((Path(out) / "results.md").read_text())
        return 0
    finetune(cfg, opts["init_from"], phase_epochs, train_bn=not opts["no_train_bn"], download=download)
    return 0

"""The grid of ``reproduce``: its runs (task x architecture x seed), their configs, the checks of
the arguments and of runs already in the output folder, the data loaded once, and the estimate of
the training time left (measured on this machine)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ecg_keras.errors import UsageError
from ecg_keras.tasks import label_tasks, table_tasks
from ecg_keras.training.config import NAMED_DATASETS, TrainConfig

#: The six statement tasks of Table II, in the paper's column order.
STATEMENT_TASKS = table_tasks()
NAIVE, WAVELET, ENSEMBLE = "naive", "wavelet_nn", "ensemble"
BASELINES = (NAIVE, WAVELET)  # trained here (no one-cycle run), never released
#: Wavelet+NN trains at most this many epochs and keeps the best validation loss (PROTOCOL.md).
WAVELET_EPOCHS = 30
#: Table II's rows (PTB-XL) and the ICBEB2018 table's, per dataset.
DEFAULT_ARCHS = {
    "ptbxl": ("inception1d", "xresnet1d101", "resnet1d_wang", "fcn_wang", "lstm_bidir", "lstm", WAVELET, NAIVE,
              ENSEMBLE),
    "icbeb2018": ("xresnet1d101", "resnet1d_wang", "inception1d", "lstm", "fcn_wang", WAVELET, ENSEMBLE),
}
DEFAULT_ARCHS["synthetic"] = DEFAULT_ARCHS["ptbxl"]
DEFAULT_TASKS = {"ptbxl": STATEMENT_TASKS, "synthetic": STATEMENT_TASKS, "icbeb2018": label_tasks("icbeb2018")}
DATASETS = tuple(NAMED_DATASETS)
#: PTB-XL has 21,837 records and folds 1-8 (of 10) train; used only when the data is not on disk.
PTBXL_TRAIN_UPPER_BOUND = math.ceil(21_837 * 8 / 10)



class ReproduceError(UsageError):
    """Unusable arguments (unknown task, architecture, dataset); the message says which."""


@dataclass(frozen=True)
class RunSpec:
    task: str
    arch: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.task}-{self.arch}-seed{self.seed}"

    def path(self, out: Path) -> Path:
        return Path(out) / "runs" / self.task / self.arch / f"seed{self.seed}"

    def run(self, out: Path):
        """Its :class:`~ecg_keras.training.rundir.RunDir` (the file names of a run are stated there)."""
        from ecg_keras.training.rundir import RunDir

        return RunDir(self.path(out))


@dataclass
class Outcome:
    """What :func:`reproduce` did: the grid's runs, what failed, and the files written."""

    out: Path
    runs: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    estimate: dict | None = None
    table: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


# --------------------------------------------------------------------------- the grid
def grid(tasks: Sequence[str], archs: Sequence[str], seeds: Sequence[int]) -> list[RunSpec]:
    """Runs in the order they are trained: task by task; the naive baseline once per task (its
    prediction does not depend on a seed); ``ensemble`` is computed, not trained."""
    out = []
    for task in tasks:
        for arch in archs:
            if arch == ENSEMBLE:
                continue
            out += [RunSpec(task, arch, int(s)) for s in (seeds[:1] if arch == NAIVE else seeds)]
    return out


def check_arguments(dataset: str, tasks: Sequence[str], archs: Sequence[str], seeds: Sequence[int],
                    epochs: int) -> None:
    from ecg_keras import models

    if dataset not in DATASETS:
        raise ReproduceError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    allowed = DEFAULT_TASKS[dataset]
    bad = [t for t in tasks if t not in allowed]
    if bad or not tasks:
        raise ReproduceError(f"--tasks for {dataset}: choose from {', '.join(allowed)} (got {', '.join(bad) or 'none'})")
    known = set(models.list_models()) | {NAIVE, WAVELET, ENSEMBLE}
    bad = [a for a in archs if a not in known]
    if bad or not archs:
        raise ReproduceError(f"unknown architecture(s) {', '.join(bad) or '(none given)'}; choose from "
                             f"{', '.join(sorted(known))}")
    if not seeds or len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ReproduceError(f"--seeds must be distinct non-negative integers, got {list(seeds)}")
    if epochs < 1:
        raise ReproduceError(f"--epochs must be >= 1, got {epochs}")


def run_config(spec: RunSpec, out: Path, *, dataset: str, data_dir: str | None, epochs: int, batch_size: int,
               synthetic_records: int) -> TrainConfig:
    epochs = min(epochs, WAVELET_EPOCHS) if spec.arch == WAVELET else epochs
    return TrainConfig(task=spec.task, arch=spec.arch, dataset=dataset, data_dir=data_dir, epochs=epochs,
                       batch_size=batch_size, seed=spec.seed, output=str(spec.path(out)),
                       synthetic_records=synthetic_records, extra={"experiment": "reproduce"})


def conflicts(specs: Sequence[RunSpec], configs: dict[RunSpec, TrainConfig]) -> list[str]:
    """Runs already in ``DIR`` that were started with other settings than this command's."""
    from ecg_keras.training.rundir import RunDir

    out = []
    for s in specs:
        path = RunDir(configs[s].output).config
        if not path.exists():
            continue
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            out.append(f"{s.name}: unreadable {path}")
            continue
        differ = [f"{k} {stored.get(k)!r} (now {getattr(configs[s], k)!r})"
                  for k in ("task", "arch", "seed", "dataset", "epochs", "batch_size")
                  if stored.get(k) != getattr(configs[s], k)]
        if differ:
            out.append(f"{s.name}: started with {', '.join(differ)}")
    return out


def epochs_done(run_path: Path) -> int:
    from ecg_keras.training.rundir import RunDir

    run = RunDir(run_path)
    try:
        info = run.latest_checkpoint()
    except (OSError, ValueError):
        return 0
    return int(info["epoch"]) if info else 0


# --------------------------------------------------------------------------- data
class GridData:
    """The dataset's records, loaded once, and the splits of one task at a time (PTB-XL's signals
    are ~1 GB; a task's splits are another copy)."""

    def __init__(self, config: TrainConfig, download: bool, log):
        self.config, self.download, self.log = config, download, log
        self._records = self._root = None
        self._task, self._splits = None, None

    def load(self):
        if self._records is None:
            from ecg_keras.training.data import load_records

            self._records, root = load_records(self.config, download=self.download, log=self.log)
            self._root = Path(root).resolve()
        return self._records, self._root

    def splits(self, task: str):
        if task != self._task:
            from ecg_keras.datasets.tasks import make_task, split

            records, _ = self.load()
            self._task, self._splits = None, None
            self._splits, self._task = split(make_task(records, task), scheme="strat", seed=0), task
        return self._splits

    @property
    def root(self) -> Path:
        return self.load()[1]

    def try_load(self) -> bool:
        """Load if possible; False (with a note) when the dataset is not on disk."""
        try:
            self.load()
            return True
        except Exception as err:  # noqa: BLE001 - the dry run then counts with an upper bound
            self.log(f"note: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            return False


# --------------------------------------------------------------------------- estimate
def estimate(specs: Sequence[RunSpec], out: Path, data: GridData | None, *, epochs: int, batch_size: int,
             steps: int = 5, log=print) -> dict:
    """Runs and epochs still to do, and the training-step time of each architecture measured here
    (:func:`ecg_keras.training.throughput.train_step_throughput`, ``steps`` steps after 2 warm-up
    steps (1 if ``steps`` < 3), batch ``batch_size``, 71 outputs, no XLA). Epoch time = steps per epoch x step time
    (training steps only: the per-epoch validation pass and the final evaluation come on top)."""
    from ecg_keras.training.throughput import train_step_throughput
    from ecg_keras.windows import steps_per_epoch

    todo = [s for s in specs if not s.run(out).is_complete()]
    n_train, exact = {}, True
    for task in dict.fromkeys(s.task for s in todo):
        try:
            n_train[task] = len(data.splits(task).train) if data is not None else None
        except Exception as err:  # noqa: BLE001 - no data on disk: an upper bound instead
            log(f"note: cannot count the training records of {task} ({type(err).__name__}); assuming at most "
                f"{PTBXL_TRAIN_UPPER_BOUND} (80% of PTB-XL's 21,837 records)")
            n_train[task] = None
        if n_train[task] is None:
            n_train[task], exact = PTBXL_TRAIN_UPPER_BOUND, False
    step_s: dict[str, float] = {}
    for arch in dict.fromkeys(s.arch for s in todo if s.arch not in BASELINES):
        r = train_step_throughput(arch, jit=False, batch_size=batch_size, steps=steps, warmup=1 if steps < 3 else 2)
        step_s[arch] = r["seconds"] / steps
        log(f"  measured {arch}: {step_s[arch]:.3f} s per step of {batch_size} windows "
            f"({r['windows_per_s']:.0f} windows/s, {r['params']:,} parameters)")
    rows, total_s, total_epochs = [], 0.0, 0
    for s in todo:
        done = epochs_done(s.path(out))
        if s.arch in BASELINES:
            rows.append({"run": s.name, "task": s.task, "arch": s.arch, "steps_per_epoch": None, "epoch_s": None,
                         "epochs_left": 0 if s.arch == NAIVE else min(epochs, WAVELET_EPOCHS), "left_s": None})
            continue
        spe = steps_per_epoch(n_train[s.task], batch_size)
        epoch_s = spe * step_s[s.arch]
        left = epochs - done
        rows.append({"run": s.name, "task": s.task, "arch": s.arch, "epochs_left": left, "steps_per_epoch": spe,
                     "epoch_s": epoch_s, "left_s": left * epoch_s})
        total_s += left * epoch_s
        total_epochs += left
    return {"runs_total": len(specs), "runs_todo": len(todo), "epochs_todo": total_epochs, "train_seconds": total_s,
            "step_seconds": step_s, "batch_size": batch_size, "n_train": n_train, "exact_counts": exact,
            "rows": rows}


def format_estimate(est: dict, epochs: int) -> str:
    from ecg_keras.training.callbacks import format_duration

    lines = [f"Grid: {est['runs_total']} runs, {est['runs_todo']} still to do, {est['epochs_todo']} network epochs "
             f"to train ({epochs} per run)."]
    if est["step_seconds"]:
        lines.append(f"Time per epoch measured on this machine (training steps only, batch {est['batch_size']}):")
        counts = ", ".join(f"{t} {n:,}" for t, n in est["n_train"].items())
        lines.append(f"  training records per task{'' if est['exact_counts'] else ' (upper bound: data not found)'}: "
                     f"{counts}")
        seen = {}
        for r in est["rows"]:
            if r["epoch_s"] is not None:
                seen.setdefault(r["arch"], []).append(r["epoch_s"])
        for arch, vals in seen.items():
            span = f"{min(vals) / 60:.1f}" + (f"-{max(vals) / 60:.1f}" if max(vals) - min(vals) >= 6 else "")
            lines.append(f"  {arch:<16} {est['step_seconds'][arch]:.3f} s/step, {span} min per epoch")
    lines.append(f"Estimated training time: {format_duration(est['train_seconds'])} (plus validation each epoch, "
                 "evaluation, Wavelet+NN features and the exports).")
    return "\n".join(lines)

"""``reproduce``: one command from PTB-XL to the paper's Table II and a released model zoo, a grid
runner split by job: :mod:`.plan` (the runs, their configs, the estimate), :mod:`.run` (claiming
and training runs, the baselines; :mod:`.progress`), :mod:`.score` (the best seeds, bootstrap
scores), :mod:`.tables` (Table II, figures) and :mod:`.release`. The parser is
:mod:`ecg_keras.cli.reproduce`.

    ecg-keras reproduce --data-dir PTBXL --out DIR            # the whole grid
    ecg-keras reproduce --data-dir PTBXL --out DIR --dry-run  # the estimate only
    ecg-keras reproduce --dataset synthetic --out DIR --tasks superdiagnostic,rhythm \\
        --archs fcn_wang,naive --epochs 1                      # the demo

Every (task, architecture, seed) run of the grid goes to ``DIR/runs/<task>/<arch>/seed<seed>`` (a
normal run directory, see :mod:`ecg_keras.training.rundir`). A run that is COMPLETE is reused; one
that holds a config.json was interrupted and is continued with ``resume=True`` (from its last
per-epoch checkpoint); anything else starts afresh. So the same command, run again after a crash
or a kill, picks up where it stopped, and a finished grid trains nothing.

Then every run is scored on the test fold with the benchmark's bootstrap (the resamples of a task
are drawn once, seeded, stored in ``DIR/bootstrap/`` and shared by all models), and written:

* ``DIR/table.md``, ``DIR/table.csv``: Table II's layout, macro AUC with its 90 % interval per task
  beside the paper's value (:mod:`ecg_keras.evaluation.published`) and the difference, Fmax, and
  F_beta/G_beta for ICBEB2018; ``DIR/results_long.csv`` holds every number;
* ``DIR/figures/<dataset>_<task>.png``: Figure-2 style bars with intervals, the paper's values marked;
* ``DIR/release/``: the best seed (by validation macro AUC) of every network per task, released
  with :func:`ecg_keras.export.release_run` (``MANIFEST.json`` with sha256, model cards) plus a
  SavedModel and an ONNX file each, and ``SHA256SUMS`` over the folder.

``naive`` (training prevalence), ``wavelet_nn`` (the paper's Wavelet+NN, at most 30 epochs, best
validation loss) and ``ensemble`` (mean probability of the best runs of all other models but naive;
computed, not trained) complete the table; they are not released (no window model to serve).

Any number of processes (on one machine, or on many sharing ``DIR``) may run the same command:
each run is claimed through its run lock, so none is trained twice; an idle process waits while
others hold runs and takes over (resumes) a run whose process died; the process that sees the grid
complete first writes the table, figures and release (``DIR/collected.json``); ``--collect`` writes
them from the runs complete so far (docs/REPRODUCE.md "Many processes, many machines").

Progress (run, epoch, time left for the grid) goes to the console, each run's output to
``DIR/logs/<task>-<arch>-seed<seed>.log``; a failed run is recorded and the grid goes on; the
failures are summarised at the end and make the exit code 1. ``DIR/runs.csv`` lists every run's
state and times.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from ecg_keras.training.config import TrainConfig
from ecg_keras.training.grid.plan import (BASELINES, DATASETS, DEFAULT_ARCHS, DEFAULT_TASKS, ENSEMBLE, NAIVE,
                                          STATEMENT_TASKS, WAVELET, GridData, Outcome, ReproduceError, RunSpec,
                                          check_arguments, conflicts, estimate, format_estimate, grid, run_config)
from ecg_keras.training.grid.release import release_best
from ecg_keras.training.grid.run import run_row, train_baseline, train_grid
from ecg_keras.training.grid.score import best_runs, evaluate
from ecg_keras.training.grid.tables import plot_figures, write_tables

__all__ = ["BASELINES", "DATASETS", "DEFAULT_ARCHS", "DEFAULT_TASKS", "ENSEMBLE", "NAIVE", "STATEMENT_TASKS",
           "WAVELET", "Outcome", "ReproduceError", "RunSpec", "best_runs", "check_arguments", "evaluate", "grid",
           "release_best", "reproduce", "train_baseline", "write_tables"]


def reproduce(data_dir: str | None, out: str | Path, tasks: Sequence[str] | None = None,
              archs: Sequence[str] | None = None, seeds: Sequence[int] = (0,), epochs: int = 50,
              dataset: str = "ptbxl", *, batch_size: int = 128, n_bootstrap: int = 1000, bootstrap_seed: int = 0,
              synthetic_records: int = 2000, download: bool = False, release: bool = True, url_base: str | None = None,
              dry_run: bool = False, estimate_steps: int = 5, collect_only: bool = False, poll_seconds: float = 10.0,
              stream=None) -> Outcome:
    """Train the grid (tasks x archs x seeds) that is not yet complete, evaluate, tabulate, plot and
    release into ``out`` (see the module docstring). ``dry_run`` only measures and prints the estimate;
    ``collect_only`` trains nothing and writes the table of the runs complete so far. Any number of
    processes may run this on one ``out``: they divide the runs (``poll_seconds``: how often an idle
    one looks for runs freed by a process that died)."""
    stream = stream or sys.stdout
    tasks = list(tasks or DEFAULT_TASKS.get(dataset, STATEMENT_TASKS))
    archs = list(dict.fromkeys(archs or DEFAULT_ARCHS.get(dataset, ())))
    seeds = [int(s) for s in seeds]
    check_arguments(dataset, tasks, archs, seeds, epochs)
    out = Path(out).expanduser().resolve()
    outcome = Outcome(out)

    def say(msg: str) -> None:
        print(msg, file=stream, flush=True)

    specs = grid(tasks, archs, seeds)
    probe = TrainConfig(dataset=dataset, data_dir=data_dir, synthetic_records=synthetic_records)
    data = GridData(probe, download, say)
    if dataset == "synthetic":
        say("=" * 78 + "\n  SYNTHETIC DATA: a generated PTB-XL-like demo set, not real ECGs.\n" + "=" * 78)
    if dry_run:
        est = estimate(specs, out, data if data.try_load() else None, epochs=epochs,
                       batch_size=batch_size, steps=estimate_steps, log=say)
        say(format_estimate(est, epochs))
        outcome.estimate = est
        return outcome

    out.mkdir(parents=True, exist_ok=True)
    configs = {s: run_config(s, out, dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size,
                             synthetic_records=synthetic_records) for s in specs}
    clash = conflicts(specs, configs)
    if clash:
        raise ReproduceError(f"{out} holds runs started with other settings; run this command with another --out "
                             "(or the original settings):\n  " + "\n  ".join(clash))
    if not collect_only:
        train_grid(specs, configs, out, data, outcome, epochs=epochs, batch_size=batch_size,
                   estimate_steps=estimate_steps, poll_seconds=poll_seconds, stream=stream, say=say)
    settings = {"tasks": tasks, "archs": archs, "seeds": seeds, "epochs": epochs, "n_bootstrap": n_bootstrap,
                "bootstrap_seed": bootstrap_seed, "release": release, "url_base": url_base}
    collect(specs, out, dataset, tasks, archs, settings, outcome, say=say)
    if outcome.failures:
        say(f"\n{len(outcome.failures)} FAILED:")
        for f in outcome.failures:
            say(f"  - {f['what']}: {f['error']}" + (f" (log: {f['log']})" if f.get("log") else ""))
        say("Run the same command again to retry them (finished runs are kept).")
    return outcome


def collect(specs, out: Path, dataset: str, tasks, archs, settings: dict, outcome: Outcome, *, say) -> None:
    """Evaluate, tabulate, plot and release, once per state of the grid: by the one process that
    holds ``out``'s lock; skipped when another process is doing it or has done it for the same
    finished runs and settings (``collected.json``)."""
    from ecg_keras.training import rundir as rd

    complete = [s.name for s in specs if s.run(out).is_complete()]
    state = {"complete": complete, "settings": settings}
    try:
        lock = rd.RunLock(out, log=say).__enter__()
    except rd.RunLockedError:
        say(f"Another process is writing the table of {out}; done here.")
        return
    try:
        marker = out / "collected.json"
        try:
            same = json.loads(marker.read_text()) == json.loads(json.dumps(state)) and (out / "table.md").exists()
        except (OSError, ValueError):
            same = False
        if same:
            say(f"The table of {out} is up to date (written by another process); done here.")
            outcome.table = out / "table.md"
            return
        n_bootstrap, bootstrap_seed = settings["n_bootstrap"], settings["bootstrap_seed"]
        say("Evaluating on the test fold (bootstrap) ...")
        evaluation = evaluate(specs, out, dataset, archs, n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed,
                              log=say)
        missing = [s.name for s in specs if s.name not in complete]
        outcome.table = write_tables(out, evaluation, dataset=dataset, tasks=tasks, epochs=settings["epochs"],
                                     n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed, missing=missing)
        try:
            plot_figures(out, evaluation, dataset, tasks)
        except Exception as err:  # noqa: BLE001
            outcome.failures.append({"what": "figures", "error": f"{type(err).__name__}: {err}"})
        if settings["release"]:
            _, failed = release_best(out, dataset, best_runs(specs, out), url_base=settings["url_base"], log=say)
            outcome.failures += failed
        if not outcome.runs:  # --collect: the state of every run
            outcome.runs = [{**run_row(s, out), "status": "complete" if s.name in complete else "missing"} for s in specs]
        write_runs_csv(out, outcome)
        rd.write_json(marker, state)
        say(outcome.table.read_text())
        say(f"Wrote {out / 'table.md'}, {out / 'table.csv'}, {out / 'figures'}"
            + (f" and {out / 'release'}" if settings["release"] else ""))
    finally:
        lock.__exit__(None, None, None)


def write_runs_csv(out: Path, outcome: Outcome) -> None:
    """``DIR/runs.csv``: every run's state and times."""
    import pandas as pd

    from ecg_keras.training import rundir as rd

    with rd.atomic_path(out / "runs.csv") as tmp:
        pd.DataFrame(outcome.runs).to_csv(tmp, index=False)

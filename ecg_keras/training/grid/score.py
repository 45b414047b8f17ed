"""Scoring the grid: the best seed of every (task, architecture) by validation macro AUC, and the
test-fold metrics of those runs and their ensemble with one set of bootstrap resamples per task
(:mod:`ecg_keras.evaluation.scoring`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.tasks import MULTILABEL
from ecg_keras.training.grid.plan import ENSEMBLE, RunSpec


def val_auc(path: Path) -> float:
    """A run's validation macro AUC from metrics.json (-inf when missing or not finite)."""
    from ecg_keras.training.rundir import RunDir

    try:
        v = json.loads(RunDir(path).metrics.read_text())["val"]["macro_auc"]
        return float(v) if v is not None and np.isfinite(v) else -np.inf
    except (OSError, KeyError, TypeError, ValueError):
        return -np.inf


def best_runs(specs: Sequence[RunSpec], out: Path) -> dict[tuple[str, str], dict]:
    """Per (task, arch) the complete seeds and the best one by validation macro AUC (ties: lowest seed)."""
    best: dict = {}
    for s in specs:
        path = s.path(out)
        if not s.run(out).is_complete():
            continue
        b = best.setdefault((s.task, s.arch), {"seeds": [], "seed": None, "path": None, "val": -np.inf})
        b["seeds"].append(s.seed)
        val = val_auc(path)
        if b["path"] is None or val > b["val"]:
            b.update(seed=s.seed, path=path, val=val)
    return best


def evaluate(specs: Sequence[RunSpec], out: Path, dataset: str, archs: Sequence[str], *, n_bootstrap: int,
             bootstrap_seed: int, log=print) -> dict:
    """Score the best run of every (task, arch), and the ensemble, on the test fold with one set of
    seeded bootstrap resamples per task (``DIR/bootstrap/``). Returns ``{"results": {task: {model:
    {metric: stats}}}, "info": {task: {model: {...}}}, "notes": {task: str}}``.

    Classes without a positive or without a negative test record have no AUC; they are left out
    (and named in the notes), which only happens on small (synthetic) sets."""
    from ecg_keras.evaluation import scoring
    from ecg_keras.runs import resolve

    best = best_runs(specs, out)
    results, info, notes = {}, {}, {}
    for task in dict.fromkeys(s.task for s in specs):
        members = []
        for arch in archs:
            b = best.get((task, arch))
            if b is None:
                continue
            r = resolve(b["path"])
            r.name = arch
            members.append(r)
        if not members:
            continue
        models = scoring.group_models(members)
        if ENSEMBLE not in archs:
            models = [m for m in models if m.name != ENSEMBLE]
        test0 = models[0].splits["test"]
        keep = scoring.scorable_classes(test0.y_true)
        classes = members[0].classes
        if not keep.all():
            notes[task] = (f"{int(keep.sum())} of {len(keep)} classes scored (no positive or no negative test record: "
                           f"{', '.join(c for c, k in zip(classes, keep) if not k)})")
        models = [m.subset(keep) for m in models]
        y_true = models[0].splits["test"].y_true
        try:
            idx = scoring.stored_bootstrap(y_true, MULTILABEL, test0.ids, n_bootstrap, bootstrap_seed, out / "bootstrap",
                                 f"{dataset}_{task}")
        except (ValueError, RuntimeError) as err:
            idx = None
            notes[task] = (notes.get(task, "") + "; " if task in notes else "") + f"no bootstrap interval ({err})"
        scored = scoring.score_models(models, y_true, idx, MULTILABEL, challenge=dataset == "icbeb2018")
        for m in models:
            res, src = scored[m.name]
            results.setdefault(task, {})[m.name] = res
            b = best.get((task, m.name))
            info.setdefault(task, {})[m.name] = {
                "seeds": sorted(b["seeds"]) if b else None, "best_seed": b["seed"] if b else None,
                "runs": [str(Path(p).relative_to(out)) for p in m.runs], "threshold_source": src,
                "n_test": int(len(y_true)), "n_bootstrap": int(len(idx)) if idx is not None else 0}
    return {"results": results, "info": info, "notes": notes}

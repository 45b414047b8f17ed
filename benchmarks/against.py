"""Regression check: this working tree against another commit, interleaved on this machine.

    python -m benchmarks --against main --archs lstm resnet1d_wang --parts infer
    python -m benchmarks --against 02a6d4d --archs lstm --parts infer --engines keras onnx --batches 64

``REV`` (anything ``git rev-parse`` takes) is extracted with ``git archive`` into a temporary
directory. Every measurement (one model, one part) then runs for both trees in turn, each in a
fresh process of this interpreter whose ``sys.path`` and working directory start at that tree,
so it imports that tree's ``ecg_keras`` and runs that tree's own ``benchmarks.run`` worker
(same Python, TensorFlow and ONNX Runtime; only the code differs). The order alternates per
round (A B, then B A, ...) so that a change of the machine's load affects both alike. Each
worker reports the files it imported; a worker that imported another tree's code is an error.

Reported per model, part, engine and batch: the median windows/s of each tree over the rounds,
the ratio of medians (this tree / REV: above 1 is faster) and the range of the per-round
ratios. A ratio whose whole range lies below ``1 - margin`` is flagged ``slower`` (above
``1 + margin``: ``faster``); ``--fail-below X`` exits 1 if a ratio of medians is below X.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAG = "AGAINST_JSON "
#: Flag a ratio whose every round lies beyond 1 +- MARGIN (the noise of one round on a shared machine).
MARGIN = 0.1

# Runs in the child: the tree's own benchmarks.run worker, with the tree first on sys.path.
# Keyword arguments the tree's worker does not take are dropped only when they carry this
# tree's default (an older worker measured that default anyway); otherwise the worker fails.
_CHILD = r"""
import inspect, json, os, sys, time
tree, kind, kwargs, defaults = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
sys.path[:0] = [tree]
os.chdir(tree)
t0 = time.perf_counter()
try:
    import benchmarks.run as run
    import ecg_keras
    fn = run.WORKERS[kind]
    params = inspect.signature(fn).parameters
    unknown = [k for k in kwargs if k not in params]
    bad = [k for k in unknown if kwargs[k] != defaults.get(k)]
    if bad:
        raise TypeError(f"this tree's {kind} worker does not take {', '.join(bad)}")
    result = fn(**{k: v for k, v in kwargs.items() if k in params})
    result["ok"] = True
    result["dropped"] = unknown
except Exception as e:
    import traceback
    traceback.print_exc()
    result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
mods = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("ecg_keras", "benchmarks.run")}
result["source"] = {"tree": tree, **mods}
result["wall_s"] = round(time.perf_counter() - t0, 2)
print(""" + repr(TAG) + r""" + json.dumps(result), flush=True)
"""


class AgainstError(Exception):
    """A problem with the revision or a tree (reported as one ``error:`` line)."""


def _git(*args: str, cwd: Path = REPO) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AgainstError(f"git {' '.join(args)}: {e}") from None
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise AgainstError(f"git {' '.join(args)}: {msg}")
    return proc.stdout


def working_tree() -> dict:
    """The checkout this module belongs to: its path, HEAD commit and whether tracked files are changed."""
    commit = _git("rev-parse", "HEAD").strip()
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no").strip())
    return {"label": "this tree", "path": str(REPO), "commit": commit, "dirty": dirty}


def extract(rev: str, dest: Path) -> dict:
    """``git archive`` commit ``rev`` of this repository into ``dest``; its description."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}").strip()
    except AgainstError:
        raise AgainstError(f"not a commit of the repository at {REPO}") from None
    archive = dest / "tree.tar"
    with open(archive, "wb") as f:
        proc = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], stdout=f,
                              stderr=subprocess.PIPE, timeout=300)
    if proc.returncode != 0:
        raise AgainstError(f"git archive {commit[:12]}: {proc.stderr.decode(errors='replace').strip()}")
    tree = dest / commit[:12]
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    if not (tree / "benchmarks" / "run.py").is_file() or not (tree / "ecg_keras").is_dir():
        raise AgainstError(f"{rev} ({commit[:12]}) has no benchmarks/run.py or ecg_keras/: nothing to measure")
    return {"label": rev, "path": str(tree), "commit": commit, "dirty": False}


def run_in_tree(tree: dict, kind: str, timeout: float, defaults: dict, **kwargs) -> dict:
    """One ``benchmarks.run`` worker of ``tree`` in a fresh process; its JSON result (``ok`` False on failure)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = tree["path"]  # for anything the worker itself starts
    cmd = [sys.executable, "-c", _CHILD, tree["path"], kind, json.dumps(kwargs), json.dumps(defaults)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tree["path"], env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(TAG)]
    if not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"ok": False, "error": f"worker exited {proc.returncode}: {tail}"}
    result = json.loads(lines[-1][len(TAG):])
    result["process_s"] = round(time.perf_counter() - t0, 2)
    root = Path(tree["path"]).resolve()
    for module, file in result["source"].items():
        if module != "tree" and file and root not in Path(file).resolve().parents:
            raise AgainstError(f"the worker for {tree['label']} imported {module} from {file}, not from {root}")
    return result


def figures(kind: str, result: dict) -> dict:
    """windows/s of one worker result by (engine, batch): ("train", batch size) for training."""
    if not result.get("ok"):
        return {}
    if kind == "train":
        return {("train", str(result.get("batch_size", ""))): result["windows_per_s"]}
    return {(engine, batch): r["windows_per_s"] for engine, per_batch in result.get("engines", {}).items()
            for batch, r in per_batch.items() if r.get("windows_per_s")}


def ratios(runs: list[dict], margin: float = MARGIN) -> list[dict]:
    """Rows per (part, arch, engine, batch) from ``runs`` (one entry per round and measurement).

    Each run: ``{"round", "part", "arch", "a": result, "b": result}``. A row has both trees'
    windows/s per round, their medians, ``ratio`` = median(a) / median(b), the per-round ratios'
    ``low`` / ``high`` and ``verdict``: "slower" / "faster" when every round is beyond ``margin``,
    "same" otherwise; None (and ``error``) when a tree failed in every round.
    """
    rows: dict = {}
    for run in runs:
        fa, fb = figures(run["part"], run["a"]), figures(run["part"], run["b"])
        for key in sorted(set(fa) | set(fb)):
            row = rows.setdefault((run["part"], run["arch"], *key),
                                  {"part": run["part"], "arch": run["arch"], "engine": key[0], "batch": key[1],
                                   "a": [], "b": [], "round_ratios": []})
            if key in fa and key in fb:
                row["a"].append(fa[key])
                row["b"].append(fb[key])
                row["round_ratios"].append(round(fa[key] / fb[key], 3))
    failures = {}
    for run in runs:
        for side in ("a", "b"):
            if not run[side].get("ok"):
                failures.setdefault((run["part"], run["arch"]), []).append(f"{side}: {run[side].get('error')}")
    out = []
    for (part, arch, *_), row in rows.items():
        if row["a"]:
            row["a_median"], row["b_median"] = statistics.median(row["a"]), statistics.median(row["b"])
            row["ratio"] = round(row["a_median"] / row["b_median"], 3)
            row["low"], row["high"] = min(row["round_ratios"]), max(row["round_ratios"])
            row["verdict"] = ("slower" if row["high"] < 1 - margin else "faster" if row["low"] > 1 + margin
                              else "same")
        else:
            row.update(ratio=None, verdict=None, error="; ".join(failures.get((part, arch), ["no common figure"])))
        out.append(row)
    for (part, arch), errors in failures.items():
        if not any(r["part"] == part and r["arch"] == arch for r in out):
            out.append({"part": part, "arch": arch, "engine": "-", "batch": "-", "ratio": None, "verdict": None,
                        "error": "; ".join(errors)})
    return out


def report(result: dict) -> str:
    a, b = result["trees"]
    desc = lambda t: f"{t['commit'][:12]}{' + changes' if t.get('dirty') else ''}"  # noqa: E731
    m = result["machine"]
    lines = [f"{m['cpu_model']} ({m['isa_summary']}), {m['cpus']} CPUs, load average {m['load_average']} -> "
             f"{m.get('load_average_end')}; {m['date']}",
             f"A = this tree ({desc(a)}), B = {b['label']} ({desc(b)}); {result['rounds']} rounds, order per "
             f"round A B, B A, ...; windows/s median over rounds; ratio = A / B (> 1: this tree faster); "
             f"'slower' / 'faster' when every round is beyond {result['margin']:.0%}",
             f"{'part':6s} {'model':14s} {'engine':10s} {'batch':>5s} {'A win/s':>9s} {'B win/s':>9s} "
             f"{'A/B':>6s} {'rounds':>12s}  verdict"]
    for r in result["ratios"]:
        if r["ratio"] is None:
            lines.append(f"{r['part']:6s} {r['arch']:14s} {r['engine']:10s} {r['batch']:>5s} FAILED: {r['error']}")
            continue
        lines.append(f"{r['part']:6s} {r['arch']:14s} {r['engine']:10s} {r['batch']:>5s} {r['a_median']:9.1f} "
                     f"{r['b_median']:9.1f} {r['ratio']:6.2f} {r['low']:5.2f}-{r['high']:<5.2f}  {r['verdict']}")
    lines.append(f"\ntotal {result['total_s']} s; command: {result['command']}")
    return "\n".join(lines)


def run_against(rev: str, *, archs, parts, train_kwargs: dict, infer_kwargs: dict, defaults: dict, rounds: int = 2,
                timeout: float = 600, margin: float = MARGIN, log=print) -> dict:
    """Measure this tree (A) and ``rev`` (B) alternately; the result dict (``ratios``: see :func:`ratios`)."""
    from benchmarks.run import isa_summary, load_average, machine_info

    t0 = time.perf_counter()
    a = working_tree()
    with tempfile.TemporaryDirectory(prefix="ecg_keras_against_") as tmp:
        b = extract(rev, Path(tmp))
        log(f"A = this tree {a['commit'][:12]}{' + changes' if a['dirty'] else ''}, B = {rev} ({b['commit'][:12]}) "
            f"in {b['path']}")
        machine = machine_info()
        machine["isa_summary"] = isa_summary(machine.get("isa"))
        runs = []
        for r in range(rounds):
            for part in parts:
                for arch in archs:
                    kwargs = {"arch": arch, **(train_kwargs if part == "train" else infer_kwargs)}
                    entry = {"round": r, "part": part, "arch": arch}
                    for side, tree in (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a)):
                        res = run_in_tree(tree, part, timeout, defaults.get(part, {}), **kwargs)
                        entry[side] = res
                        got = figures(part, res)
                        log(f"  round {r + 1} {side.upper()} {part} {arch:14s} "
                            + (" ".join(f"{e}/{bt} {v:.0f}" for (e, bt), v in got.items()) if res.get("ok")
                               else f"FAILED: {res.get('error')}") + f" ({res.get('process_s', 0):.0f} s)")
                    runs.append(entry)
    machine["load_average_end"] = load_average()
    return {"benchmark": "ecg_keras --against", "schema": 1, "machine": machine, "trees": [a, b], "rounds": rounds,
            "margin": margin, "settings": {"archs": list(archs), "parts": list(parts), "train": train_kwargs,
                                           "infer": infer_kwargs},
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
            "runs": runs, "ratios": ratios(runs, margin), "total_s": round(time.perf_counter() - t0, 1)}


def main(a, parser) -> int:
    """``python -m benchmarks --against REV`` with the parsed arguments ``a`` of :func:`benchmarks.run.main`."""
    from benchmarks import run as bench

    for flag, value in (("--compare", a.compare), ("--peer", a.peer), ("--peer-live", a.peer_live)):
        if value:
            parser.error(f"--against measures two trees; {flag} does not combine with it")
    if a.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {a.rounds}")
    tri = {"default": None, "on": True, "off": False}
    train_kwargs = {"batch_size": a.batch_size, "seconds": a.train_seconds, "warmup": a.warmup, "records": a.records,
                    "jit": tri[a.jit], "deterministic": tri[a.deterministic], "precision": a.precision}
    infer_kwargs = {"seconds": a.infer_seconds, "batches": list(a.batches), "engines": list(a.engines),
                    "jit": tri[a.jit]}
    defaults = {part: bench.worker_defaults(part) for part in ("train", "infer")}
    try:
        result = run_against(a.against, archs=a.archs, parts=a.parts, train_kwargs=train_kwargs,
                             infer_kwargs=infer_kwargs, defaults=defaults, rounds=a.rounds, timeout=a.timeout)
    except AgainstError as e:
        print(f"error: --against {a.against}: {e}", file=sys.stderr)
        return 2
    out = Path(a.output) if a.output else (REPO / "benchmarks" / "results"
                                            / f"against-{_dt.datetime.now():%Y%m%d-%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print()
    print(report(result))
    print(f"\nwrote {out}")
    failed = [r for r in result["ratios"] if r["ratio"] is None]
    below = [r for r in result["ratios"] if a.fail_below is not None and r["ratio"] is not None
             and r["ratio"] < a.fail_below]
    for r in below:
        print(f"below --fail-below {a.fail_below}: {r['part']} {r['arch']} {r['engine']} batch {r['batch']} "
              f"{r['ratio']:.2f}", file=sys.stderr)
    return 1 if failed or below else 0

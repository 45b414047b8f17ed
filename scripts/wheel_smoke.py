#!/usr/bin/env python
"""Install ecg_keras as a user would and use it outside the checkout.

    python scripts/wheel_smoke.py [--python python3.13] [--wheel DIST/ecg_keras-*.whl] [--work DIR]

Builds the sdist and wheel (``python -m build``; ``twine check``) unless ``--wheel`` is given,
creates a fresh virtual environment with ``--python`` in a temporary directory, installs
``WHEEL[cpu]`` with the exact versions of constraints.txt, and from a temporary working
directory (no checkout on sys.path) runs ``ecg-keras --help``, ``ecg-keras data synthetic``,
``ecg-keras train``, ``ecg-keras export savedmodel``, ``ecg-keras predict`` on the run, its
SavedModel, ONNX and LiteRT exports (the ``[cpu]`` extra's runtimes) against ``ecg_keras.load(run)
.predict(array, fs=...)``, ``export release``, then
``ecg_keras.pretrained()`` of that release served by ``python -m http.server`` on 127.0.0.1:
downloaded with its sha256 checked, then loaded again from the cache with the server stopped.
When the zoo (``models/MANIFEST.json``) lists shipped weights, each shipped model is loaded
with ``pretrained(name=...)`` from the installed wheel with every download pointed at a closed
port (offline), and ``ecg-keras predict NAME RECORD`` runs on a real LUDB record (``../shared``)
or else a generated one. Exits non-zero at the first failure.

The dependencies' wheels are kept in ``$ECG_KERAS_WHEEL_CACHE`` (default
``~/.cache/ecg_keras/wheels``) and installed from there without an index once present (pip's
own HTTP cache does not keep them on every machine): only the first run downloads ~600 MB.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run by the venv's Python: ARGV = release dir (served), client dir (manifest only), port.
PRETRAINED_CHECK = r"""
import inspect, os, subprocess, sys, time, urllib.request
from pathlib import Path
import ecg_keras
from ecg_keras import zoo

release, client, port = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
assert "site-packages" in ecg_keras.__file__, ecg_keras.__file__
assert (zoo.RELEASED_DIR / "MANIFEST.json").is_file(), "the package manifest is not installed"
params = list(inspect.signature(ecg_keras.pretrained).parameters)
assert params[:5] == ["arch", "task", "include_top", "num_classes", "weights"], params
(entry,) = zoo.read_manifest(client)
cached = Path(os.environ["ECG_KERAS_HOME"]) / "models" / entry["file"]
server = subprocess.Popen([sys.executable, "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", release],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/MANIFEST.json", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    assert not cached.exists()
    model = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=str(client))
finally:
    server.terminate()
    server.wait(timeout=30)
assert cached.is_file() and zoo.sha256(cached) == entry["sha256"], cached
assert model.ecg_info.classes and model.output_shape[-1] == len(model.ecg_info.classes)
print(f"pretrained: {model.ecg_info.name} downloaded from {entry['url_base']} into {cached}, sha256 checked")
again = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=str(client))  # no server now
assert again.count_params() == model.count_params()
print("pretrained again with the server stopped: served from the cache")
"""

# Run by the venv's Python: ARGV = the names of the models shipped in the wheel.
SHIPPED_CHECK = r"""
import os, sys
from pathlib import Path
import ecg_keras
from ecg_keras import zoo

assert "site-packages" in str(zoo.RELEASED_DIR) and zoo.RELEASED_DIR.name == zoo.INSTALLED, zoo.RELEASED_DIR
assert not zoo.in_checkout()
for name in sys.argv[1:]:
    entry = zoo.find_entry(name=name)
    weights = zoo.RELEASED_DIR / entry["file"]
    assert weights.is_file(), f"{weights} is not installed with the wheel"
    model = ecg_keras.pretrained(name=name, weights=None)
    assert model.ecg_info.name == name and model.output_shape[-1] == len(entry["classes"])
    assert not (Path(os.environ["ECG_KERAS_HOME"]) / "models").exists(), "a shipped model was downloaded"
    print(f"pretrained(name={name!r}) offline from {weights} ({weights.stat().st_size / 1e6:.2f} MB)")
"""


def shipped_models() -> list[str]:
    """Names of the zoo's models whose weights are in models/ (so in the wheel)."""
    import json

    manifest = REPO / "models" / "MANIFEST.json"
    entries = json.loads(manifest.read_text())["models"] if manifest.is_file() else []
    return [e["name"] for e in entries if (REPO / "models" / e["file"]).is_file()]


# Run by the venv's Python: ARGV = work dir. Records for predict, and the Python API on an array.
RECORD_AND_API_CHECK = r"""
import json, sys
from pathlib import Path
import numpy as np
import ecg_keras

work = Path(sys.argv[1])
rng = np.random.default_rng(0)
t = np.arange(5000) / 500.0
x = np.exp(-((t * 1.2) % 1.0 - 0.3) ** 2 / 0.0004)[:, None] * np.linspace(0.5, 1.6, 12) + 0.05 * rng.standard_normal((5000, 12))
np.save(work / "record.npy", x)
frame = ecg_keras.load(work / "runs" / "fcn").predict(x, fs=500)
json.dump(frame.iloc[0].to_dict(), open(work / "api.json", "w"))
print(f"ecg_keras.load(run).predict(array, fs=500): {frame.shape[1]} class probabilities")
"""


def run(cmd, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c).split("\n")[0] or "<script>" for c in cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kw)
    if proc.returncode:
        sys.exit(f"FAILED ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    print(f"  ok ({time.perf_counter() - start:.1f} s)", flush=True)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(dist: Path) -> Path:
    """sdist and wheel with ``python -m build``, ``twine check``ed; the sdist must build the same wheel."""
    import zipfile

    run([sys.executable, "-m", "build", "--outdir", dist, REPO])
    run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])
    wheel, sdist = Path(glob.glob(str(dist / "*.whl"))[0]), Path(glob.glob(str(dist / "*.tar.gz"))[0])
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist / "from_sdist", sdist])
    from_sdist = next((dist / "from_sdist").glob("*.whl"))
    names = [sorted(zipfile.ZipFile(w).namelist()) for w in (wheel, from_sdist)]
    if names[0] != names[1]:
        sys.exit(f"FAILED: the sdist builds a different wheel: {sorted(set(names[0]) ^ set(names[1]))}")
    print(f"sdist {sdist.name} ({sdist.stat().st_size / 1e3:.0f} kB) builds the same wheel as {wheel.name} "
          f"({wheel.stat().st_size / 1e3:.0f} kB)", flush=True)
    return wheel


def clean_env(**extra: str) -> dict:
    """This environment without PYTHON*/VIRTUAL_ENV (a PYTHONPATH naming the checkout would make the
    venv's pip see ecg_keras as installed already) and ECG_KERAS_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ECG_KERAS_", "VIRTUAL_ENV"))}
    return env | extra


def install(py: Path, wheel: Path) -> None:
    """``WHEEL[cpu]`` with constraints.txt, dependencies from the local wheel cache (filled if needed)."""
    cache = Path(os.environ.get("ECG_KERAS_WHEEL_CACHE") or Path.home() / ".cache" / "ecg_keras" / "wheels")
    cache.mkdir(parents=True, exist_ok=True)
    pip = [py, "-m", "pip", "--disable-pip-version-check"]
    target = ["-c", REPO / "constraints.txt", f"{wheel.resolve()}[cpu]"]
    # --no-compile: byte-compiling all of TensorFlow takes longer than the modules the commands import
    offline = [*pip, "install", "--quiet", "--no-compile", "--no-index", "--find-links", cache, *target]
    if subprocess.run([str(c) for c in offline], capture_output=True, env=clean_env()).returncode == 0:
        print(f"+ installed {wheel.name}[cpu] from the wheel cache {cache}", flush=True)
        return
    run([*pip, "download", "--quiet", "--only-binary", ":all:", "--dest", cache, *target], env=clean_env())
    for stale in cache.glob("ecg_keras-*"):
        stale.unlink()
    run(offline, env=clean_env())


def check_exported_formats(py: Path, cli: Path, work: Path, run_dir: Path, kw: dict) -> None:
    """With ``[cpu]`` only: ``ecg-keras predict`` on the run, its ``.onnx`` and ``.tflite`` exports and
    export savedmodel's ``--out`` directory gives the Python API's probabilities on the same record."""
    import json

    run([py, "-c", RECORD_AND_API_CHECK, work], **kw)
    api = json.loads((work / "api.json").read_text())
    run([cli, "export", "onnx", run_dir, "--out", work / "model.onnx"], **kw)
    run([cli, "export", "litert", run_dir, "--out", work / "model.tflite"], **kw)
    for source, tol in ((run_dir, 1e-6), (work / "serving", 1e-5), (work / "model.onnx", 1e-5),
                        (work / "model.tflite", 1e-5)):
        out = work / f"predict_{Path(source).name}.json"
        run([cli, "predict", source, work / "record.npy", "--fs", 500, "--out", out, "--no-progress"], **kw)
        got = json.loads(out.read_text())["records"][0]["probabilities"]
        worst = max(abs(got[c] - api[c]) for c in api)
        if worst > tol:
            sys.exit(f"FAILED: predict {source} differs from the Python API by {worst:.2e} (> {tol:g})")
        print(f"predict {Path(source).name}: the Python API's probabilities within {worst:.1e}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", default=sys.executable, help="interpreter for the fresh venv (default: this one)")
    p.add_argument("--wheel", type=Path, default=None, help="an already built wheel (default: build one)")
    p.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one, removed)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="ecg_keras_wheel_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        wheel = args.wheel or build(work / "dist")
        venv = work / "venv"
        run([args.python, "-m", "venv", venv], env=clean_env())
        py, cli = venv / "bin" / "python", venv / "bin" / "ecg-keras"
        install(py, wheel)
        print(f"installed {wheel.name} into {venv} ({time.perf_counter() - start:.0f} s so far)", flush=True)

        cwd = work / "cwd"
        cwd.mkdir(exist_ok=True)
        env = clean_env(ECG_KERAS_HOME=str(work / "home"), ECG_KERAS_DATA=str(work / "data"), TF_CPP_MIN_LOG_LEVEL="2")
        kw = dict(cwd=cwd, env=env)

        out = run([cli, "--help"], **kw).stdout
        assert all(c in out for c in ("train", "evaluate", "export", "data")), out
        assert run([py, "-m", "ecg_keras", "--help"], **kw).stdout == out
        data, runs = work / "data" / "ptbxl-synthetic", work / "runs" / "fcn"
        run([cli, "data", "synthetic", "--dest", data, "--n-records", 100, "--seed", 0], **kw)
        run([cli, "train", "--task", "rhythm", "--dataset", "synthetic", "--data-dir", data, "--arch", "fcn_wang",
             "--epochs", 1, "--batch-size", 32, "--output", runs, "--quiet"], **kw)
        run([cli, "export", "savedmodel", runs, "--out", work / "serving"], **kw)
        assert (work / "serving" / "ecg" / "1" / "saved_model.pb").is_file()
        check_exported_formats(py, cli, work, runs, kw)

        port = free_port()
        release, client = work / "release", work / "client"
        run([cli, "export", "release", runs, "--name", "fcn_wang_rhythm_smoke", "--models-dir", release,
             "--url-base", f"http://127.0.0.1:{port}"], **kw)
        client.mkdir()
        shutil.copy(release / "MANIFEST.json", client)  # the manifest only: weights come over HTTP
        print(run([py, "-c", PRETRAINED_CHECK, release, client, port], **kw).stdout, end="")

        shipped = shipped_models()
        if shipped:  # offline: any download would go to a closed port and fail
            offline = dict(cwd=cwd, env=env | {"ECG_KERAS_WEIGHTS_URL": f"http://127.0.0.1:{free_port()}",
                                               "ECG_KERAS_HOME": str(work / "offline-home")})
            print(run([py, "-c", SHIPPED_CHECK, *shipped], **offline).stdout, end="")
            ludb = REPO.parent / "shared" / "data" / "ludb-1.0.1" / "data" / "1"
            record = ludb if ludb.with_suffix(".hea").is_file() else sorted(data.rglob("*.hea"))[0].with_suffix("")
            for name in shipped:
                out = run([cli, "predict", name, record, "--no-progress"], **offline).stdout
                assert f"model: {name} (release" in out, out
                print(f"ecg-keras predict {name} {record.name}: " + out.strip().splitlines()[-1])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wheel smoke passed ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

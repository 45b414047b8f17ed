"""The installable library: wheel contents and metadata, the ``ecg-keras`` command, real public
signatures, packaged manifest and download cache, and the wheel installed into a fresh venv."""
from __future__ import annotations

import functools
import hashlib
import http.server
import inspect
import os
import subprocess
import sys
import threading
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import ecg_keras
from ecg_keras import cli, zoo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from this checkout without build isolation (no network: setuptools of this env)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(REPO)], check=True)
    return next(out.glob("ecg_keras-*.whl"))


def test_wheel_holds_only_the_package_with_ranges_and_the_manifest(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(z.read(f"{dist_info}/METADATA").decode())
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
        record = z.read(f"{dist_info}/RECORD").decode()
    assert {n.split("/")[0] for n in names} == {"ecg_keras", dist_info}
    assert {line.split("/")[0] for line in record.splitlines()} == {"ecg_keras", dist_info}
    installed = f"ecg_keras/{zoo.INSTALLED}"
    assert f"{installed}/MANIFEST.json" in names and "ecg_keras/cli/export.py" in names
    # weights: exactly the zoo's shipped files (models/), installed beside the manifest
    shipped = sorted(f"{installed}/{e['file']}" for e in zoo.read_manifest(REPO / "models")
                     if (REPO / "models" / e["file"]).is_file())
    assert sorted(n for n in names if n.endswith((".keras", ".h5", ".onnx"))) == shipped
    requires = metadata.get_all("Requires-Dist")
    pinned = [r for r in requires if any(spec.operator in ("==", "===") for spec in Requirement(r).specifier)]
    assert requires and not pinned, pinned
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if r.lower().startswith("tensorflow")], "an installed TensorFlow build must be kept"
    assert {"cpu", "and-cuda", "tensorflow", "dev"} <= set(metadata.get_all("Provides-Extra"))
    assert any(r.startswith("tensorflow-cpu") and 'extra == "cpu"' in r for r in requires)
    assert metadata["Requires-Python"] in (">=3.10,<3.14", "<3.14,>=3.10")
    assert "ecg-keras = ecg_keras.cli:main" in entry_points


def test_import_is_light_and_public_functions_keep_their_signatures():
    code = ("import os, sys, inspect, ecg_keras; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'import ecg_keras loaded TF'; "
            "assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '1'; print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.stdout.strip() == "ok", out.stderr
    assert list(inspect.signature(ecg_keras.pretrained).parameters)[:5] == [
        "arch", "task", "include_top", "num_classes", "weights"]
    assert "released model" in inspect.getdoc(ecg_keras.pretrained)
    assert list(inspect.signature(ecg_keras.list_models).parameters) == ["pattern", "pretrained"]
    assert ecg_keras.list_models("fcn*") == ["fcn_wang"]
    assert list(inspect.signature(ecg_keras.list_pretrained).parameters) == ["models_directory"]


def test_without_tensorflow_the_import_error_names_the_extras():
    code = "import sys; sys.modules['tensorflow'] = None; import ecg_keras"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "pip install 'ecg_keras[cpu]'" in proc.stderr, proc.stderr


def test_every_command_resolves_and_shows_its_modules_own_help(capsys):
    assert cli.main(["--help"]) == 0
    top = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert f"  {command} " in top
        with pytest.raises(SystemExit) as ecg_keras_help:
            cli.main([command, "--help"])
        via_dispatcher = capsys.readouterr().out
        with pytest.raises(SystemExit) as module_help:
            cli.resolve(command)(["--help"])
        assert ecg_keras_help.value.code == module_help.value.code == 0
        assert via_dispatcher == capsys.readouterr().out and "usage:" in via_dispatcher
    assert cli.main(["predict-nothing"]) == 2
    assert "unknown command 'predict-nothing'" in capsys.readouterr().err


def test_checkout_shims_and_python_m_are_the_same_commands():
    def run(*args):
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert run("-m", "export", "--help") == run("-m", "ecg_keras", "export", "--help")
    assert run("train.py", "--help") == run("-m", "ecg_keras", "train", "--help")
    assert run("-m", "ecg_keras.datasets", "--help") == run("-m", "ecg_keras", "data", "--help")


def test_weights_download_from_the_entry_url_into_ecg_keras_home_then_from_the_cache(tmp_path, monkeypatch):
    """``url`` field, sha256 checked, cached under $ECG_KERAS_HOME/models, no network the second time."""
    served = tmp_path / "served"
    served.mkdir()
    payload = b"weights bytes " * 1000
    (served / "w.keras").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entry = {"name": "demo", "arch": "fcn_wang", "task": "rhythm", "classes": ["A"], "standardizer": {},
             "sampling_rate": 100, "window": 250, "training_data": "synthetic", "file": "demo.keras",
             "sha256": hashlib.sha256(payload).hexdigest(),
             "url": f"http://127.0.0.1:{server.server_address[1]}/w.keras"}
    monkeypatch.setenv("ECG_KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ECG_KERAS_WEIGHTS_URL", raising=False)
    empty = tmp_path / "models"  # a models directory without the weights file
    empty.mkdir()
    try:
        with pytest.raises(zoo.ChecksumError):
            zoo.resolve_weights({**entry, "sha256": "0" * 64}, empty)
        assert not (tmp_path / "home" / "models" / "demo.keras").exists()  # the rejected copy is removed
        path = zoo.resolve_weights(entry, empty)
    finally:
        server.shutdown()
        server.server_close()
    assert path == tmp_path / "home" / "models" / "demo.keras" and path.read_bytes() == payload
    assert zoo.resolve_weights(entry, empty) == path  # server gone: served from the cache


def test_the_zoo_is_the_checkouts_models_folder_with_small_checked_weights_and_validated_synthetic_models():
    assert zoo.RELEASED_DIR == REPO / "models" and zoo.in_checkout()
    assert (zoo.RELEASED_DIR / zoo.MANIFEST).is_file()
    for entry in zoo.read_manifest(zoo.RELEASED_DIR):
        assert not entry.get("synthetic") or entry.get("validation"), f"{entry['name']}: synthetic, not validated"
        weights = zoo.RELEASED_DIR / entry["file"]
        if weights.is_file():  # shipped in the wheel: small, and the manifest's sha256
            assert weights.stat().st_size < 2_500_000 and zoo.sha256(weights) == entry["sha256"], weights
        else:
            assert entry.get("url") or entry.get("url_base"), f"{entry['name']}: neither shipped nor downloadable"
        assert (zoo.RELEASED_DIR / entry["card"]).is_file()


def test_an_installed_package_is_not_a_release_target(tmp_path, monkeypatch):
    from ecg_keras.export import release_run

    installed = tmp_path / "site-packages" / "ecg_keras" / "released"  # no setup.cfg two levels up
    installed.mkdir(parents=True)
    monkeypatch.setattr(zoo, "RELEASED_DIR", installed)
    monkeypatch.delenv("ECG_KERAS_MODELS_DIR", raising=False)
    (tmp_path / "run").mkdir()
    for name in ("config.json", "classes.json", "standardizer.json", "model.keras"):
        (tmp_path / "run" / name).write_text("{}")
    with pytest.raises(ValueError, match="--models-dir"):
        release_run(tmp_path / "run", "demo")
    assert not list(installed.iterdir())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_installs_into_a_fresh_venv_and_works_outside_the_checkout(wheel, tmp_path):
    """scripts/wheel_smoke.py with this Python: fresh venv, WHEEL[cpu] with constraints.txt, then
    ecg-keras --help / data synthetic / train / export savedmodel / export release and
    pretrained() over HTTP from 127.0.0.1, then from the cache with the server stopped.

    Slow: CI (.ci/run) runs the same script after the default suite, on Python 3.13 and from a
    freshly built sdist and wheel; the default suite checks the wheel's contents and metadata."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "wheel_smoke.py"), "--python", sys.executable,
                           "--wheel", str(wheel), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "wheel smoke passed" in proc.stdout

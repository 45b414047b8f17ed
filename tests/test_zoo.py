import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

import ecg_keras
from ecg_keras import models
from ecg_keras.standardize import Standardizer
from ecg_keras.export.release import release_run
from ecg_keras.zoo import RELEASED_DIR, ChecksumError, read_manifest


def _fake_run(run_dir, dataset="ptbxl-synthetic", synthetic=True):
    run_dir.mkdir(parents=True)
    model = models.get("fcn_wang", num_classes=3)
    model.save(run_dir / "model.keras")
    (run_dir / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": "rhythm", "dataset": dataset,
                                                     "synthetic": synthetic, "sampling_rate": 100, "epochs": 1}))
    (run_dir / "classes.json").write_text(json.dumps(["AFIB", "SBRAD", "SR"]))
    Standardizer(mean=0.01, std=0.2).save(run_dir / "standardizer.json")
    (run_dir / "metrics.json").write_text(json.dumps({"test": {"macro_auc": 0.75}}))
    return model


@pytest.fixture()
def http_dir():
    servers = []

    def serve(directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for s in servers:
        s.shutdown()


def test_release_serve_and_load_through_url_bit_identical(tmp_path, http_dir, trained_run, capsys):
    from export.__main__ import main

    release_dir = tmp_path / "release"
    assert main(["release", str(trained_run), "--name", "fcn_wang_rhythm_demo",
                 "--models-dir", str(release_dir)]) == 0
    assert "released fcn_wang_rhythm_demo" in capsys.readouterr().out
    entry = read_manifest(release_dir)[0]
    classes = json.loads((trained_run / "classes.json").read_text())
    assert entry["training_data"] == "synthetic" and entry["classes"] == classes
    assert entry["metrics"]["test"]["macro_auc"] == json.loads((trained_run / "metrics.json").read_text())["test"]["macro_auc"]
    original = keras.saving.load_model(trained_run / "model.keras", compile=False)
    assert (release_dir / "fcn_wang_rhythm_demo.md").read_text().count("SYNTHETIC") == 1
    assert ecg_keras.list_pretrained(release_dir) == ["fcn_wang_rhythm_demo"]

    client = tmp_path / "client"  # manifest only: the weights must come over HTTP
    client.mkdir()
    shutil.copy(release_dir / "MANIFEST.json", client)
    url = http_dir(release_dir)
    model = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", models_directory=client,
                                 base_url=url, cache_dir=tmp_path / "cache")
    assert model.ecg_info.classes == tuple(classes)
    assert model.ecg_info.standardizer == Standardizer.load(trained_run / "standardizer.json")
    x = np.random.default_rng(0).normal(size=(4, 250, 12)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), original.predict(x, verbose=0))

    backbone = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", include_top=False,
                                    models_directory=client, base_url=url, cache_dir=tmp_path / "cache")
    assert backbone.output_shape == (None, 256)  # concat pooling of fcn_wang's last 128 channels
    same = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", num_classes=len(classes),
                                models_directory=client, base_url=url, cache_dir=tmp_path / "cache")
    assert same.output_shape == (None, len(classes))
    assert models.replace_head(same, 9).output_shape == (None, 9)  # a new output layer (keras.applications rule)

    # one modified byte on the server: loading fails with the checksum error
    weights = release_dir / entry["file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="hash|sha256"):
        ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", models_directory=client,
                             base_url=url, cache_dir=tmp_path / "cache2")
    # and a tampered local file is caught too
    with pytest.raises(ChecksumError, match="does not match"):
        ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=str(release_dir))


def test_missing_model_and_synthetic_release_into_repo_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no released model"):
        ecg_keras.pretrained(arch="xresnet1d101", task="all", weights="ptbxl", models_directory=tmp_path)
    _fake_run(tmp_path / "run")
    before = read_manifest(RELEASED_DIR)
    with pytest.raises(ValueError, match="synthetic data.*--validate"):
        release_run(tmp_path / "run", "demo", models_directory=RELEASED_DIR)
    assert read_manifest(RELEASED_DIR) == before


def _release(tmp_path, name="demo", **kw):
    if not (tmp_path / "run").exists():
        _fake_run(tmp_path / "run")
    return release_run(tmp_path / "run", name, models_directory=tmp_path / "release", **kw)


def test_manifest_file_outside_its_directory_is_refused_and_deletes_nothing(tmp_path, monkeypatch):
    """A tampered manifest with ``file: ../../victim`` and a wrong sha256, no server reachable."""
    home = tmp_path / "home"
    (home / ".ecg_keras" / "models").mkdir(parents=True)
    victim = home / "victim"
    victim.write_text("precious")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ECG_KERAS_WEIGHTS_URL", "http://127.0.0.1:9/unreachable")
    entry = _release(tmp_path)
    manifest = tmp_path / "client" / "MANIFEST.json"
    manifest.parent.mkdir()
    for bad in ("../../victim", "/etc/passwd", "sub/../../victim"):
        manifest.write_text(json.dumps({"models": [{**entry, "file": bad, "sha256": "0" * 64}]}))
        with pytest.raises(ValueError, match="file"):
            ecg_keras.pretrained(name="demo", weights=str(manifest.parent))
        with pytest.raises(ValueError, match="file"):
            from ecg_keras.zoo import resolve_weights

            resolve_weights({**entry, "file": bad}, manifest.parent)
    assert victim.read_text() == "precious"


def test_release_names_must_be_plain(tmp_path, capsys):
    from export.__main__ import main

    _fake_run(tmp_path / "run")
    for bad in ("../x", "a/b", "..", ".hidden", "", "x/../../y"):
        assert main(["release", str(tmp_path / "run"), "--name", bad, "--models-dir", str(tmp_path / "rel")]) == 1
        assert "invalid release name" in capsys.readouterr().err
    assert not (tmp_path / "rel").exists() and not (tmp_path / "x.keras").exists()


def test_pretrained_returns_exactly_the_requested_entry_or_raises(tmp_path):
    _release(tmp_path, "first")
    release = tmp_path / "release"
    with pytest.raises(ValueError, match="no released model for arch='xresnet1d101'"):
        ecg_keras.pretrained(arch="xresnet1d101", task="all", weights=str(release))
    assert ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=str(release)).ecg_info.name == "first"
    _release(tmp_path, "second")
    with pytest.raises(ValueError, match="2 released models match"):
        ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=str(release))
    assert ecg_keras.pretrained(name="second", weights=str(release)).ecg_info.name == "second"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="without MANIFEST.json"):
        ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=str(empty))


def test_manifest_entry_missing_fields_is_a_clear_error(tmp_path):
    entry = _release(tmp_path)
    manifest = tmp_path / "release" / "MANIFEST.json"
    manifest.write_text(json.dumps({"models": [{k: v for k, v in entry.items() if k not in ("sha256", "classes")}]}))
    with pytest.raises(ValueError, match="lacks classes, sha256"):
        ecg_keras.list_pretrained(tmp_path / "release")


def test_rerelease_needs_overwrite_and_a_failed_write_keeps_the_previous_release(tmp_path, monkeypatch):
    from ecg_keras.export import release as release_module

    first = _release(tmp_path)
    release = tmp_path / "release"
    before = {p.name: p.read_bytes() for p in release.iterdir()}
    with pytest.raises(FileExistsError, match="overwrite"):
        _release(tmp_path)

    def full_disk(src, dst):
        Path(dst).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(release_module.shutil, "copyfile", full_disk)
    with pytest.raises(OSError, match="No space"):
        _release(tmp_path, overwrite=True)
    assert {p.name: p.read_bytes() for p in release.iterdir()} == before  # no temporary file left either
    from ecg_keras.cli.export import main

    assert main(["release", str(tmp_path / "run"), "--name", "demo", "--models-dir", str(release), "--overwrite"]) == 1
    assert {p.name: p.read_bytes() for p in release.iterdir()} == before
    monkeypatch.undo()
    assert _release(tmp_path, overwrite=True)["sha256"] == first["sha256"]


def test_pretrained_weights_are_checked_as_keras_applications_does(tmp_path):
    """``weights``: None (with name=), a known data tag, a release directory, its MANIFEST.json or a listed
    weights file; anything else is keras.applications' ValueError, before any model is loaded."""
    entry = _release(tmp_path)
    release = tmp_path / "release"
    from ecg_keras.zoo import weight_tags

    assert weight_tags(release) == ["ptbxl", "synthetic"]
    for bad in ("imagenet", str(tmp_path / "missing"), str(tmp_path / "missing.keras"), 3):
        with pytest.raises(ValueError, match=r"The `weights` argument should be either .*a known tag \('ptbxl', "
                                             r"'synthetic'\).*Received: weights="):
            ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=bad, models_directory=release)
    stray = tmp_path / "stray.keras"
    shutil.copy(release / entry["file"], stray)
    with pytest.raises(ValueError, match="not listed in a MANIFEST.json beside it"):
        ecg_keras.pretrained(weights=str(stray))
    with pytest.raises(ValueError, match="pass weights="):
        ecg_keras.pretrained(weights=None)
    # the keras.applications rule: the released head has 3 classes
    with pytest.raises(ValueError, match=r"`num_classes` should be 3 \(the classes of demo\) or None. "
                                         r"Received: num_classes=9.*replace_head"):
        ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", num_classes=9, models_directory=release)
    assert ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", num_classes=9, include_top=False,
                                models_directory=release).output_shape == (None, 256)
    # valid paths: the weights file itself (its entry, whatever arch and task say), the manifest, the directory
    for weights in (release / entry["file"], str(release / "MANIFEST.json"), str(release)):
        model = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights=weights)
        assert model.ecg_info.name == "demo" and model.output_shape == (None, 3)
    assert ecg_keras.pretrained(weights=release / entry["file"]).ecg_info.name == "demo"

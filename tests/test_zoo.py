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
from ecg_keras.zoo import REPO_MODELS_DIR, ChecksumError, read_manifest, release_run


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


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A short real training run (fcn_wang, 1 epoch) on a small synthetic PTB-XL."""
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl
    from ecg_keras.training import TrainConfig, train

    data = generate_synthetic_ptbxl(tmp_path_factory.mktemp("data") / "syn", n_records=60, seed=0,
                                    sampling_rates=(100,), progress=False)
    return Path(train(TrainConfig(task="rhythm", dataset="synthetic", data_dir=str(data), arch="fcn_wang",
                                  epochs=1, batch_size=16, verbose=0,
                                  output=str(tmp_path_factory.mktemp("runs") / "run"))))


def test_release_serve_and_load_through_url_bit_identical(tmp_path, http_dir, synthetic_run, capsys):
    from export.__main__ import main

    release_dir = tmp_path / "release"
    assert main(["release", str(synthetic_run), "--name", "fcn_wang_rhythm_demo",
                 "--models-dir", str(release_dir)]) == 0
    assert "released fcn_wang_rhythm_demo" in capsys.readouterr().out
    entry = read_manifest(release_dir)[0]
    classes = json.loads((synthetic_run / "classes.json").read_text())
    assert entry["training_data"] == "synthetic" and entry["classes"] == classes
    assert entry["metrics"]["test"]["macro_auc"] == json.loads((synthetic_run / "metrics.json").read_text())["test"]["macro_auc"]
    original = keras.saving.load_model(synthetic_run / "model.keras", compile=False)
    assert (release_dir / "fcn_wang_rhythm_demo.md").read_text().count("SYNTHETIC") == 1
    assert ecg_keras.list_pretrained(release_dir) == ["fcn_wang_rhythm_demo"]

    client = tmp_path / "client"  # manifest only: the weights must come over HTTP
    client.mkdir()
    shutil.copy(release_dir / "MANIFEST.json", client)
    url = http_dir(release_dir)
    model = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", models_directory=client,
                                 base_url=url, cache_dir=tmp_path / "cache")
    assert model.ecg_info.classes == tuple(classes)
    assert model.ecg_info.standardizer == Standardizer.load(synthetic_run / "standardizer.json")
    x = np.random.default_rng(0).normal(size=(4, 250, 12)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), original.predict(x, verbose=0))

    backbone = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", include_top=False,
                                    models_directory=client, base_url=url, cache_dir=tmp_path / "cache")
    assert backbone.output_shape == (None, 256)  # concat pooling of fcn_wang's last 128 channels
    new_head = ecg_keras.pretrained(arch="fcn_wang", task="rhythm", weights="synthetic", num_classes=9,
                                    models_directory=client, base_url=url, cache_dir=tmp_path / "cache")
    assert new_head.output_shape == (None, 9)

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
    with pytest.raises(ValueError, match="synthetic"):
        release_run(tmp_path / "run", "demo", directory=REPO_MODELS_DIR)
    assert all(not e.get("synthetic") for e in read_manifest(REPO_MODELS_DIR))

"""The Python API (``ecg_keras.load(...).predict(arrays, fs=...)``), presets and hub handles,
``list_models(pretrained=True)`` and the argument checks made before TensorFlow starts.

The model is an untrained fcn_wang run directory (random weights, seed 0): what matters is that
every path gives the command line's probabilities.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ecg_keras
from conftest import REPO, RHYTHM_CLASSES, beat_signal, shared_path
from ecg_keras import models
from ecg_keras.datasets.base import DataError
from ecg_keras.io.records import LEAD_NAMES
from ecg_keras.cli.predict import main

CLASSES = RHYTHM_CLASSES


_signal = beat_signal


@pytest.fixture(scope="module")
def run(untrained_run) -> Path:
    return untrained_run


@pytest.fixture(scope="module")
def model(run):
    return ecg_keras.load(run)


@pytest.fixture(scope="module")
def preset(run, tmp_path_factory) -> Path:
    return ecg_keras.save_preset(run, tmp_path_factory.mktemp("presets") / "fcn-demo", name="fcn-demo")


def test_ludb_record_1_from_an_array_gives_the_command_lines_probabilities(run, model, tmp_path):
    import wfdb

    record = shared_path("ludb-1.0.1", "data", "1.hea").with_suffix("")
    x, fields = wfdb.rdsamp(str(record))
    assert fields["fs"] == 500
    assert main([str(run), str(record), "--out", str(tmp_path / "cli.json"), "--no-progress"]) == 0
    cli = json.loads((tmp_path / "cli.json").read_text())["records"][0]["probabilities"]
    frame = model.predict(x, fs=500)
    assert list(frame.columns) == CLASSES and list(frame.index) == ["record 0"]
    np.testing.assert_allclose(frame.loc["record 0", CLASSES].to_numpy(float), [cli[c] for c in CLASSES],
                               rtol=0, atol=1e-6)
    # the rate matters: the same samples declared as 100 Hz are another (wrong) input, never silently assumed
    assert not np.allclose(model.predict(x, fs=100).to_numpy(), frame.to_numpy(), atol=1e-6)
    with pytest.raises(TypeError, match="fs"):
        model.predict(x)  # noqa: the keyword-only fs has no default
    for bad in (0, -500, float("nan"), "fast"):
        with pytest.raises(ValueError, match="fs"):
            model.predict(x, fs=bad)


def test_lists_leads_by_name_and_the_checks_of_the_command_line(model):
    a, b = _signal(seed=1), _signal(seconds=7.3, seed=2)
    frame = model.predict([a, b], fs=500, names=["a", "b"])
    assert list(frame.index) == ["a", "b"] and frame.notna().all().all()
    assert frame.attrs["model"]["synthetic"] is True and frame.attrs["model"]["classes"] == CLASSES
    order = np.random.default_rng(0).permutation(12)
    shuffled = model.predict(a[:, order], fs=500, leads=[LEAD_NAMES[j] for j in order])
    np.testing.assert_allclose(shuffled.to_numpy(), frame.loc[["a"]].to_numpy(), atol=1e-7)
    with pytest.raises(DataError, match="12 columns but 11 lead names"):
        model.predict(a, fs=500, leads=LEAD_NAMES[:11])
    bad = a.copy()
    bad[100, 7] = np.nan
    with pytest.raises(DataError, match=r"record 1: non-finite samples \(NaN/Inf\) in lead\(s\) V2"):
        model.predict([a, bad], fs=500)
    marked = model.predict([a, bad], fs=500, errors="nan")
    assert marked.loc["record 0"].notna().all() and marked.loc["record 1"].isna().all()
    assert "V2" in marked.attrs["problems"]["record 1"]
    with pytest.raises(DataError, match="flat line"):
        model.predict(np.zeros((5000, 12)), fs=500)


def test_transposed_array_is_refused_with_a_hint(model):
    with pytest.raises(DataError, match="pass signal.T"):
        model.predict(_signal().T.copy(), fs=500)


def test_preset_round_trip_and_keras_builder(run, model, preset):
    files = sorted(p.name for p in preset.iterdir())
    assert files == ["README.md", "config.json", "metadata.json", "model.weights.h5", "preprocessor.json"]
    meta = json.loads((preset / "metadata.json").read_text())
    spec = json.loads((preset / "preprocessor.json").read_text())
    assert meta["name"] == "fcn-demo" and meta["config"]["arch"] == "fcn_wang"
    assert spec["classes"] == CLASSES and spec["sampling_rate"] == 100 and spec["window"] == 250
    assert "SYNTHETIC" in (preset / "README.md").read_text()
    signals = [_signal(seed=3), _signal(seconds=4.0, seed=4)]
    loaded = ecg_keras.load(preset)
    assert loaded.identity["kind"] == "preset" and loaded.identity["name"] == "fcn-demo"
    np.testing.assert_array_equal(loaded.predict(signals, fs=250).to_numpy(), model.predict(signals, fs=250).to_numpy())
    keras_model = ecg_keras.pretrained(weights=str(preset))
    assert keras_model.ecg_info.classes == tuple(CLASSES) and keras_model.ecg_info.window == 250
    assert keras_model.output_shape == (None, len(CLASSES))
    backbone = ecg_keras.pretrained(str(preset), include_top=False)
    assert backbone.output_shape == models.backbone(keras_model).output_shape
    with pytest.raises(FileExistsError):
        ecg_keras.save_preset(run, preset)
    from ecg_keras.runs import resolve

    kwargs = resolve(preset).export_kwargs()  # export takes a preset as its source
    assert kwargs["classes"] == CLASSES and kwargs["aggregation"] == "max" and kwargs["activation"] == "sigmoid"
    assert kwargs["extra"]["arch"] == "fcn_wang" and kwargs["sampling_rate"] == 100


def test_preset_with_wrong_sha256_is_refused(preset, tmp_path):
    from ecg_keras.zoo import ChecksumError

    bad = Path(shutil.copytree(preset, tmp_path / "bad"))
    weights = bad / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.weights.h5: sha256 .* does not match"):
        ecg_keras.load(bad)
    with pytest.raises(ChecksumError):
        ecg_keras.pretrained(weights=str(bad))
    meta = json.loads((preset / "metadata.json").read_text())
    del meta["sha256"]["preprocessor.json"]
    shutil.copy(preset / "model.weights.h5", weights)
    (bad / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no sha256 recorded for preprocessor.json"):
        ecg_keras.load(bad)


def _hf_cache(cache: Path, repo_id: str, preset: Path) -> Path:
    """``preset`` laid out as huggingface_hub's cache stores a snapshot (blobs, refs/main, snapshots/<commit>)."""
    import hashlib

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for f in preset.iterdir():
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_hf_handle_from_the_local_cache_with_the_network_off(model, preset, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    _hf_cache(cache, "someone/fcn-demo", preset)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    x = _signal(seed=5)
    got = ecg_keras.load("hf://someone/fcn-demo")
    assert got.identity["name"] == "fcn-demo"
    np.testing.assert_array_equal(got.predict(x, fs=500).to_numpy(), model.predict(x, fs=500).to_numpy())
    assert ecg_keras.pretrained("hf://someone/fcn-demo").ecg_info.classes == tuple(CLASSES)
    with pytest.raises(ValueError, match="hf://someone/missing: cannot fetch"):
        ecg_keras.load("hf://someone/missing")
    with pytest.raises(ValueError, match="hf://owner/name"):
        ecg_keras.load("hf://no-owner")


def test_savedmodel_export_directory_is_accepted_as_written(model, untrained_exports):
    version = untrained_exports["savedmodel"]  # serving/ecg/1 of the run's export
    assert version.parts[-3:] == ("serving", "ecg", "1")
    x = _signal(seed=6)
    for source in (version.parents[1], version.parent, version):
        got = ecg_keras.load(source)
        assert got.identity["kind"] == "savedmodel"
        np.testing.assert_allclose(got.predict(x, fs=500).to_numpy(), model.predict(x, fs=500).to_numpy(), atol=1e-5)


def test_tflite_export_is_read_by_predict(model, untrained_exports):
    pytest.importorskip("ai_edge_litert")
    path = untrained_exports["litert_window"]
    x = [_signal(seed=7), _signal(seconds=3.1, seed=8)]
    got = ecg_keras.load(path)
    assert got.identity["kind"] == "litert" and got.classes == CLASSES
    np.testing.assert_allclose(got.predict(x, fs=500).to_numpy(), model.predict(x, fs=500).to_numpy(), atol=1e-5)


def test_list_models_pretrained_as_in_timm(run, tmp_path, monkeypatch):
    from ecg_keras.export import release_run

    assert ecg_keras.list_models() == models.list_models()
    assert ecg_keras.list_models("xresnet*") == [m for m in models.list_models() if m.startswith("xresnet")]
    release_run(run, "tiny-demo", models_directory=tmp_path / "models")
    monkeypatch.setenv("ECG_KERAS_MODELS_DIR", str(tmp_path / "models"))
    assert ecg_keras.list_models(pretrained=True) == ["fcn_wang"]
    assert ecg_keras.list_models("x*", pretrained=True) == []


def test_unknown_names_are_refused_before_tensorflow_starts():
    """``ecg-keras train --arch fcn_wnag``: exit 2 naming fcn_wang, without importing TensorFlow."""
    code = ("import resource, sys\nfrom ecg_keras.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, code)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for args, hint in ((["--arch", "fcn_wnag"], "did you mean 'fcn_wang'?"),
                       (["--task", "rhytm"], "did you mean 'rhythm'?"),
                       (["--experiment", "x", "--archs", "fcn_wang,resnet1d_wnag"], "did you mean 'resnet1d_wang'?")):
        before = os.times()
        out = subprocess.run([sys.executable, "-c", code, "train", *args], capture_output=True, text=True, env=env,
                             timeout=60)
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        assert hint in out.stderr, out.stderr
        assert out.stdout.split() == ["False", "False", "2"], out.stdout
        assert cpu < 2.0, f"{cpu:.2f} s of CPU to refuse {args}"  # wall time on a loaded machine is noise


def test_long_description_reads_on_its_own_and_release_workflow_builds_from_a_tag():
    import configparser
    import re

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    name = cfg["metadata"]["long_description"].removeprefix("file:").strip()
    text = (REPO / name).read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all(link.startswith("https://") for link in links), links
    first_block = text.split("```")[1]
    assert "pip install" in first_block and "ecg-keras train" in first_block and "scripts/" not in text
    assert name in (REPO / "MANIFEST.in").read_text()  # the sdist builds the same description
    workflow = (REPO / ".github" / "workflows" / "release.yml").read_text()
    assert 'tags: ["v*"]' in workflow and "python -m build" in workflow and "twine check" in workflow
    readme = (REPO / "README.md").read_text()
    assert readme.startswith("# ecg_keras\n\n```bash\nbash scripts/demo.sh ")
    assert [line.split()[:2] for line in readme.split("```")[1].splitlines()[1:]] == [
        ["bash", "scripts/demo.sh"], ["bash", "scripts/test.sh"]]
    assert "datacloud.hhi.fraunhofer.de" in readme  # the reference's trained checkpoints, for export from-torch


def test_finetuning_on_ludb_reports_the_classes_and_records_it_drops():
    from ecg_keras.training.transfer import ludb_rhythm_task

    said = []
    td = ludb_rhythm_task(shared_path("ludb-1.0.1"), sampling_rate=100, log=said.append)
    (line,) = said
    assert "200 records" in line and "Sinus tachycardia (4)" in line and "4 record(s) left without a class dropped" in line
    assert f"{len(td)} records, {len(td.classes)} classes" in line and len(td) == 196


def test_model_card_prints_counts_as_integers():
    from ecg_keras.export.release import model_card

    entry = {"name": "m", "synthetic": False, "arch": "fcn_wang", "task": "rhythm", "classes": CLASSES,
             "training_data": "ludb", "sampling_rate": 100, "window": 250, "standardizer": {"mean": 0.0, "std": 1.0},
             "license": "CC-BY-4.0", "sha256": "0" * 64,
             "metrics": {"test": {"macro_auc": 1.0, "n_records": 200.0, "n_classes": 5}}}
    card = model_card(entry, {})
    assert "| test | n_records | 200 |" in card and "| test | n_classes | 5 |" in card
    assert "| test | macro_auc | 1.0000 |" in card


def test_saved_model_carries_its_preprocessing_and_says_to_import_ecg_keras(run, tmp_path):
    """model.keras as runs write it (RunDir.save_model): keras.saving.load_model after ``import ecg_keras``
    gives a model that knows its preprocessing; without the import, Keras's error says to import it."""
    from ecg_keras.preprocessing import preprocessing_spec
    from ecg_keras.runs import resolve
    from ecg_keras.training.rundir import RunDir

    source = resolve(run)
    spec = preprocessing_spec(classes=CLASSES, standardizer=source.standardizer, sampling_rate=100, window=250,
                              aggregation="max", activation="sigmoid")
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    path = RunDir(copy).save_model(source.model, spec)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    code = ("import sys, keras\ntry:\n    keras.saving.load_model(sys.argv[1])\nexcept Exception as e:\n"
            "    print(type(e).__name__, str(e)[:600])\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert "import ecg_keras" in out.stdout, out.stdout + out.stderr[-2000:]
    import keras

    loaded = keras.saving.load_model(path, compile=False)
    assert isinstance(loaded, models.ECGClassifier) and models.preprocessing_of(loaded) == spec
    x = np.random.default_rng(0).standard_normal((2, 250, 12)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), source.model.predict(x, verbose=0), atol=1e-6)
    assert resolve(copy).preprocessing == spec
    assert models.preprocessing_of(models.fold_batchnorm(loaded)) is None  # inference copies are plain graphs
    assert loaded.input_shape == source.model.input_shape and models.as_conv2d(loaded) is not None  # ONNX's 2-D form

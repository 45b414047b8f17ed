"""The model artefact: file names and manifest schema in one module, a released name's manifest read
once, and a bare ``model.keras`` (copied alone into an empty folder) that predict, export and
evaluate take their preprocessing from; ``weights=`` means the same in models.get and pretrained()."""
import json
import shutil

import numpy as np
import pytest
from conftest import beat_signal

import ecg_keras
from ecg_keras import artefact, models, runs, zoo
from ecg_keras.cli import main as ecg_keras_command

KEYS = ("classes", "standardizer", "sampling_rate", "window", "stride", "aggregation", "activation")


@pytest.fixture(scope="module")
def bare(trained_run, tmp_path_factory):
    """The trained run's model.keras, alone in an empty folder."""
    folder = tmp_path_factory.mktemp("bare")
    return shutil.copyfile(trained_run / artefact.MODEL, folder / artefact.MODEL)


def test_names_and_schema_have_one_home():
    assert runs.RUN_FILES is artefact.RUN_FILES and runs.PRESET_FILES is artefact.PRESET_FILES
    assert zoo.MANIFEST is artefact.MANIFEST and zoo.ManifestError is artefact.ManifestError
    assert set(artefact.REQUIRED_FIELDS) <= set(artefact.MANIFEST_FIELDS)
    from ecg_keras.training import rundir

    assert issubclass(rundir.RunDir, artefact.RunDir) and rundir.COMPLETE == artefact.COMPLETE
    with pytest.raises(artefact.ManifestError, match="lacks sha256"):
        artefact.manifest_text([{k: "x" for k in artefact.REQUIRED_FIELDS if k != "sha256"}])


def test_keras_load_model_gives_the_preprocessing(bare, trained_run):
    import keras

    model = keras.saving.load_model(bare, compile=False)
    spec = model.preprocessing
    assert set(KEYS) <= set(spec)
    run = runs.resolve(trained_run)
    assert spec["classes"] == run.classes and spec["sampling_rate"] == run.sampling_rate == 100
    assert spec["standardizer"] == run.standardizer.to_dict()
    assert spec["window"] == 250 and spec["stride"] == 125
    assert spec["aggregation"] == run.aggregation and spec["activation"] == run.activation == "sigmoid"


def test_resolve_a_bare_model_file_or_a_folder_holding_only_it(bare, trained_run):
    run, folder = runs.resolve(bare), runs.resolve(bare.parent)
    full = runs.resolve(trained_run)
    for r in (run, folder):
        assert r.check_complete() is r and r.model_file == bare
        assert r.classes == full.classes and r.standardizer == full.standardizer
        assert (r.sampling_rate, r.aggregation, r.activation) == (full.sampling_rate, full.aggregation, full.activation)
    kwargs, expected = run.export_kwargs(), full.export_kwargs()
    assert {k: kwargs[k] for k in KEYS if k in kwargs} == {k: expected[k] for k in KEYS if k in expected}
    with pytest.raises(runs.RunFileMissing, match="model file"):
        run.predictions("test")


def test_a_model_without_preprocessing_is_refused_by_name(tmp_path):
    path = tmp_path / "plain.keras"
    models.get("fcn_wang", num_classes=3).save(path)
    with pytest.raises(runs.RunError, match="carries no preprocessing"):
        runs.resolve(path).classes


def test_predict_from_the_bare_file(bare, trained_run):
    signals = [beat_signal(10, 100, seed=s) for s in range(3)]
    got = ecg_keras.load(bare).predict(signals, fs=100)
    want = ecg_keras.load(trained_run).predict(signals, fs=100)
    assert list(got.columns) == list(want.columns) and len(got) == 3
    np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), atol=1e-6)
    same_folder = ecg_keras.load(bare.parent).predict(signals, fs=100)
    np.testing.assert_allclose(same_folder.to_numpy(float), want.to_numpy(float), atol=1e-6)


def test_export_from_the_bare_file(bare, trained_run, tmp_path):
    from ecg_keras.export.onnx import inference_session, read_metadata

    out = tmp_path / "bare.onnx"
    assert ecg_keras_command(["export", "onnx", str(bare), "--out", str(out)]) == 0
    spec = read_metadata(inference_session(out))
    run = runs.resolve(trained_run)
    assert spec["classes"] == run.classes and int(spec["sampling_rate"]) == 100
    signals = [beat_signal(10, 100, seed=1)]
    np.testing.assert_allclose(ecg_keras.load(out).predict(signals, fs=100).to_numpy(float),
                               ecg_keras.load(bare).predict(signals, fs=100).to_numpy(float), atol=1e-4)


def test_evaluate_from_the_bare_file(bare, trained_run, tmp_path, capsys):
    from test_validation import write_ludb

    folder = write_ludb(tmp_path / "ludb-like")
    scores = []
    for source, out in ((bare, tmp_path / "a"), (trained_run, tmp_path / "b")):
        assert ecg_keras_command(["evaluate", str(source), "--dataset", str(folder), "--out", str(out),
                                         "--bootstrap", "20"]) == 0
        scores.append(json.loads((out / "validation_ludb-like.json").read_text())["classes"])
    assert scores[0] == scores[1] and set(scores[0]) == set(runs.resolve(trained_run).classes)


def test_a_released_name_reads_its_manifest_once(trained_run, tmp_path, monkeypatch):
    from ecg_keras.export import release_run

    release = tmp_path / "models"
    release_run(trained_run, "demo", models_directory=release)
    calls = []
    real = artefact.read_manifest
    monkeypatch.setattr(artefact, "read_manifest", lambda d: calls.append(d) or real(d))
    frame = ecg_keras.load("demo", models_directory=release).predict([beat_signal(10, 100)], fs=100)
    assert len(calls) == 1 and frame.shape == (1, len(runs.resolve(trained_run).classes))


def test_weights_means_the_same_in_builders_and_pretrained(bare, trained_run, tmp_path):
    """``weights=`` is where the weights come from: None or a file in both; pretrained() also takes what only
    a release names (tags, release directories), and a .keras file needs no manifest when it carries its preprocessing."""
    built = models.get("fcn_wang", num_classes=len(runs.resolve(trained_run).classes), weights=bare)
    released = ecg_keras.pretrained(weights=bare)
    assert released.preprocessing == models.preprocessing_of(released) and released.ecg_info.classes == tuple(
        runs.resolve(trained_run).classes)
    x = np.random.default_rng(0).standard_normal((2, 250, 12)).astype("float32")
    np.testing.assert_allclose(built.predict(x, verbose=0), released.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        ecg_keras.pretrained(weights=bare, num_classes=3)
    plain = tmp_path / "plain.keras"
    models.get("fcn_wang", num_classes=5).save(plain)
    with pytest.raises(ValueError, match="carries no preprocessing"):
        ecg_keras.pretrained(weights=plain)
    for bad in ("not-a-tag-or-file", 3):
        with pytest.raises(ValueError, match="The `weights` argument should be either"):
            models.get("fcn_wang", num_classes=5, weights=bad)
        with pytest.raises(ValueError, match="The `weights` argument should be either"):
            ecg_keras.pretrained(weights=bad)

"""Scoring models on real labelled folders (``ecg-keras evaluate MODEL --dataset FOLDER``), the
label maps behind it, and releases that carry such a validation in their card."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from ptbxl_fixture import record_signal, write_record

from ecg_keras import statements, zoo
from ecg_keras.datasets import labelmap
from ecg_keras.datasets.base import DataError
from ecg_keras.datasets.synthetic import RHYTHM_MIX
from ecg_keras.datasets.wfdb_folder import ludb_rhythms
from ecg_keras.cli import evaluate as evaluate_cli
from ecg_keras.evaluation.metrics import per_class_auc
from ecg_keras.evaluation.validation import Validation, class_scores, label_matrix, validate
from ecg_keras.export.release import SYNTHETIC_NOTICE, release_run

CLASSES = ["AFIB", "SARRH", "SBRAD", "SR", "STACH"]  # the classes of the oracle predictor (ScoresFromLabels)
RUN_CLASSES = sorted(RHYTHM_MIX)  # the rhythm classes of the synthetic set (trained_run)
LUDB_ROWS = ["Sinus rhythm", "Sinus rhythm", "Sinus rhythm", "Sinus bradycardia", "Sinus bradycardia",
             "Atrial fibrillation", "Atrial fibrillation\nAberrant conduction",
             "Sinus rhythm\nWandering atrial pacemaker", "Atrial flutter, typical", "Irregular sinus rhythm"]


def write_ludb(root, rows=LUDB_ROWS):
    """``rows`` as a folder in LUDB 1.0.1's layout: ludb.csv + data/N.hea/.dat (500 Hz, 10 s, lower-case leads)."""
    leads = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6"]
    for i in range(1, len(rows) + 1):
        write_record(root / "data" / str(i), record_signal(i, 500), 500, lead_names=leads)
    pd.DataFrame({"ID": range(1, len(rows) + 1), "Sex": "F", "Age": 50, "Rhythms": rows}).to_csv(
        root / "ludb.csv", index=False)
    return root


def write_cinc(root, dx):
    """One CinC-layout WFDB record per entry of ``dx`` (its ``# Dx:`` codes), 500 Hz."""
    for i, codes in enumerate(dx):
        write_record(root / f"E{i:05d}", record_signal(i, 500), 500, comments=["Age: 60", "Sex: Male", f"Dx: {codes}"])
    return root


class ScoresFromLabels:
    """A predictor that answers each record's own label column (plus noise on the last class)."""

    name, classes, sampling_rate = "oracle", CLASSES, 100

    def __init__(self, y):
        self.y = y

    def __call__(self, signals):
        assert len(signals) == len(self.y) and signals[0].shape == (1000, 12)
        return self.y


def test_label_maps_name_scp_statements_and_read_every_vocabulary():
    codes = {s.code for s in statements.STATEMENTS}
    assert set(labelmap.SNOMED_CT.values()) <= codes and set(labelmap.LUDB_RHYTHMS.values()) <= codes
    assert labelmap.to_scp(["Sinus rhythm", "Wandering atrial pacemaker"]) == ({"SR"}, ["Wandering atrial pacemaker"])
    assert labelmap.to_scp(["Atrial flutter, typical", "426177001", "AFIB", "39732003"]) == (
        {"AFLT", "SBRAD", "AFIB"}, ["39732003"])
    assert labelmap.scp_code("sinus TACHYCARDIA") == "STACH" and labelmap.scp_code("Sinus rhythmic") is None
    y, unmapped = label_matrix([["164889003", "164934002"], ["Irregular sinus rhythm"], []], CLASSES)
    assert y.tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert unmapped == {"TAB_": 1}  # mapped, but not a class of this model


def test_class_scores_match_auc_and_report_absent_classes_as_na():
    rng = np.random.default_rng(0)
    y = np.zeros((40, 3))
    y[:10, 0] = 1
    y[::4, 2] = 1
    p = np.clip(y * 0.6 + rng.uniform(0, 0.5, y.shape), 0, 1)
    table = class_scores(y, p, n_bootstrap=200, seed=1)
    assert table["n_positive"].tolist() == [10, 0, 10]
    assert np.isnan(table.loc[1, "auc"]) and np.isnan(table.loc[1, "lower"])
    expected = per_class_auc(y[:, [0, 2]], p[:, [0, 2]])
    np.testing.assert_allclose(table.loc[[0, 2], "auc"], expected)
    assert (table.loc[[0, 2], "lower"] <= table.loc[[0, 2], "auc"]).all()
    assert (table.loc[[0, 2], "upper"] >= table.loc[[0, 2], "auc"]).all()
    assert table.loc[0, "lower"] < table.loc[0, "upper"] or table.loc[0, "auc"] == 1.0
    assert class_scores(y, p, n_bootstrap=200, seed=1).equals(table)  # deterministic given the seed


def test_validate_maps_ludb_rhythms_onto_the_model_classes(tmp_path):
    folder = write_ludb(tmp_path / "ludb-like")
    y = np.array([[0, 0, 0, 1, 0]] * 3 + [[0, 0, 1, 0, 0]] * 2 + [[1, 0, 0, 0, 0]] * 2 + [[0, 0, 0, 1, 0]]
                 + [[0, 0, 0, 0, 0]] + [[0, 1, 0, 0, 0]], dtype=float)
    result = validate(ScoresFromLabels(y), folder, n_bootstrap=50, cache_dir=False)
    assert result.labels == "ludb" and result.n_records == 10 and result.dataset == "ludb-like"
    assert result.table["n_positive"].to_dict() == {"AFIB": 2, "SARRH": 1, "SBRAD": 2, "SR": 4, "STACH": 0}
    assert result.table.loc[["AFIB", "SBRAD", "SR", "SARRH"], "auc"].tolist() == [1.0] * 4
    assert np.isnan(result.table.loc["STACH", "auc"])
    assert result.unmapped == {"AFLT": 1, "Aberrant conduction": 1, "Wandering atrial pacemaker": 1}
    rows = [line.split() for line in result.format().splitlines()]
    assert ["SR", "1.000", "1.000-1.000", "4"] in rows and ["STACH", "n/a", "0"] in rows
    assert Validation.from_dict(json.loads(json.dumps(result.to_dict()))).table.equals(result.table)


def test_validate_reads_cinc_dx_headers_and_label_tables(tmp_path):
    dx = ["426783006", "426783006,164934002", "164889003", "427084000,284470004", "426177001", "39732003"]
    folder = write_cinc(tmp_path / "cinc", dx)
    y = np.array([[0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 1, 0, 0],
                  [0, 0, 0, 0, 0]], dtype=float)
    y_scores = y.copy()
    y_scores[:, 3] = 1 - y[:, 3]  # SR scored backwards: AUC 0
    result = validate(ScoresFromLabels(y_scores), folder, n_bootstrap=50, cache_dir=False)
    assert result.labels == "cinc-dx"
    assert result.table["n_positive"].to_dict() == {"AFIB": 1, "SARRH": 0, "SBRAD": 1, "SR": 2, "STACH": 1}
    assert result.table.loc["SR", "auc"] == 0.0 and result.table.loc["AFIB", "auc"] == 1.0
    assert result.unmapped == {"TAB_": 1, "PAC": 1, "39732003": 1}
    # a labels.csv in the folder takes precedence over the headers (here: the SCP codes themselves)
    pd.DataFrame({"record": [f"E{i:05d}" for i in range(6)],
                  "labels": ["SR", "SR", "SR", "STACH", "SBRAD;SARRH", "AFIB"]}).to_csv(folder / "labels.csv",
                                                                                      index=False)
    table = validate(ScoresFromLabels(y), folder, n_bootstrap=50, cache_dir=False)
    assert table.labels == "labels.csv"
    assert table.table["n_positive"].to_dict() == {"AFIB": 1, "SARRH": 1, "SBRAD": 1, "SR": 3, "STACH": 1}


def test_unlabelled_or_synthetic_folders_are_refused(tmp_path, data_env):
    write_record(tmp_path / "plain" / "r1", record_signal(1, 500), 500)
    with pytest.raises(DataError, match="no record has labels.*--labels"):
        validate(ScoresFromLabels(np.zeros((1, 5))), tmp_path / "plain", cache_dir=False)
    with pytest.raises(DataError, match="SYNTHETIC marker"):
        validate(ScoresFromLabels(np.zeros((1, 5))), data_env, cache_dir=False)


def test_evaluate_dataset_command_scores_a_run(trained_run, tmp_path, capsys):
    folder = write_ludb(tmp_path / "ludb-like")
    out = tmp_path / "out"
    assert evaluate_cli.main([str(trained_run), "--dataset", str(folder), "--out", str(out), "--bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    assert "on ludb-like (10 records, labels: ludb" in printed
    assert ["STACH", "n/a", "0"] in [line.split() for line in printed.splitlines()]
    scores = json.loads((out / "validation_ludb-like.json").read_text())
    assert scores["classes"]["SR"]["n_positive"] == 4 and scores["classes"]["STACH"]["auc"] is None
    assert 0.0 <= scores["classes"]["AFIB"]["auc"] <= 1.0
    frame = pd.read_csv(out / "validation_ludb-like.csv")
    assert frame["class"].tolist() == RUN_CLASSES and frame["n_positive"].dtype == np.int64
    # one MODEL only, and --labels without --dataset is a usage error
    with pytest.raises(SystemExit):
        evaluate_cli.main([str(trained_run), str(trained_run), "--dataset", str(folder)])
    with pytest.raises(SystemExit):
        evaluate_cli.main([str(trained_run), "--labels", "x.csv"])
    assert evaluate_cli.main([str(trained_run), "--dataset", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "error:" in capsys.readouterr().err


def test_ludb_labels_map_to_the_published_counts():
    """LUDB 1.0.1: 143 sinus rhythm, 25 sinus bradycardia, 15 atrial fibrillation, 8 sinus arrhythmia
    + 2 irregular sinus rhythm (SARRH), 4 sinus tachycardia, 3 atrial flutter."""
    table = pd.read_csv(shared_path("ludb-1.0.1", "ludb.csv"))
    y, unmapped = label_matrix([ludb_rhythms(v) for v in table["Rhythms"]], CLASSES + ["AFLT"])
    assert dict(zip(CLASSES + ["AFLT"], y.sum(axis=0).astype(int).tolist())) == {
        "AFIB": 15, "SARRH": 10, "SBRAD": 25, "SR": 143, "STACH": 4, "AFLT": 3}
    assert unmapped == {"Wandering atrial pacemaker": 3, "Aberrant conduction": 1}
    assert (y.sum(axis=1) == 1).all()  # exactly one rhythm class per record


def test_cinc_sample_dx_codes_map_to_rhythm_classes():
    from ecg_keras.datasets.wfdb_io import read_header_text

    folder = shared_path("cinc2021-sample")
    dx = [read_header_text(p.with_suffix("")).get("dx", []) for p in sorted(folder.glob("*.hea"))]
    y, _ = label_matrix(dx, CLASSES)
    assert len(dx) == 50
    assert dict(zip(CLASSES, y.sum(axis=0).astype(int).tolist())) == {
        "AFIB": 0, "SARRH": 1, "SBRAD": 7, "SR": 15, "STACH": 23}


# --------------------------------------------------------------------------- releases
def _checkout_zoo(tmp_path, monkeypatch):
    """A checkout's models/ (setup.cfg beside it) as the package's zoo."""
    (tmp_path / "repo" / "models").mkdir(parents=True)
    (tmp_path / "repo" / "setup.cfg").write_text("[metadata]\n")
    (tmp_path / "repo" / "models" / zoo.MANIFEST).write_text('{"models": []}')
    monkeypatch.setattr(zoo, "RELEASED_DIR", tmp_path / "repo" / "models")
    monkeypatch.delenv("ECG_KERAS_MODELS_DIR", raising=False)
    return zoo.RELEASED_DIR


def test_synthetic_release_into_the_zoo_needs_a_validation_which_its_card_shows(trained_run, tmp_path, monkeypatch):
    import ecg_keras

    models = _checkout_zoo(tmp_path, monkeypatch)
    assert zoo.in_checkout()
    with pytest.raises(ValueError, match="synthetic data.*only with a validation on real labelled records"):
        release_run(trained_run, "rhythm_demo")
    assert zoo.read_manifest(models) == [] and not (models / "rhythm_demo.keras").exists()

    folder = write_ludb(tmp_path / "ludb-like")
    entry = release_run(trained_run, "rhythm_demo", validate=[folder], n_bootstrap=50)
    (validation,) = entry["validation"]
    assert validation["model"] == "rhythm_demo" and validation["dataset"] == "ludb-like"
    assert validation["classes"]["SR"]["n_positive"] == 4 and validation["classes"]["STACH"]["auc"] is None
    card = (models / "rhythm_demo.md").read_text()
    assert f"**{SYNTHETIC_NOTICE}**" in card and "synthetic ecgs only; not for clinical use" in SYNTHETIC_NOTICE.lower()
    assert "## Validation on real ECGs (zero-shot)" in card and "### ludb-like: 10 records" in card
    assert "| class | AUC | 90% CI | n positive |" in card and "| STACH | n/a | | 0 |" in card
    sr = validation["classes"]["SR"]
    assert f"| SR | {sr['auc']:.3f} | {sr['lower']:.3f}-{sr['upper']:.3f} | 4 |" in card
    n_test = entry["metrics"]["test"]["n_records"]
    assert isinstance(n_test, int) and f"| test | n_records | {n_test} |" in card  # counts print as integers
    (listed,) = zoo.read_manifest(models)
    assert listed["validation"] == entry["validation"] and listed["synthetic"] is True

    # offline from the zoo: the weights beside the manifest, no URL to download from
    monkeypatch.setenv("ECG_KERAS_HOME", str(tmp_path / "empty-home"))
    model = ecg_keras.pretrained(name="rhythm_demo", weights=None)
    assert model.ecg_info.name == "rhythm_demo" and list(model.ecg_info.classes) == RUN_CLASSES
    assert not (tmp_path / "empty-home").exists()
    from ecg_keras.predict import load_model

    loaded = load_model("rhythm_demo")
    assert "SYNTHETIC ECGs only; validated zero-shot on real records (ludb-like: 10;" in loaded.describe()
    # the plots' red line says what is true of a validated release, read from its manifest entry
    assert loaded.caution() == ("trained on SYNTHETIC ECGs only; validated zero-shot on ludb-like (10 records), "
                                "see its card; not for clinical use")
    loaded.validation = []
    assert loaded.caution() == "SYNTHETIC-trained model: not for real ECGs"


def test_release_cli_validate_prints_the_table(trained_run, tmp_path, capsys):
    from ecg_keras.cli.export import main as export_main

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    folder = write_ludb(tmp_path / "ludb-like")
    assert export_main(["release", str(run), "--name", "demo", "--models-dir", str(tmp_path / "rel"),
                        "--validate", str(folder), "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "demo on ludb-like (10 records" in out and "released demo:" in out
    assert export_main(["release", str(run), "--name", "demo2", "--models-dir", str(tmp_path / "rel"),
                        "--validate", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert [e["name"] for e in zoo.read_manifest(tmp_path / "rel")] == ["demo"]

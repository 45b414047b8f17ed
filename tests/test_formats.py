"""Hospital export formats (issue #28): DICOM, HL7 aECG, GE MUSE, Philips, SCP-ECG, EDF, ISHNE.

The record is pydicom's real 12-lead ``waveform_ecg.dcm`` (1000 Hz, 10 s); the same int16 samples
are written in every other format by ``format_writers`` (edfio for EDF; the others from the
formats' published layouts, cited there) and must give the same probabilities.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from format_writers import LEADS, WRITERS, dicom_signal, write_edf, write_muse

from ecg_keras.datasets.base import DataError
from ecg_keras.io.formats import sniff
from ecg_keras.io.leads import canonical, complete
from ecg_keras.io.records import read_any
from ecg_keras.cli.predict import main
from ecg_keras.predict import predict

pydicom = pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def dcm(tmp_path_factory):
    from pydicom.data import get_testdata_file

    return get_testdata_file("waveform_ecg.dcm")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every format's file of the DICOM record's samples."""
    folder = tmp_path_factory.mktemp("exports")
    raw, uv, fs, leads = dicom_signal()
    return {k: write(folder / f"rec_{k}{suffix}", raw, uv, fs, leads) for k, (write, suffix) in WRITERS.items()}


def test_dicom_predicted_at_1000_hz_with_plot(trained_run, dcm, tmp_path, capsys):
    rec = read_any(dcm)
    assert rec.fs == 1000 and rec.signal.shape == (10000, 12) and rec.age == 42 and rec.sex == "F"
    assert canonical(rec.leads[0]) == "I"  # "Lead I (Einthoven)"
    assert np.abs(rec.signal).max() < 5  # uV converted to mV
    assert main([str(trained_run), str(dcm), "--plot", str(tmp_path / "plots"), "--out", str(tmp_path / "p.csv"),
                 "--no-progress"]) == 0
    row = pd.read_csv(tmp_path / "p.csv").iloc[0]
    assert row["valid"] and row["fs"] == 1000 and row["duration_s"] == 10
    (png,) = (tmp_path / "plots").glob("*.png")
    assert png.name == "waveform_ecg.png"  # the format's suffix is not part of the name
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


def test_every_format_gives_the_dicom_probabilities(trained_run, dcm, exports):
    frame = predict(trained_run, [dcm, *exports.values()], progress=False)
    assert frame["valid"].all(), frame["problem"].tolist()
    classes = frame.attrs["model"]["classes"]
    probs = frame[classes].to_numpy()
    np.testing.assert_allclose(probs[1:], np.repeat(probs[:1], len(exports), axis=0), atol=1e-5)
    assert (frame["fs"] == 1000).all()
    ref = read_any(dcm).signal
    for kind, path in exports.items():
        rec = read_any(path)
        np.testing.assert_allclose(rec.signal, ref, atol=1e-9, err_msg=kind)
        assert rec.sex == "F", kind
    assert read_any(exports["scp"]).age == read_any(exports["muse"]).age == 42


def test_format_recognised_from_content_not_extension(exports, tmp_path):
    expected = {"edf": "edf", "hl7": "xml", "muse": "xml", "philips": "xml", "scp": "scp", "ishne": "ishne"}
    for kind, path in exports.items():
        renamed = tmp_path / f"{kind}.dat"
        shutil.copy(path, renamed)
        assert sniff(renamed) == expected[kind]
        assert read_any(renamed).signal.shape == (10000, 12)
    bare = tmp_path / "noext"
    shutil.copy(exports["scp"], bare)
    assert read_any(bare).fs == 1000
    folder = tmp_path / "pacs"
    folder.mkdir()
    shutil.copy(exports["hl7"], folder / "ecg.xml")
    shutil.copy(exports["edf"], folder / "1.2.840.10008")  # DICOM-like names: no suffix, found by content
    (folder / "notes").write_text("not an ECG")
    (folder / "page.html").write_text("<html></html>")
    from ecg_keras.io.records import find_records

    assert sorted(p.name for p in find_records([folder])) == ["1.2.840.10008", "ecg.xml"]


def test_uncompressed_scp_and_unsupported_philips_compression(tmp_path):
    from format_writers import write_philips, write_scp

    raw, uv, fs, leads = dicom_signal()
    a = read_any(write_scp(tmp_path / "a.scp", raw, uv, fs, huffman=False)).signal
    b = read_any(write_scp(tmp_path / "b.scp", raw, uv, fs)).signal
    np.testing.assert_array_equal(a, b)
    xli = write_philips(tmp_path / "p.xml", raw[:100], uv, fs)
    xli.write_text(xli.read_text().replace('compression="Uncompressed"', 'compression="XLI"'))
    with pytest.raises(DataError, match=r"p\.xml.*XLI"):
        read_any(xli)


XXE = """<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG [<!ENTITY secret SYSTEM "file://{secret}">]>
<AnnotatedECG xmlns="urn:hl7-org:v3"><id root="&secret;"/></AnnotatedECG>"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE RestingECG [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<RestingECG><PatientDemographics><PatientAge>&d;</PatientAge></PatientDemographics></RestingECG>"""


def test_xml_entities_refused_without_expansion(tmp_path, trained_run):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    for name, text in (("xxe.xml", XXE.format(secret=secret)), ("laughs.xml", LAUGHS)):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataError, match=rf"{name}: XML with entity declarations .* refused") as err:
            read_any(path)
        assert "TOPSECRET" not in str(err.value) and "lollol" not in str(err.value)
    frame = predict(trained_run, [tmp_path / "xxe.xml"], progress=False)
    assert not frame["valid"][0] and "refused" in frame["problem"][0]


@pytest.mark.parametrize("spelling, lead", [("Lead I (Einthoven)", "I"), ("DI", "I"), ("D2", "II"), ("DIII", "III"),
                                            ("MDC_ECG_LEAD_V1", "V1"), ("MDC_ECG_LEAD_AVR", "aVR"), ("AVL", "aVL"),
                                            ("Lead aVF (Goldberger)", "aVF"), ("lead_v6", "V6"), ("C3", "V3"),
                                            ("V7", None), ("-aVR", None), ("X", None)])
def test_lead_spellings(spelling, lead):
    assert canonical(spelling) == lead


def test_eight_lead_export_completed_and_said(trained_run, tmp_path):
    raw, uv, fs, _ = dicom_signal()
    eight = [0, 1, 6, 7, 8, 9, 10, 11]
    path = write_muse(tmp_path / "muse8.xml", raw[:, eight], uv, fs, [LEADS[j] for j in eight])
    rec = read_any(path)
    full, derived, filled = complete(rec.signal, rec.leads, path)
    assert derived == ["III", "aVR", "aVL", "aVF"] and filled == []
    i, ii = rec.signal[:, 0], rec.signal[:, 1]
    np.testing.assert_allclose(full[:, 2:6], np.stack([ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2], 1))
    ref = read_any(write_muse(tmp_path / "muse12.xml", raw, uv, fs)).signal
    assert np.abs(full[:, 2:6] - ref[:, 2:6]).max() < 0.01  # recorded vs derived: within 10 uV of rounding
    frame = predict(trained_run, [path], progress=False)
    assert frame["valid"][0] and frame["leads"][0] == "derived III, aVR, aVL, aVF"


def test_missing_leads_refused_or_zero_filled(trained_run, tmp_path, capsys):
    raw, uv, fs, _ = dicom_signal()
    path = write_edf(tmp_path / "two.edf", raw[:, :2], uv, fs, ["I", "II"])
    frame = predict(trained_run, [path], progress=False)
    assert not frame["valid"][0] and "V1" in frame["problem"][0] and "--fill-missing-leads" in frame["problem"][0]
    frame = predict(trained_run, [path], progress=False, fill_missing_leads=True)
    assert frame["valid"][0]
    assert frame["leads"][0] == "derived III, aVR, aVL, aVF; ZERO-FILLED V1, V2, V3, V4, V5, V6"
    assert main([str(trained_run), str(path), "--fill-missing-leads", "--no-progress"]) == 0
    assert "ZERO-FILLED V1" in capsys.readouterr().out


def test_dataset_folder_of_exports_with_labels_csv(exports, tmp_path):
    from ecg_keras.datasets import detect, load

    folder = tmp_path / "hospital"
    folder.mkdir()
    for kind, path in exports.items():
        shutil.copy(path, folder / f"{kind}{path.suffix}")
    pd.DataFrame({"record": list(exports), "labels": ["NORM", "AFIB"] * 3, "age": 50}).to_csv(
        folder / "labels.csv", index=False)
    assert detect(folder) == "wfdb"
    records = load(folder, sampling_rate=100, cache_dir=False)
    assert records.sampling_rate == 100 and np.asarray(records.signals).shape == (6, 1000, 12)
    assert sorted(records.meta.index) == sorted(exports)
    assert records.meta.loc["hl7", "labels"] == ["AFIB"] and records.meta.loc["muse", "labels"] == ["NORM"]
    assert (records.meta["age"] == 50).all() and records.meta.loc["scp", "sex"] == 1  # labels.csv; the file
    np.testing.assert_allclose(records.signals[0], records.signals[1], atol=1e-6)
    from ecg_keras.datasets.tasks import make_task
    from ecg_keras.training import TrainConfig
    from ecg_keras.training.data import load_records

    # the path finetuning and evaluation take for --dataset FOLDER
    via_cli, root = load_records(TrainConfig(dataset=str(folder), task="all", cache_dir="off"), log=lambda *a: None)
    assert root == folder and make_task(via_cli, "all").classes == ["AFIB", "NORM"]
    (folder / "bad.scp").write_bytes(b"\0" * 40)
    with pytest.raises(DataError, match=r"bad\.scp"):
        load(folder, sampling_rate=100, cache_dir=False)

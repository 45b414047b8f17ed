"""scripts/rate_diagnosis.py: the rate diagnosis behind docs/SYNTHETIC.md section 4."""
from __future__ import annotations

import importlib.util

import pandas as pd

from conftest import REPO, shared_path

_spec = importlib.util.spec_from_file_location("rate_diagnosis", REPO / "scripts" / "rate_diagnosis.py")
diag = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diag)


def test_outranking_counts_the_discordant_pairs():
    table = pd.DataFrame({"labels": ["STACH", "STACH", "SR", "SR", "SR"], "rhythm": ["t", "t", "s", "s", "s"],
                          "STACH": [0.5, 0.2, 0.9, 0.3, 0.1]}, index=list("abcde"))
    bad = diag.outranking(table, "STACH")
    assert bad["outranks"].to_dict() == {"c": 2, "d": 1}  # e is below both positives


def test_sweep_writes_each_class_per_rate(trained_run, tmp_path):
    out = tmp_path / "sweep.csv"
    diag.main(["sweep", "--model", str(trained_run), "--out", str(out), "--label", "demo", "--patients", "2",
               "--step", "60"])
    frame = pd.read_csv(out)
    assert frame["hr"].tolist() == [40.0, 100.0, 160.0] and (frame["label"] == "demo").all()
    for c in diag.CLASSES:
        assert frame[c].between(0, 1).all() and (frame[f"{c}_q10"] <= frame[f"{c}_q90"] + 1e-12).all()
    png = tmp_path / "fig.png"
    diag.main(["figure", "--sweep", str(out), "--out", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ludb_table_rates_from_the_qrs_marks():
    folder = shared_path("ludb-1.0.1")
    table = diag.ludb_table(folder)
    assert len(table) == 200
    stach = table[table["labels"].str.contains("STACH")]
    assert len(stach) == 4 and stach["hr"].between(88, 95).all()  # docs/SYNTHETIC.md 4.1
    assert table.loc["1", "labels"] == "SBRAD" and table.loc["1", "hr"] < 50

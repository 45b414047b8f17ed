"""The zoo's shipped rhythm model reads real ECGs: zero-shot per-class AUCs on the 200 LUDB records,
and its model card states the same figures."""
from __future__ import annotations

import pytest
from conftest import shared_path

from ecg_keras import zoo
from ecg_keras.evaluation.validation import validate

#: True once models/ ships the synthetic-trained rhythm model: an empty zoo then FAILS this test.
SHIPPED_RHYTHM_MODEL_EXPECTED = False
#: Lowest acceptable AUC per class on LUDB (labels mapped by ecg_keras.datasets.labelmap).
BARS = {"SBRAD": 0.95, "STACH": 0.95, "AFIB": 0.90, "SR": 0.90, "SARRH": 0.75}


def shipped_rhythm_models() -> list[dict]:
    """Entries of the zoo for the rhythm task whose weights are in models/ (so in the wheel)."""
    return [e for e in zoo.read_manifest(zoo.RELEASED_DIR)
            if e["task"] == "rhythm" and (zoo.RELEASED_DIR / e["file"]).is_file()]


def test_shipped_rhythm_model_reads_the_real_ludb_records():
    ludb = shared_path("ludb-1.0.1")
    entries = shipped_rhythm_models()
    if not entries:
        if SHIPPED_RHYTHM_MODEL_EXPECTED:
            pytest.fail(f"no rhythm model with its weights in {zoo.RELEASED_DIR}: the zoo must ship one")
        pytest.skip("no rhythm model shipped in models/ yet (SHIPPED_RHYTHM_MODEL_EXPECTED = False)")
    for entry in entries:
        result = validate(entry["name"], ludb, n_bootstrap=100)
        assert result.n_records == 200 and result.labels == "ludb"
        auc = result.table["auc"]
        below = {c: round(float(auc.get(c, float("nan"))), 3) for c, bar in BARS.items() if not auc.get(c, 0) >= bar}
        assert not below, f"{entry['name']}: LUDB AUC below the bars {BARS}: {below}"
        card = [v for v in entry.get("validation", []) if v["dataset"] == ludb.name]
        assert card, f"{entry['name']}: its manifest entry has no validation on {ludb.name}"
        for c, stated in card[0]["classes"].items():
            assert stated["n_positive"] == int(result.table.loc[c, "n_positive"])
            if stated["auc"] is not None:
                assert abs(stated["auc"] - result.table.loc[c, "auc"]) < 1e-3, (c, stated, result.table.loc[c])

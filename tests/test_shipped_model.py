"""The zoo's shipped rhythm model reads real ECGs: zero-shot per-class AUCs on the 200 LUDB records,
and its model card states the same figures."""
from __future__ import annotations

from conftest import shared_path

from ecg_keras import zoo
from ecg_keras.evaluation.validation import validate

#: Lowest acceptable AUC per class on LUDB (labels mapped by ecg_keras.datasets.labelmap).
BARS = {"SBRAD": 0.95, "STACH": 0.95, "AFIB": 0.90, "SR": 0.90, "SARRH": 0.75}
#: Bars the shipped model does not reach yet (issue #24 stays open for it; docs/RESULTS.md 11.7):
#: STACH 0.920. LUDB's four "sinus tachycardia" records run at 90-93 bpm, where the published
#: definitions (and so the generator's thresholds, drawn from 90-100 bpm) make STACH only rarely
#: the label; their ranking changes with the training seed (0.83-0.95). Checked as still below, so
#: this list cannot go stale silently.
NOT_YET_MET = {"STACH"}


def shipped_rhythm_models() -> list[dict]:
    """Entries of the zoo for the rhythm task whose weights are in models/ (so in the wheel)."""
    return [e for e in zoo.read_manifest(zoo.RELEASED_DIR)
            if e["task"] == "rhythm" and (zoo.RELEASED_DIR / e["file"]).is_file()]


def test_shipped_rhythm_model_reads_the_real_ludb_records():
    ludb = shared_path("ludb-1.0.1")
    entries = shipped_rhythm_models()
    assert entries, f"no rhythm model with its weights in {zoo.RELEASED_DIR}: the zoo must ship one"
    for entry in entries:
        result = validate(entry["name"], ludb, n_bootstrap=100)
        assert result.n_records == 200 and result.labels == "ludb"
        auc = result.table["auc"]
        below = {c: round(float(auc.get(c, float("nan"))), 3) for c, bar in BARS.items() if not auc.get(c, 0) >= bar}
        assert set(below) == NOT_YET_MET, f"{entry['name']}: LUDB AUC below the bars {BARS}: {below}"
        card = [v for v in entry.get("validation", []) if v["dataset"] == ludb.name]
        assert card, f"{entry['name']}: its manifest entry has no validation on {ludb.name}"
        for c, stated in card[0]["classes"].items():
            assert stated["n_positive"] == int(result.table.loc[c, "n_positive"])
            if stated["auc"] is not None:
                assert abs(stated["auc"] - result.table.loc[c, "auc"]) < 1e-3, (c, stated, result.table.loc[c])

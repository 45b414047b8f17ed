"""scripts/synthetic_report.py: the real-vs-synthetic comparison behind docs/SYNTHETIC.md."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd

from conftest import REPO, shared_path
from ecg_keras.datasets import synthetic

_spec = importlib.util.spec_from_file_location("synthetic_report", REPO / "scripts" / "synthetic_report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)


def test_measure_recovers_rate_and_irregularity():
    meta, specs = synthetic.draw_dataset(120, 5)
    for rhythm in ("SBRAD", "STACH", "AFIB"):
        spec = next(s for s in specs if s.rhythm == rhythm and not s.noise and not s.ectopics)
        m = report.measure(synthetic.render_record(spec))
        if rhythm == "AFIB":
            assert m["rr_cv"] > 0.08
        else:
            assert abs(m["hr"] - spec.hr) < 3 and m["rr_cv"] < 0.06
        assert 30 < m["qrs_ms"] < 90 and m["hf_noise_uv"] > 1


def test_report_on_real_and_synthetic_folders(tmp_path, capsys):
    ludb = shared_path("ludb-1.0.1", "data")
    synth = synthetic.generate_synthetic_ptbxl(tmp_path / "s", n_records=12, seed=0, sampling_rates=(500,),
                                               progress=False)
    out = tmp_path / "fig"
    assert report.main(["--real", f"LUDB={ludb}", "--synthetic", f"v3={synth}", "--max-records", "12",
                        "--out", str(out), "--prefix", "t"]) == 0
    assert {p.name for p in out.iterdir()} >= {"t_distributions.png", "t_spectra_amplitudes.png",
                                               "t_lead_correlation.png", "t_examples.png", "t_stats.csv"}
    stats = pd.read_csv(out / "t_stats.csv")
    assert (stats.dataset.value_counts() == 12).all()
    ludb_amp = stats.loc[stats.dataset == "LUDB", "amp_II"]
    assert ludb_amp.max() < 1.1 and ludb_amp.median() > 0.5  # LUDB: every lead spans 1 mV (per-lead normalised)
    assert "| hr |" in capsys.readouterr().out
    assert report.main(["--real", f"x={tmp_path / 'missing'}"]) == 2

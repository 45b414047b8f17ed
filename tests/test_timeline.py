"""``predict --timeline`` on a long two-lead EDF (limb leads derived, chest leads zero-filled and
flagged): segment probabilities over time, read in bounded chunks.

The 24-h acceptance run (peak RSS under 1 GB) is the slow test below, or by hand::

    python tests/test_timeline.py 24 /tmp/holter.edf
    /usr/bin/time -v ecg-keras predict RUN /tmp/holter.edf --timeline out --fill-missing-leads
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def holter(path: Path, hours: float, fs: int = 250) -> Path:
    """A two-lead (I, II) EDF of ``hours`` written by edfio: QRS-like spikes at 60 bpm, irregular
    RR intervals in the second half, a slow baseline wander."""
    import edfio

    n = int(hours * 3600 * fs)
    t = np.arange(n) / fs
    rng = np.random.default_rng(0)
    seconds = hours * 3600
    regular = np.arange(0.0, seconds / 2, 1.0)
    irregular = seconds / 2 + np.cumsum(rng.uniform(0.4, 1.2, int(seconds / 0.8) + 10))
    beats = np.concatenate([regular, irregular[irregular < seconds]])
    phase = np.zeros(n)
    phase[(beats * fs).astype(int)] = 1.0
    kernel = np.exp(-0.5 * ((np.arange(-25, 26) / fs) / 0.012) ** 2)  # a 50-ms QRS-like spike
    qrs = np.convolve(phase, kernel, mode="same")
    lead1 = (0.8 * qrs + 0.05 * np.sin(2 * np.pi * 0.3 * t)) * 1000  # uV
    lead2 = (1.2 * qrs + 0.05 * np.cos(2 * np.pi * 0.2 * t)) * 1000
    signals = [edfio.EdfSignal(x, fs, label=f"ECG {name}", physical_dimension="uV", physical_range=(-5000, 5000))
               for x, name in ((lead1, "I"), (lead2, "II"))]
    edfio.Edf(signals).write(path)
    return path


def test_timeline_of_a_20_minute_edf(trained_run, tmp_path, monkeypatch, capsys):
    from ecg_keras import timeline
    from ecg_keras.io.edf import EdfStream
    from ecg_keras.cli.predict import main

    path = holter(tmp_path / "holter.edf", 20 / 60)
    reads = []
    original = EdfStream.read
    monkeypatch.setattr(EdfStream, "read", lambda self, a, b: reads.append(b - a) or original(self, a, b))
    out = tmp_path / "tl"
    assert main([str(trained_run), str(path), "--timeline", str(out), "--fill-missing-leads", "--no-progress"]) == 0
    frame = pd.read_csv(next(out.glob("*_timeline.csv")))
    assert len(frame) == 120 and frame["valid"].all()
    assert np.allclose(frame["start_s"], np.arange(120) * 10.0)
    classes = [c for c in frame.columns if c not in ("segment", "start_s", "end_s", "valid", "problem")]
    assert frame[classes].notna().all().all() and ((frame[classes] >= 0) & (frame[classes] <= 1)).all().all()
    assert max(reads) <= timeline.CHUNK_SEGMENTS * 10 * 250  # bounded chunks, never the whole record
    assert next(out.glob("*_timeline.png")).read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "120 segments" in text and "ZERO-FILLED V1" in text and "burden" in text
    # without the option the missing chest leads are refused
    assert main([str(trained_run), str(path), "--timeline", str(out), "--no-progress"]) == 1


@pytest.mark.parametrize("fmt", ["edf", "ishne"])
def test_timeline_marks_lead_off_segments(trained_run, tmp_path, fmt):
    import edfio
    from format_writers import write_ishne

    from ecg_keras.predict import load_model
    from ecg_keras.timeline import timeline

    fs, n = 100, 100 * 60
    t = np.arange(n) / fs
    x = np.stack([np.sin(2 * np.pi * 1.1 * t + j) * (300 + 50 * j) + 50 * np.sin(2 * np.pi * 7 * t)
                  for j in range(8)], 1)
    x[2000:3000] = 0.0  # segments 2 (20-30 s): lead-off, flat
    names = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    if fmt == "edf":
        path = tmp_path / "r.edf"
        edfio.Edf([edfio.EdfSignal(x[:, j], fs, label=names[j], physical_dimension="uV",
                                   physical_range=(-1000, 1000)) for j in range(8)]).write(path)
    else:
        path = write_ishne(tmp_path / "r.ecg", np.round(x).astype(np.int16), 1.0, fs, names)
    frame = timeline(load_model(trained_run), path, progress=False, chunk_segments=4)
    assert frame["valid"].tolist() == [True, True, False, True, True, True]
    assert "flat" in frame["problem"][2] and np.isnan(frame.iloc[2, -1])
    assert frame.attrs["leads"] == "derived III, aVR, aVL, aVF"


def test_timeline_usage_errors(tmp_path, capsys):
    from ecg_keras.cli.predict import main

    assert main(["model", "rec.edf", "--timeline", str(tmp_path), "--plot", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --timeline writes its own CSV and plot per record; drop --out/--plot"


@pytest.mark.slow
def test_timeline_24_hours_under_1_gb(trained_run, tmp_path):
    path = holter(tmp_path / "day.edf", 24)
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "ecg_keras", "predict", str(trained_run), str(path),
           "--timeline", str(tmp_path / "tl"), "--fill-missing-leads", "--no-progress"]
    if not os.path.exists("/usr/bin/time"):
        pytest.skip("needs GNU time")
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    assert rss_kb < 1024 * 1024, f"peak RSS {rss_kb / 1024:.0f} MB"
    assert len(pd.read_csv(next((tmp_path / "tl").glob("*.csv")))) == 8640


if __name__ == "__main__":  # python tests/test_timeline.py HOURS OUT.edf
    holter(Path(sys.argv[2]), float(sys.argv[1]))

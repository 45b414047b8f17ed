"""Issue 23 items 2, 5 and 9: predict's plots, batch isolation and CSV output under hostile input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecg_keras.cli.predict import main
from ecg_keras.predict import load_model, plot_names


def _signal(seconds=4.0, fs=100.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beat = np.exp(-((t * 1.2) % 1.0 - 0.3) ** 2 / 0.0004)
    return beat[:, None] * np.linspace(0.5, 1.6, 12)[None, :] + 0.05 * rng.standard_normal((len(t), 12))


@pytest.fixture(scope="module")
def predictor(trained_run):
    return load_model(trained_run)


def _npy(path, x=None):
    np.save(path, _signal() if x is None else x)
    return path


def test_plot_names_are_the_record_names_without_leading_dots():
    assert plot_names(["a/../rec", "data/1", "x/1.npy", ".hidden", "..", "=cmd"]) == [
        "rec.png", "1.png", "1_2.png", "hidden.png", "record.png", "_cmd.png"]


def test_plot_names_drop_the_hospital_formats_suffixes():
    """A content-sniffed file's suffix is storage, not name: waveform_ecg.dcm -> waveform_ecg.png."""
    from ecg_keras.io.formats import FORMATS

    assert plot_names(["in/waveform_ecg.dcm", "day.EDF", "h.ishne", "a.xml", "rec.scp", "b.bdf", "c.ecg"]) == [
        "waveform_ecg.png", "day.png", "h.png", "a.png", "rec.png", "b.png", "c.png"]
    for _, suffixes in FORMATS.values():  # every suffix of the formats' one list
        assert plot_names([f"r{suffixes[0]}"]) == ["r.png"]
    assert plot_names(["x.dcm.bak", "v1.2"]) == ["x.dcm.bak.png", "v1.2.png"]  # an unknown suffix stays


def test_plot_through_a_planted_link_is_refused(predictor, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "r.png").symlink_to(victim)
    code = main([str(predictor.source), str(_npy(tmp_path / "r.npy")), "--fs", "100", "--plot",
                 str(tmp_path / "plots"), "--no-progress", "--overwrite"])
    err = capsys.readouterr().err
    assert code == 1 and "symbolic link" in err and "Traceback" not in err, err
    assert victim.read_text() == "precious\n"


def test_plot_onto_an_existing_file_is_an_error_unless_overwrite(predictor, tmp_path, capsys):
    rec = _npy(tmp_path / "sub" / "r.npy") if (tmp_path / "sub").mkdir() is None else None
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "r.png").write_bytes(b"old")
    argv = [str(predictor.source), str(tmp_path / "sub" / ".." / "sub" / "r.npy"), "--fs", "100", "--plot",
            str(tmp_path / "plots"), "--no-progress"]
    assert main(argv) == 1  # an output in the way: a run failure (docs/CLI.md)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "r.png exists" in err and "--overwrite" in err
    assert (tmp_path / "plots" / "r.png").read_bytes() == b"old"
    assert main(argv + ["--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["r.png"]  # named after the record
    assert (tmp_path / "plots" / "r.png").read_bytes()[:4] == b"\x89PNG" and rec is not None


def test_one_hostile_npy_does_not_abort_the_batch(predictor, tmp_path, capsys):
    good = [_npy(tmp_path / f"good{i}.npy", _signal(seed=i)) for i in range(3)]
    huge = tmp_path / "huge.npy"  # header claims (10**12, 12) float64: read_any must not allocate it
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 12)}
    with open(huge, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 96)
    mask = _npy(tmp_path / "mask.npy", _signal() > 0.5)  # bool: not mV
    out = tmp_path / "out.csv"
    code = main([str(predictor.source), str(good[0]), str(huge), str(good[1]), str(mask), str(good[2]),
                 "--fs", "100", "--out", str(out), "--no-progress"])
    assert code == 1
    table = pd.read_csv(out)
    assert list(table["valid"]) == [True, False, True, False, True]
    assert "header claims shape (1000000000000, 12)" in table["problem"][1]
    assert "dtype bool" in table["problem"][3]


def test_a_record_the_model_fails_on_is_one_invalid_row(predictor, tmp_path):
    from ecg_keras.predict import run_predictions

    calls = []

    class Flaky:
        def __getattr__(self, name):
            return getattr(predictor, name)

        def __call__(self, signals):
            calls.append(len(signals))
            if any(len(x) == 123 for x in signals):
                raise RuntimeError("engine failure")
            return predictor(signals)

    from ecg_keras.predict import Predictor

    flaky = Predictor(**{**{f: getattr(predictor, f) for f in predictor.__dataclass_fields__},
                         "predict_fn": lambda xs: Flaky()(xs)})
    recs = [_npy(tmp_path / "a.npy"), _npy(tmp_path / "b.npy", _signal(seconds=1.23)), _npy(tmp_path / "c.npy")]
    _, items = run_predictions(flaky, recs, fs=100, progress=False)
    assert [it.problem is None for it in items] == [True, False, True]
    assert "engine failure" in items[1].problem and items[0].probabilities is not None


def test_formula_like_record_names_are_escaped_in_the_csv(predictor, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("=cmd.npy", "+1.npy", "-2.npy", "@x.npy"):
        _npy(tmp_path / name)
    assert main(["--fs", "100", "--out", "out.csv", "--no-progress", "--", str(predictor.source), "=cmd.npy",
                 "+1.npy", "-2.npy", "@x.npy"]) == 0
    text = (tmp_path / "out.csv").read_text().splitlines()
    records = [line.split(",")[0] for line in text[1:]]
    assert records == ["'=cmd.npy", "'+1.npy", "'-2.npy", "'@x.npy"]

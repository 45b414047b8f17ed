"""``python -m export from-torch``: the reference's PyTorch checkpoints as Keras run directories.

Parity: tests/fixtures/from_torch/<arch>.npz hold ``benchmarks/torch_peer.py`` models (the
reference architectures) with random weights and randomised BatchNorm statistics, and their
PyTorch logits on 8 real LUDB windows (see tests/torch_fixtures.py, made by
scripts/make_torch_fixtures.py). No torch is needed here: the state dicts are rebuilt as ``.npz``
checkpoints and converted through the CLI.
"""
from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pytest

import torch_fixtures as F
from conftest import shared_path
from ecg_keras.export import from_torch as ft
from ecg_keras.export import torch_mapping
from ecg_keras.runs import resolve
from ecg_keras.standardize import Standardizer

TOL = 1e-5
DEFAULT_ARCHS = ("fcn_wang", "resnet1d_wang", "xresnet1d18", "inception1d", "lstm", "lstm_bidir", "gru")
SLOW_ARCHS = ("xresnet1d34", "xresnet1d50", "xresnet1d101", "xresnet1d152")


def cli(*args) -> int:
    from export.__main__ import main

    return main(["from-torch", *map(str, args)])


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    w = F.ludb_windows(shared_path("ludb-1.0.1", "data"))
    assert w.shape == (8, F.WINDOW, 12)
    return w


def fixture(arch: str):
    return np.load(F.FIXTURES / f"{arch}.npz", allow_pickle=False)


def write_checkpoint(path, state: dict) -> str:
    np.savez(path, **state)
    return str(path)


def assert_parity(arch, tmp_path, windows, capsys) -> float:
    z = fixture(arch)
    assert str(z["input_digest"]) == F.digest([windows]), "LUDB windows differ from those of the fixture"
    ckpt = write_checkpoint(tmp_path / f"{arch}.npz", F.state_dict(z))
    out = tmp_path / "run"
    assert cli(ckpt, "--arch", arch, "--task", "all", "--out", out, "--mean", 0, "--std", 1) == 0
    run = resolve(out)
    logits = run.model.predict(windows, verbose=0)
    diff = float(np.abs(logits - z["logits"]).max())
    floor = float(np.abs(z["logits"].astype(np.float64) - z["logits_float64"]).max())
    with capsys.disabled():
        print(f"\nPARITY {arch}: max |keras - torch| {diff:.2e} (torch float32 vs float64 {floor:.2e}, "
              f"|logits| <= {np.abs(z['logits']).max():.2f})")
    cfg = json.loads((out / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["sha256"] == ft.sha256(ckpt) and prov["converter_version"] == ft.CONVERTER_VERSION
    assert prov["source_file"].endswith(f"{arch}.npz") and prov["tensors"] + prov["aliases"] == len(z["keys"])
    assert run.classes == sorted(run.classes) and len(run.classes) == 71 and (out / "COMPLETE").exists()
    assert diff < TOL, (arch, diff)
    return diff


@pytest.mark.parametrize("arch", DEFAULT_ARCHS)
def test_parity_with_pytorch(arch, tmp_path, windows, capsys):
    assert_parity(arch, tmp_path, windows, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("arch", SLOW_ARCHS)
def test_parity_with_pytorch_deep_xresnets(arch, tmp_path, windows, capsys):
    assert_parity(arch, tmp_path, windows, capsys)


def test_every_architecture_is_mapped_completely():
    """The plan covers every weight of every architecture and the fixtures' keys exactly (no Keras build
    of the deep models' weights needed beyond the layer list)."""
    from ecg_keras import models

    for arch in ft.ARCHS:
        z = fixture(arch)
        model = models.get(arch, num_classes=71)
        entries = ft.plan(arch, model)
        layers = {l.name: l for l in model.layers}
        keys = {k for e in entries for k, _ in torch_mapping._expected(e, layers[e.layer])}
        torch_keys = set(z["keys"].tolist()) - set(z["alias_keys"].tolist())
        torch_keys = {k for k in torch_keys if not k.endswith("num_batches_tracked")}
        assert keys == torch_keys, (arch, sorted(keys ^ torch_keys)[:5])
        assert len({e.prefix + str(e.index) for e in entries}) == len(entries)  # no module used twice


# --------------------------------------------------------------------------- refusals
@pytest.fixture(scope="module")
def xresnet_state() -> dict:
    return F.state_dict(fixture("xresnet1d18"))


def _fails(tmp_path, state, capsys, *needles):
    ckpt = write_checkpoint(tmp_path / "bad.npz", state)
    out = tmp_path / "out" / "run"
    assert cli(ckpt, "--arch", "xresnet1d18", "--task", "all", "--out", out, "--mean", 0, "--std", 1) == 1
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err
    assert not out.exists() and not (tmp_path / "out").exists()
    return err


def test_tampered_shape_is_named_and_nothing_written(tmp_path, xresnet_state, capsys):
    bad = dict(xresnet_state)
    bad["8.4.weight"] = np.zeros((128, 127), np.float32)  # head_dense1 (128, 2 x 64)
    _fails(tmp_path, bad, capsys, "'8.4.weight' has shape (128, 127), expected (128, 128)", "head_dense1")


def test_tampered_key_is_named_and_nothing_written(tmp_path, xresnet_state, capsys):
    bad = dict(xresnet_state)
    bad["0.1.running_avg"] = bad.pop("0.1.running_mean")
    _fails(tmp_path, bad, capsys, "missing tensor '0.1.running_mean'", "stem_bn1",
           "unexpected tensor '0.1.running_avg'")


def test_tampered_shape_and_key_together_are_all_named(tmp_path, xresnet_state, capsys):
    bad = dict(xresnet_state)
    bad["8.8.weight"] = np.zeros((70, 128), np.float32)  # head_logits: 70 instead of 71 outputs
    bad["5.1.convs.1.1.bias_renamed"] = bad.pop("5.1.convs.1.1.bias")
    bad["5.1.convpath.0.1.1.bias_renamed"] = bad.pop("5.1.convpath.0.1.1.bias")  # its alias, renamed alike
    _fails(tmp_path, bad, capsys, "3 problem(s)", "'8.8.weight' has shape (70, 128), expected (71, 128)",
           "missing tensor '5.1.convs.1.1.bias' (Keras layer stage2_block2_bn2",
           "unexpected tensor '5.1.convs.1.1.bias_renamed'")


def test_aliases_must_agree_and_may_stand_alone(tmp_path, xresnet_state, capsys, windows):
    bad = dict(xresnet_state)
    bad["4.0.convpath.0.0.0.weight"] = bad["4.0.convpath.0.0.0.weight"] + 1.0
    _fails(tmp_path, bad, capsys, "'4.0.convpath.0.0.0.weight' must alias '4.0.convs.0.0.weight'")
    # a state dict saved with only the convpath names (aliases) converts to the same model
    only = {k: v for k, v in xresnet_state.items() if ".convs." not in k}
    assert len(only) < len(xresnet_state)
    ckpt = write_checkpoint(tmp_path / "alias_only.npz", only)
    assert cli(ckpt, "--arch", "xresnet1d18", "--task", "all", "--out", tmp_path / "run", "--mean", 0, "--std", 1) == 0
    got = resolve(tmp_path / "run").model.predict(windows, verbose=0)
    assert np.abs(got - fixture("xresnet1d18")["logits"]).max() < TOL


def test_wrong_architecture_and_existing_output_refused(tmp_path, capsys):
    ckpt = write_checkpoint(tmp_path / "fcn.npz", F.state_dict(fixture("fcn_wang")))
    assert cli(ckpt, "--arch", "resnet1d_wang", "--task", "all", "--out", tmp_path / "a", "--mean", 0, "--std", 1) == 1
    assert "missing tensor '3.0.conv1.weight'" in capsys.readouterr().err and not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep")
    assert cli(ckpt, "--arch", "fcn_wang", "--task", "all", "--out", tmp_path / "b", "--mean", 0, "--std", 1) == 1
    assert "already exists" in capsys.readouterr().err and (tmp_path / "b" / "x").read_text() == "keep"
    assert cli(ckpt, "--arch", "fcn_wang", "--task", "age", "--out", tmp_path / "c", "--mean", 0, "--std", 1) == 1
    assert "--classes" in capsys.readouterr().err
    assert cli(ckpt, "--arch", "fcn_wang", "--task", "all", "--out", tmp_path / "d") == 2  # usage error (docs/CLI.md)
    assert "--standardizer" in capsys.readouterr().err


def test_pth_without_torch_says_how(tmp_path, monkeypatch):
    (tmp_path / "m.pth").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ft.ConversionError, match=r"needs torch.*ecg_keras\[torch\]"):
        ft.read_checkpoint(tmp_path / "m.pth")


# --------------------------------------------------------------------------- standardiser / classes pickles
def test_standard_scaler_pickle_read_restricted(tmp_path):
    from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler

    x = np.random.default_rng(0).normal(0.1, 0.3, (500, 12))
    ss = StandardScaler().fit(x.flatten()[:, None])  # the reference's scalar scaler
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):  # the reference's Python 3 wrote protocol 3
        (tmp_path / "ss.pkl").write_bytes(pickle.dumps(ss, protocol=protocol))
        st = ft.read_standard_scaler(tmp_path / "ss.pkl")
        assert st.mean == pytest.approx(float(ss.mean_[0])) and st.std == pytest.approx(float(ss.scale_[0]))
    (tmp_path / "per_lead.pkl").write_bytes(pickle.dumps(StandardScaler().fit(x)))
    with pytest.raises(ft.ConversionError, match="12 features"):
        ft.read_standard_scaler(tmp_path / "per_lead.pkl")
    mlb = MultiLabelBinarizer().fit([["NORM"], ["MI", "CD"]])
    (tmp_path / "mlb.pkl").write_bytes(pickle.dumps(mlb))
    assert ft.read_classes(tmp_path / "mlb.pkl") == ["CD", "MI", "NORM"]
    with pytest.raises(ft.ConversionError, match="MultiLabelBinarizer"):
        ft.read_standard_scaler(tmp_path / "mlb.pkl")  # a known class, but not the one asked for


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_unpickler_refuses_anything_else(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ft.ConversionError, match=r"refused to unpickle (posix|os)\.system"):
        ft.read_standard_scaler(tmp_path / "evil.pkl")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"mean_": np.zeros(1)}))
    with pytest.raises(ft.ConversionError, match="does not hold a pickled sklearn StandardScaler"):
        ft.read_standard_scaler(tmp_path / "dict.pkl")


def test_task_classes_follow_the_reference_order():
    assert len(ft.task_classes("all")) == 71 and ft.task_classes("all") == sorted(ft.task_classes("all"))
    assert ft.task_classes("superdiagnostic") == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert [len(ft.task_classes(t)) for t in ("diagnostic", "subdiagnostic", "form", "rhythm")] == [44, 23, 19, 12]


# ------------------------------------------------------------------ --check, export, release, finetune, evaluate
SUPER = ["CD", "HYP", "MI", "NORM", "STTC"]


def _ludb_records() -> list[np.ndarray]:
    """The four 10-s LUDB records of the export tests (100 Hz, mV)."""
    import wfdb
    from scipy.signal import resample_poly

    root = shared_path("ludb-1.0.1", "data")
    return [resample_poly(wfdb.rdsamp(str(root / r))[0], 1, 5, axis=0).astype(np.float32) for r in "1234"]


def _reference_protocol(model, signals, st: Standardizer) -> np.ndarray:
    """fastai_model.predict written out: 250-sample windows every 125, sigmoid, max per record."""
    out = []
    for x in signals:
        w = np.stack([x[o:o + 250] for o in range(0, len(x) - 250 + 1, 125)])
        p = 1.0 / (1.0 + np.exp(-model.predict(st.transform(w), verbose=0).astype(np.float64)))
        out.append(p.max(axis=0))
    return np.stack(out)


@pytest.fixture(scope="module")
def ptbxl(tmp_path_factory):
    from ptbxl_fixture import write_ptbxl_fixture

    from ecg_keras.statements import statements_frame

    tmp = tmp_path_factory.mktemp("ptbxl")
    statements_frame().to_csv(tmp / "scp_statements.csv")
    # 720 records: the test fold (every 10th) holds each of the 71 codes once
    return write_ptbxl_fixture(tmp / "ptbxl", tmp / "scp_statements.csv", n_records=720, sampling_rates=(100,))


def test_check_export_release_finetune_evaluate(tmp_path, ptbxl, capsys):
    """A 5-class fcn_wang checkpoint + the reference's scaler pickle -> run -> SavedModel/ONNX parity,
    release, --init-from source, evaluate.py; --check against self-made reference predictions."""
    from sklearn.preprocessing import StandardScaler
    from test_export import parity

    from ecg_keras import datasets
    from ecg_keras.datasets.tasks import make_task, split
    from ecg_keras.cli.evaluate import main as evaluate_main
    from export.__main__ import main as export_main

    state = F.state_dict(fixture("fcn_wang"))
    state["3.8.weight"], state["3.8.bias"] = state["3.8.weight"][:5], state["3.8.bias"][:5]  # 71 -> 5 outputs
    ckpt = write_checkpoint(tmp_path / "fcn_wang.npz", state)
    ludb = _ludb_records()
    ss = StandardScaler().fit(np.concatenate(ludb).reshape(-1, 1).astype(np.float64))
    (tmp_path / "standard_scaler.pkl").write_bytes(pickle.dumps(ss))
    base = ["--arch", "fcn_wang", "--task", "superdiagnostic", "--standardizer", tmp_path / "standard_scaler.pkl"]

    plain = tmp_path / "plain"
    assert cli(ckpt, *base, "--out", plain) == 0
    run = resolve(plain)
    assert run.classes == SUPER and run.standardizer.std == pytest.approx(float(ss.scale_[0]))
    test = split(make_task(datasets.load(ptbxl, sampling_rate=100), "superdiagnostic")).test
    assert len(test) >= 40 and test.classes == SUPER and test.y.min(axis=0).max() == 0 and test.y.max(axis=0).min() == 1
    expected = _reference_protocol(run.model, test.signals, run.standardizer)
    np.save(tmp_path / "y_test_pred.npy", expected.astype(np.float32))

    checked = tmp_path / "checked"
    capsys.readouterr()
    assert cli(ckpt, *base, "--out", checked, "--check", ptbxl, "--expect", tmp_path / "y_test_pred.npy") == 0
    out = capsys.readouterr().out
    assert f"check: {len(test)} test records, max |diff|" in out and "OK" in out
    prov = json.loads((checked / "config.json").read_text())["provenance"]
    assert prov["check"]["max_abs_diff"] < 1e-6 and prov["check"]["records"] == len(test)
    with np.load(checked / "predictions" / "test.npz") as z:
        assert z["y_pred"].shape == (len(test), 5) and np.array_equal(z["ids"], test.ids)

    np.save(tmp_path / "off.npy", (expected + 0.01).astype(np.float32))
    assert cli(ckpt, *base, "--out", tmp_path / "off", "--check", ptbxl, "--expect", tmp_path / "off.npy") == 1
    assert "FAILED" in capsys.readouterr().out and not (tmp_path / "off").exists()

    # python -m export savedmodel|onnx|release accept the converted run; serving parity as tests/test_export.py
    assert export_main(["savedmodel", str(checked), "--out", str(tmp_path / "serving")]) == 0
    assert export_main(["onnx", str(checked), "--out", str(tmp_path / "window.onnx")]) == 0
    assert export_main(["onnx", str(checked), "--out", str(tmp_path / "record.onnx"), "--whole-record"]) == 0
    diffs = parity(run.model, tmp_path / "serving" / "ecg" / "1", tmp_path / "window.onnx", tmp_path / "record.onnx",
                   ludb, run.standardizer, "max")
    assert max(diffs.values()) < TOL, diffs
    models_dir = str(tmp_path / "models")
    assert export_main(["release", str(checked), "--name", "fcn_wang_ref", "--models-dir", models_dir]) == 0
    manifest = json.loads((tmp_path / "models" / "MANIFEST.json").read_text())
    assert "fcn_wang_ref" in json.dumps(manifest)

    source = resolve(checked).check_complete()  # --init-from
    assert (source.arch, source.classes, source.config["task"]) == ("fcn_wang", SUPER, "superdiagnostic")

    assert evaluate_main([str(checked), "--out", str(tmp_path / "eval"), "--bootstrap", "20", "--no-plots"]) == 0
    assert (tmp_path / "eval" / "metrics.json").exists()


def test_pth_learner_save_and_plain_state_dict(tmp_path):
    """Only where torch is installed (not in CI): fastai v1 ``{"model": sd, "opt": ...}`` and plain saves."""
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(np.asarray(v)) for k, v in F.state_dict(fixture("fcn_wang")).items()}
    torch.save({"model": sd, "opt": {"state": {}, "param_groups": [{"lr": 0.01}]}}, tmp_path / "learner.pth")
    torch.save(sd, tmp_path / "plain.pt")
    for name in ("learner.pth", "plain.pt"):
        got = ft.read_checkpoint(tmp_path / name)
        assert list(got) == list(sd) and all(np.array_equal(got[k], sd[k].numpy()) for k in sd)


def test_unfitted_scaler_refused(tmp_path):
    from sklearn.preprocessing import StandardScaler

    (tmp_path / "unfitted.pkl").write_bytes(pickle.dumps(StandardScaler()))
    with pytest.raises(ft.ConversionError, match="not fitted"):
        ft.read_standard_scaler(tmp_path / "unfitted.pkl")

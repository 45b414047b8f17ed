"""Issue 23 items 3 and 8: from-torch refuses non-finite, complex, non-float or implausible
weights and standardisers, checks .npz headers before reading data, and ends every refusal in
one ``error:`` line naming the file (no traceback)."""
from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest

import torch_fixtures as F
from ecg_keras.export import from_torch as ft
from ecg_keras.export import torch_checkpoint
from ecg_keras.standardize import Standardizer


def cli(*args) -> int:
    from export.__main__ import main

    return main(["from-torch", *map(str, args)])


@pytest.fixture(scope="module")
def fcn_state() -> dict:
    return F.state_dict(np.load(F.FIXTURES / "fcn_wang.npz", allow_pickle=False))


def _refused(tmp_path, capsys, ckpt, *needles, extra=("--mean", 0, "--std", 1)):
    out = tmp_path / "run"
    assert cli(ckpt, "--arch", "fcn_wang", "--task", "all", "--out", out, *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()
    return err


def _kernel(state):
    return next(k for k in state if k.endswith(".weight") and state[k].ndim == 3)


def test_nan_complex_and_integer_kernels_are_refused(tmp_path, fcn_state, capsys):
    key = _kernel(fcn_state)
    for name, value, needle in [
            ("nan", np.full_like(fcn_state[key], np.nan), "NaN/Inf"),
            ("complex", fcn_state[key].astype(np.complex64), "dtype complex64"),
            ("int", fcn_state[key].astype(np.int32), "dtype int32"),
            ("huge", fcn_state[key] * 1e9, "not trained weights")]:
        np.savez(tmp_path / f"{name}.npz", **{**fcn_state, key: value})
        _refused(tmp_path, capsys, tmp_path / f"{name}.npz", repr(key), needle)


def test_npz_keys_and_shapes_come_from_headers_before_any_data(tmp_path, fcn_state, capsys, monkeypatch):
    path = tmp_path / "extra.npz"
    np.savez(path, **fcn_state)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:  # 200 MB of zeros
        with zf.open("extra.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (50_000_000,)})
            block = bytes(1 << 23)
            for _ in range(23):
                f.write(block)
            f.write(bytes(200_000_000 - 23 * (1 << 23)))
    assert path.stat().st_size < 5_000_000
    loaded = []
    monkeypatch.setattr(torch_checkpoint._NpzTensor, "__array__", lambda self, *a, **k: loaded.append(self.member))
    _refused(tmp_path, capsys, path, "unexpected tensor 'extra' (50000000,)")
    assert loaded == []  # nothing was read


def test_npz_with_a_lying_or_huge_header_and_object_arrays(tmp_path, fcn_state, capsys):
    key = _kernel(fcn_state)
    lying = tmp_path / "lying.npz"
    with zipfile.ZipFile(lying, "w") as zf:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 12)})
        zf.writestr(f"{key}.npy", buf.getvalue() + bytes(64))
    _refused(tmp_path, capsys, lying, str(lying), "header claims shape (1000000000000, 12)")
    big_header = tmp_path / "big_header.npz"
    with zipfile.ZipFile(big_header, "w") as zf:
        zf.writestr(f"{key}.npy", b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little") + b" " * 10**6)
    _refused(tmp_path, capsys, big_header, str(big_header))
    obj = tmp_path / "object.npz"
    np.savez(obj, **{**fcn_state, key: np.array([None, 1], dtype=object)})
    _refused(tmp_path, capsys, obj, str(obj), "object array")


@pytest.mark.parametrize("scale", [0.0, np.nan, np.inf, -1.0])
def test_standard_scaler_scale_follows_the_std_rule(tmp_path, fcn_state, capsys, scale):
    from sklearn.preprocessing import StandardScaler

    ss = StandardScaler().fit(np.random.default_rng(0).normal(0, 0.3, (100, 1)))
    ss.scale_ = np.array([scale])
    (tmp_path / "ss.pkl").write_bytes(pickle.dumps(ss))
    np.savez(tmp_path / "ok.npz", **fcn_state)
    _refused(tmp_path, capsys, tmp_path / "ok.npz", "ss.pkl", "std", extra=("--standardizer", tmp_path / "ss.pkl"))
    _refused(tmp_path, capsys, tmp_path / "ok.npz", "--std", extra=("--mean", 0, "--std", scale))


def _stub_pickle(state) -> bytes:
    """A pickle naming sklearn's StandardScaler (read by the restricted unpickler) with ``state``."""
    body = pickle.dumps(state, protocol=2)[2:-1]  # without PROTO and STOP
    return (b"\x80\x02csklearn.preprocessing._data\nStandardScaler\nq\x00)\x81q\x01" + body + b"b.")


@pytest.mark.parametrize("name, data", [
    ("empty", b""),
    ("ext", b"\x80\x02\x82\x01."),  # EXT1 opcode: an unregistered extension code
    ("ragged", _stub_pickle({"mean_": [[0.0], [1.0, 2.0]], "scale_": [1.0]})),
    ("stub", _stub_pickle({"mean_": "zero", "scale_": {"a": 1}})),
    ("truncated", pickle.dumps({"a": 1})[:-3]),
])
def test_bad_pickles_are_one_error_line(tmp_path, fcn_state, capsys, name, data):
    (tmp_path / f"{name}.pkl").write_bytes(data)
    np.savez(tmp_path / "ok.npz", **fcn_state)
    _refused(tmp_path, capsys, tmp_path / "ok.npz", f"{name}.pkl",
             extra=("--standardizer", tmp_path / f"{name}.pkl"))
    _refused(tmp_path, capsys, tmp_path / "ok.npz", f"{name}.pkl",
             extra=("--mean", 0, "--std", 1, "--classes", tmp_path / f"{name}.pkl"))


def test_empty_and_garbage_checkpoints(tmp_path, capsys):
    (tmp_path / "empty.npz").write_bytes(b"")
    _refused(tmp_path, capsys, tmp_path / "empty.npz", "empty.npz")
    (tmp_path / "garbage.pth").write_bytes(b"\x00" * 10)
    _refused(tmp_path, capsys, tmp_path / "garbage.pth", "garbage.pth")


def test_standardizer_refuses_implausible_values_everywhere(tmp_path):
    for mean, std in [(0, 0), (0, -1), (np.nan, 1), (0, np.inf), (1e9, 1)]:
        with pytest.raises(ValueError, match="standardiser"):
            Standardizer(mean, std)
    (tmp_path / "s.json").write_text('{"type": "scalar", "mean": 0.0, "std": 0.0}')
    with pytest.raises(ValueError, match="std"):
        Standardizer.load(tmp_path / "s.json")


def test_loaded_weights_are_checked_on_every_load_path(trained_run, tmp_path, data_env, capsys):
    """A run whose model.keras holds a NaN kernel: refused by runs.resolve (predict, --init-from) and
    by pretrained() of its release."""
    import shutil

    import keras

    from ecg_keras import zoo
    from ecg_keras.export.release import release_run
    from ecg_keras.runs import resolve
    from ecg_keras.cli import train as train_cli

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    model = keras.saving.load_model(run / "model.keras", compile=False)
    kernel = next(v for v in model.weights if v.path.endswith("kernel"))
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    model.save(run / "model.keras")
    with pytest.raises(ValueError, match="NaN/Inf"):
        resolve(run).model  # noqa: B018
    code = train_cli.main(["--task", "rhythm", "--dataset", "synthetic", "--arch", "fcn_wang", "--quiet",
                           "--init-from", str(run), "--epochs", "1", "--output", str(tmp_path / "ft")])
    err = capsys.readouterr().err
    assert code != 0 and "NaN/Inf" in err and "Traceback" not in err, err
    release_run(run, "bad-nan", models_directory=tmp_path / "models")
    with pytest.raises(ValueError, match="NaN/Inf"):
        zoo.pretrained(name="bad-nan", weights=None, models_directory=tmp_path / "models")

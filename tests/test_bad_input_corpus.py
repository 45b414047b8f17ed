"""Issue 23 acceptance: every command x a corpus of bad inputs -> the exit code of docs/CLI.md's
table, one ``error:`` line on stderr naming the file, no traceback, nothing written outside the
named outputs. Commands run in-process through ``ecg_keras.cli.resolve(command)(argv)`` (spawning
TensorFlow per case would cost ~5-10 s each)."""
from __future__ import annotations

import io
import os
import sys
import zipfile

import numpy as np
import pytest

from ecg_keras.cli import resolve as command


def _npy_header_only(path, shape, descr="<f8"):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(b"\0" * 64)


def _wfdb(path, fs_field="500", gain="1000.0(0)"):
    from ecg_keras.datasets.synthetic import write_wfdb

    x = np.sin(np.arange(1000) / 9.0)[:, None] * np.linspace(0.5, 1.5, 12)
    write_wfdb(path, x, 500)
    hea = path.with_suffix(".hea")
    text = hea.read_text().replace(" 500 1000", f" {fs_field} 1000", 1).replace("1000.0(0)/mV", f"{gain}/mV", 1)
    hea.write_text(text)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Bad inputs, one per file (each case copies nothing: commands must not write here)."""
    d = tmp_path_factory.mktemp("corpus")
    (d / "empty.npy").write_bytes(b"")
    _npy_header_only(d / "huge.npy", (10**12, 12))
    np.save(d / "bool.npy", np.ones((500, 12), bool))
    np.save(d / "complex.npy", np.ones((500, 12), complex))
    (d / "text.csv").write_text("I,II\n0.1,abc\n")
    (d / "wide.csv").write_text("\n".join(",".join(["1.5"] * 5000) for _ in range(3)) + "\n")
    (d / "binary.csv").write_bytes(os.urandom(2000))
    for name, fs, gain in (("fs_nan", "nan", "1000.0(0)"), ("fs_neg", "-500", "1000.0(0)"), ("fs_1", "1", "1000.0(0)"),
                           ("gain0", "500", "0"), ("gain_neg", "500", "-1000")):
        (d / name).mkdir()
        _wfdb(d / name / "r", fs, gain)
    (d / "empty.npz").write_bytes(b"")
    (d / "junk.npz").write_bytes(b"PK\x03\x04junk")
    np.savez(d / "object.npz", w=np.array([None], dtype=object))
    lying = d / "lying.npz"
    with zipfile.ZipFile(lying, "w") as zf:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
        zf.writestr("0.0.0.weight.npy", buf.getvalue())
    (d / "empty.pkl").write_bytes(b"")
    (d / "ext.pkl").write_bytes(b"\x80\x02\x82\x01.")
    (d / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # os.system('true'): refused, never run
    (d / "bad_run").mkdir()
    (d / "bad_run" / "config.json").write_text("{not json")
    (d / "empty_dir").mkdir()
    (d / "junk_ptbxl").mkdir()
    (d / "junk_ptbxl" / "ptbxl_database.csv").write_text("ecg_id,filename_lr\n1,records100/nope\n")
    return d


def _tree(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


PREDICT_INPUTS = ["empty.npy", "huge.npy", "bool.npy", "complex.npy", "text.csv", "wide.csv", "binary.csv",
                  "fs_nan/r", "fs_neg/r", "fs_1/r", "gain0/r", "gain_neg/r"]


def _cases():
    cases = [(f"predict {f}", ["predict", "{run}", "{corpus}/" + f, "--fs", "500", "--no-progress", "--out",
                               "{out}/p.csv"], 1, f.split("/")[0]) for f in PREDICT_INPUTS]
    for ckpt in ("empty.npz", "junk.npz", "object.npz", "lying.npz"):
        cases.append((f"from-torch {ckpt}", ["export", "from-torch", "{corpus}/" + ckpt, "--arch", "fcn_wang",
                                             "--task", "all", "--out", "{out}/ft", "--mean", "0", "--std", "1"], 1, ckpt))
    for pkl in ("empty.pkl", "ext.pkl", "evil.pkl"):
        cases.append((f"from-torch --standardizer {pkl}", ["export", "from-torch", "{corpus}/object.npz", "--arch",
                      "fcn_wang", "--task", "all", "--out", "{out}/ft", "--standardizer", "{corpus}/" + pkl], 1, pkl))
    for sub, out in (("onnx", "m.onnx"), ("savedmodel", "sm"), ("litert", "m.tflite")):
        cases.append((f"export {sub} bad run", ["export", sub, "{corpus}/bad_run", "--out", "{out}/" + out], 1,
                      "bad_run"))
    cases += [
        ("export release bad run", ["export", "release", "{corpus}/bad_run", "--name", "x", "--models-dir",
                                    "{out}/models"], 1, "bad_run"),
        ("evaluate bad run", ["evaluate", "{corpus}/bad_run", "--out", "{out}/ev"], 1, "bad_run"),
        ("data summary empty", ["data", "summary", "{corpus}/empty_dir"], 1, "empty_dir"),
        ("data summary fs nan", ["data", "summary", "{corpus}/fs_nan"], 1, "r.hea"),
        ("train empty --data-dir", ["train", "--dataset", "ptbxl", "--data-dir", "{corpus}/empty_dir", "--task",
                                    "rhythm", "--arch", "fcn_wang", "--epochs", "1", "--output", "{out}/tr",
                                    "--quiet"], 1, "empty_dir"),
        ("train junk --data-dir", ["train", "--dataset", "ptbxl", "--data-dir", "{corpus}/junk_ptbxl", "--task",
                                   "rhythm", "--arch", "fcn_wang", "--epochs", "1", "--output", "{out}/tr",
                                   "--quiet"], 1, "junk_ptbxl"),
    ]
    return cases


@pytest.mark.parametrize("name, argv, code, names", _cases(), ids=[c[0] for c in _cases()])
def test_command_on_bad_input(name, argv, code, names, corpus, trained_run, tmp_path, capsys, data_env):
    out = tmp_path / "out"
    out.mkdir()
    argv = [a.format(run=trained_run, corpus=corpus, out=out) for a in argv]
    before = _tree(corpus), _tree(tmp_path)
    try:
        got = command(argv[0])(argv[1:])
    except SystemExit as e:  # `raise SystemExit("error: ...")`: printed to stderr, status 1 by Python
        got = 1 if isinstance(e.code, str) else e.code
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    captured = capsys.readouterr()
    err = captured.err
    assert got == code, (got, err)
    assert "Traceback" not in err and "Traceback" not in captured.out
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and names in errors[0], err
    after = _tree(tmp_path) - before[1]
    allowed = {"out/p.csv"} if argv[0] == "predict" else set()
    assert after <= allowed, after  # nothing but the named output
    assert _tree(corpus) == before[0]

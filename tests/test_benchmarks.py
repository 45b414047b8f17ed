"""Smoke test of the benchmark machinery (benchmarks/) with tiny settings (< 60 s)."""
import json
import threading
import time

import keras
import pytest

from benchmarks import flops
from benchmarks import run as bench


def test_flops_of_conv_dense_and_lstm_layers():
    inp = keras.Input((100, 12))
    x = keras.layers.Conv1D(32, 5, padding="same", use_bias=False)(inp)  # 2*100*5*12*32
    x = keras.layers.Conv1D(16, 3, strides=2, padding="valid")(x)  # out 49: 2*49*3*32*16
    x = keras.layers.LSTM(8, return_sequences=True)(x)  # 2*49*4*8*(16+8)
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(4)(x)  # 2*8*4
    model = keras.Model(inp, out)
    expected = 2 * 100 * 5 * 12 * 32 + 2 * 49 * 3 * 32 * 16 + 2 * 49 * 4 * 8 * 24 + 2 * 8 * 4
    assert flops.forward_flops(model) == expected
    assert flops.train_flops(model) == 3 * expected


def test_zoo_models_have_plausible_flops():
    from ecg_keras import models

    fcn = flops.forward_flops(models.get("fcn_wang", input_shape=(250, 12)))
    # fcn_wang: 2*250*(8*12*128 + 5*128*256 + 3*256*128) + head, about 128 MFLOP per window
    assert fcn == pytest.approx(2 * 250 * (8 * 12 * 128 + 5 * 128 * 256 + 3 * 256 * 128), rel=0.01)
    assert flops.forward_flops(models.get("lstm", input_shape=(250, 12))) > 2 * 250 * 4 * 256 * 256


def test_train_and_infer_workers_tiny():
    r = bench.work_train("fcn_wang", batch_size=8, seconds=0.0, warmup=1, min_steps=2, max_steps=2, records=16)
    assert r["steps"] == 2 and r["windows_per_s"] > 0 and r["train_gflops"] > 0
    assert r["deterministic"] is True and r["params"] == 318_279
    assert r["cpu_ms_per_step"] > 0 and r["train_gflops_per_cpu_s"] > 0
    cold = bench.work_train("fcn_wang", batch_size=8, seconds=0.0, warmup=0, min_steps=2, max_steps=2, records=16)
    assert cold["steps"] == 2 and cold["warmup_s"] == 0 and 0 < cold["windows_per_s"] < float("inf")
    i = bench.work_infer("fcn_wang", seconds=0.0, batches=(1, 2), engines=("keras",))
    assert i["windows_per_record"] == 7
    assert set(i["engines"]["keras"]) == {"1", "2"}
    assert i["engines"]["keras"]["2"]["windows_per_s"] > 0


def test_worker_subprocess_and_report():
    m = bench.run_worker("matmul", 120, n=64, seconds=0.01)
    assert m["ok"] and m["gflops_best"] > 0 and m["process_s"] > 0 and m["gflops_per_cpu_s"] > 0
    assert m["onednn"] is True  # the package's default (TF_ENABLE_ONEDNN_OPTS=1), inherited by the worker
    bad = bench.run_worker("train", 120, arch="no_such_model", seconds=0.0)
    assert not bad["ok"] and "no_such_model" in bad["error"]

    def fake(scale):
        eng = {"1": {"ms_per_record": 10 / scale, "windows_per_s": 70 * scale},
               "64": {"ms_per_record": 2 / scale, "windows_per_s": 300 * scale}}
        return {"benchmark": "ecg_keras", "machine": {"cpu_model": "cpu", "cpus": 2, "load_average": [1, 1, 1],
                                                      "date": "today"},
                "versions": {"keras": keras.__version__}, "matmul_peak_gflops": 50.0, "total_s": 1, "command": "x",
                "train": {"resnet1d_wang": {"ok": True, "jit": False, "windows_per_s": 100.0 * scale,
                                            "train_gflops": 20.0 * scale, "first_step_s": 1.0, "peak_rss_mb": 900}},
                "infer": {"resnet1d_wang": {"ok": True, "engines": {"keras": eng, "onnx": eng}, "peak_rss_mb": 800}},
                "data": {"ok": True, "n_records": 10, "n_jobs": 2, "cold_records_per_s": 100.0,
                         "cached_records_per_s": 1000.0}}

    old, new = fake(1.0), fake(2.0)
    text = bench.table(new)
    assert "resnet1d_wang" in text and "200.0" in text and "cached 1000 records/s" in text
    assert "2.00x" in bench.compare(new, old)


def test_measured_peer_ratios(tmp_path):
    """``--peer``: a benchmarks/torch_peer.py JSON gives per-model ratios and met / no against the targets."""
    peer = {"meta": {"torch": "2.13.0+cpu", "timestamp": "2026-11-29T11:23:31"},
            "models": {"fcn_wang": {"train": {"windows_per_s_median": 100.0}, "infer": {"windows_per_s_median": 400.0}}}}
    path = tmp_path / "peer.json"
    path.write_text(json.dumps(peer))
    measured = bench.load_peer(path)
    assert measured["models"] == {"fcn_wang": {"train": 100.0, "infer": 400.0}}
    eng = {"64": {"windows_per_s": 900.0, "ms_per_record": 1.0}}
    result = {"machine": {"cpu_model": "cpu", "cpus": 2, "load_average": [1, 1, 1], "date": "today"},
              "versions": {}, "matmul": [{"onednn": True}], "matmul_peak_gflops": 50.0, "total_s": 1, "command": "x",
              "train": {"fcn_wang": {"ok": True, "jit": False, "windows_per_s": 160.0, "train_gflops": 20.0,
                                     "first_step_s": 1.0, "peak_rss_mb": 900}},
              "infer": {"fcn_wang": {"ok": True, "engines": {"onnx": eng}, "peak_rss_mb": 800}},
              "peer_measured": measured}
    text = bench.table(result)
    assert "oneDNN on" in text
    section = text.split("against the PyTorch peer measured on this machine")[1]
    row = next(line for line in section.splitlines() if line.startswith("fcn_wang"))
    assert row.split() == ["fcn_wang", "160.0", "100.0", "1.60", "met", "900.0", "400.0", "2.25", "met"]


def test_kernel_benchmark_implementations_agree():
    import numpy as np
    import tensorflow as tf

    from benchmarks import kernels

    x = tf.random.normal([2, 20, 3], seed=0)
    for k in (1, 4, 5):  # even kernels pad one more sample on the right, as "SAME" does
        w = tf.random.normal([k, 3, 4], seed=1)
        ref = kernels.IMPLEMENTATIONS["conv1d"](x, w).numpy()
        for impl in ("im2col", "shift_matmul"):
            np.testing.assert_allclose(kernels.IMPLEMENTATIONS[impl](x, w).numpy(), ref, atol=1e-5)
    assert kernels.conv_flops(250, 128, 128, 5) == 3 * 2 * 128 * 250 * 128 * 128 * 5
    assert kernels.measure((20, 3, 4, 5), repeats=1) > 0


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8 amx_complex
processor\t: 1
model name\t: should not be read
flags\t\t: fpu
"""


def test_cpu_model_and_isa_flags():
    info = bench.cpu_info(CPUINFO)
    assert info["cpu_model"] == "AMD EPYC 9R14"
    assert info["isa"] == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                           "amx_int8", "amx_complex"]
    avx2_only = bench.cpu_info("model name : Intel Xeon\nflags : sse4_2 avx avx2 fma\n")
    assert avx2_only["isa"] == ["avx2", "fma"]
    assert bench.isa_summary(avx2_only["isa"]) == "avx2 fma; no amx; no avx512"
    assert bench.isa_summary(None) == "ISA flags unknown"
    assert bench.cpu_info("nothing useful")["isa"] is None
    here = bench.machine_info()  # this machine's /proc/cpuinfo
    assert "isa" in here and here["cpu_model"]
    result = {"machine": {"cpu_model": "AMD EPYC 9R14", "isa": info["isa"], "cpus": 2, "load_average": [1, 1, 1],
                          "date": "today"}, "versions": {}, "matmul": [], "matmul_peak_gflops": 1.0, "total_s": 1,
              "command": "x", "train": {}, "infer": {}}
    assert bench.table(result).splitlines()[0].startswith("AMD EPYC 9R14 (avx2 fma avx512f avx512_vnni avx512_bf16 "
                                                          "amx_tile amx_bf16 amx_int8 amx_complex), 2 CPUs")


def test_peer_live_interleaving_order(monkeypatch):
    """--peer-live: ours arch A (train, infer), peer arch A, ours arch B, ...; the peer subprocess is mocked."""
    assert bench.schedule(["a", "b"]) == [("train", "a"), ("train", "b"), ("infer", "a"), ("infer", "b")]
    calls = []

    def fake_worker(kind, timeout, log=print, **kwargs):
        calls.append((kind, kwargs.get("arch")))
        if kind == "matmul":
            return {"ok": True, "gflops_best": 10.0}
        if kind == "train":
            return {"ok": True, "windows_per_s": 300.0, "train_gflops": 1.0, "first_step_s": 1.0, "jit": False,
                    "process_s": 1, "peak_rss_mb": 1}
        return {"ok": True, "engines": {"keras": {"64": {"windows_per_s": 1000.0, "ms_per_record": 1.0}}},
                "process_s": 1, "peak_rss_mb": 1}

    def fake_subprocess_run(cmd, **kwargs):
        calls.append(("peer", cmd[cmd.index("--archs") + 1]))
        assert cmd[0] == "/peer/python" and cmd[1].endswith("torch_peer.py") and "--no-matmul" in cmd
        out = cmd[cmd.index("--output") + 1]
        arch = cmd[cmd.index("--archs") + 1]
        with open(out, "w") as f:
            json.dump({"meta": {"torch": "2.13.0", "timestamp": "t", "loadavg_before": [1, 1, 1]},
                       "models": {arch: {"train": {"windows_per_s_median": 200.0},
                                         "infer": {"windows_per_s_median": 400.0}}}}, f)
        return bench.subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(bench, "run_worker", fake_worker)
    monkeypatch.setattr(bench.subprocess, "run", fake_subprocess_run)
    result = bench.run_benchmark(["fcn_wang", "lstm"], data=False, peer_python="/peer/python", log=lambda *a: None)
    assert calls == [("matmul", None), ("train", "fcn_wang"), ("infer", "fcn_wang"), ("peer", "fcn_wang"),
                     ("train", "lstm"), ("infer", "lstm"), ("peer", "lstm"), ("matmul", None)]
    assert result["order"] == ["train fcn_wang", "infer fcn_wang", "peer fcn_wang", "train lstm", "infer lstm",
                               "peer lstm"]
    assert result["peer_measured"]["models"]["lstm"] == {"train": 200.0, "infer": 400.0}
    text = bench.table(result)
    row = next(line for line in text.split("against the PyTorch peer")[1].splitlines() if line.startswith("lstm"))
    assert row.split() == ["lstm", "300.0", "200.0", "1.50", "met", "1000.0", "400.0", "2.50", "met"]


def test_peer_live_flags(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "torch_importable", lambda python=None: False)
    with pytest.raises(SystemExit, match="--peer-live needs PyTorch"):
        bench.main(["--peer-live", "--archs", "fcn_wang"])
    with pytest.raises(SystemExit, match="import torch' fails in that interpreter"):
        bench.main(["--peer-live", "--peer-python", "/no/python"])
    with pytest.raises(SystemExit):
        bench.main(["--peer-python", "/x/python"])  # without --peer-live
    assert "--peer-python needs --peer-live" in capsys.readouterr().err
    seen = {}

    def fake_run(archs, **kwargs):
        seen.update(kwargs, archs=archs)
        raise SystemExit(0)

    monkeypatch.setattr(bench, "torch_importable", lambda python=None: python == "/venv/bin/python")
    monkeypatch.setattr(bench, "run_benchmark", fake_run)
    with pytest.raises(SystemExit):
        bench.main(["--peer-live", "--peer-python", "/venv/bin/python", "--archs", "lstm", "--peer-seconds", "5"])
    assert seen["peer_python"] == "/venv/bin/python" and seen["peer_seconds"] == 5.0 and seen["archs"] == ["lstm"]
    monkeypatch.setattr(bench, "torch_importable", lambda python=None: python is None)
    with pytest.raises(SystemExit):
        bench.main(["--peer-live"])
    assert seen["peer_python"] == bench.sys.executable
    with pytest.raises(SystemExit):
        bench.main(["--archs", "lstm"])
    assert seen["peer_python"] is None


def test_train_worker_precision():
    r = bench.work_train("fcn_wang", batch_size=8, seconds=0.0, warmup=1, min_steps=1, max_steps=1, records=16,
                         precision="mixed_bfloat16")
    assert r["precision"] == "mixed_bfloat16" and r["steps"] == 1 and r["windows_per_s"] > 0
    assert r["jit"] is False
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored after the build


def test_ab_variants(capsys):
    from benchmarks import ab
    from ecg_keras.models import rnn

    bf16 = ab.build("fcn_wang", "bf16")
    assert bf16.dtype_policy.name == "mixed_bfloat16" and bf16.layers[-1].compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    unrolled = ab.build("gru", "unroll,xla")
    assert [layer.unroll for layer in unrolled.layers if isinstance(layer, keras.layers.GRU)] == [True, True]
    assert rnn.RNN_LAYERS["gru"] is keras.layers.GRU  # restored
    with pytest.raises(ValueError, match="unknown variant"):
        ab.build("fcn_wang", "bf16,fast")
    from ecg_keras.models.layers import PointwiseConv1D

    flags = {v: [l.use_matmul for l in ab.build("inception1d", v).layers if isinstance(l, PointwiseConv1D)]
             for v in ("default", "conv")}
    assert flags["default"] and all(flags["default"]) and not any(flags["conv"])
    assert ab.main(["--arch", "fcn_wang", "--variants", "default", "bf16", "--rounds", "1", "--batch-size", "4",
                    "--infer", "--infer-batch", "2", "--peak"]) == 0
    out = capsys.readouterr().out
    assert "training, batch 4" in out and "inference, batch 2 windows" in out and "x default" in out
    assert "CPU ms/call" in out and out.count("% of the matmul's") == 2  # default, bf16


# --------------------------------------------------------------------------- --against (benchmarks/against.py)
def _fake_tree(root, worker_src, with_package=True):
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "run.py").write_text(worker_src)
    if with_package:
        (root / "ecg_keras").mkdir()
        (root / "ecg_keras" / "__init__.py").write_text("")
    return {"label": "fake", "path": str(root), "commit": "0" * 40, "dirty": False}


def test_against_child_runs_the_trees_own_worker(tmp_path):
    """The child imports the tree's benchmarks.run and ecg_keras; an older worker's missing keywords are
    dropped only at their default; code imported from elsewhere is an error."""
    from benchmarks import against

    src = ("import ecg_keras\n"
           "def work_infer(arch, seconds=1.0):\n"
           "    return {'arch': arch, 'engines': {'onnx': {'64': {'windows_per_s': 100.0 * seconds}}}}\n"
           "WORKERS = {'infer': work_infer}\n")
    tree = _fake_tree(tmp_path / "old", src)
    r = against.run_in_tree(tree, "infer", 60, {"engines": ["keras"]}, arch="lstm", seconds=2.0, engines=["keras"])
    assert r["ok"] and r["dropped"] == ["engines"], r
    assert r["source"]["ecg_keras"] == str(tmp_path / "old" / "ecg_keras" / "__init__.py")
    assert r["source"]["benchmarks.run"] == str(tmp_path / "old" / "benchmarks" / "run.py")
    assert against.figures("infer", r) == {("onnx", "64"): 200.0}
    bad = against.run_in_tree(tree, "infer", 60, {"engines": ["keras"]}, arch="lstm", engines=["onnx"])
    assert not bad["ok"] and "does not take engines" in bad["error"]
    stray = _fake_tree(tmp_path / "stray", src, with_package=False)  # ecg_keras would come from this checkout
    with pytest.raises(against.AgainstError, match="imported ecg_keras from"):
        against.run_in_tree(stray, "infer", 60, {}, arch="lstm")


def test_against_ratio_rows_and_report():
    from benchmarks import against

    def infer(onnx, keras_=500.0):
        return {"ok": True, "engines": {"onnx": {"64": {"windows_per_s": onnx}},
                                        "keras": {"64": {"windows_per_s": keras_}}}}

    runs = [{"round": 0, "part": "infer", "arch": "lstm", "a": infer(280.0), "b": infer(410.0)},
            {"round": 1, "part": "infer", "arch": "lstm", "a": infer(300.0, 520.0), "b": infer(400.0)},
            {"round": 0, "part": "train", "arch": "fcn_wang",
             "a": {"ok": True, "batch_size": 128, "windows_per_s": 90.0}, "b": {"ok": False, "error": "boom"}}]
    rows = {(r["part"], r["arch"], r["engine"], r["batch"]): r for r in against.ratios(runs)}
    onnx = rows[("infer", "lstm", "onnx", "64")]
    assert onnx["a"] == [280.0, 300.0] and onnx["b"] == [410.0, 400.0]
    assert onnx["ratio"] == round(290.0 / 405.0, 3) and onnx["verdict"] == "slower"
    assert (onnx["low"], onnx["high"]) == (round(280 / 410, 3), 0.75)
    assert rows[("infer", "lstm", "keras", "64")]["verdict"] == "same"
    failed = rows[("train", "fcn_wang", "train", "128")]
    assert failed["ratio"] is None and "b: boom" in failed["error"]
    result = {"machine": {"cpu_model": "AMD EPYC", "isa_summary": "avx2 fma", "cpus": 2, "load_average": [1, 1, 1],
                          "date": "today"},
              "trees": [{"commit": "a" * 40, "dirty": True}, {"label": "02a6d4d", "commit": "b" * 40}],
              "rounds": 2, "margin": 0.1, "ratios": against.ratios(runs), "total_s": 1.0, "command": "x"}
    lines = against.report(result).splitlines()
    assert "A = this tree (aaaaaaaaaaaa + changes), B = 02a6d4d (bbbbbbbbbbbb)" in lines[1]
    assert lines[2].split() == ["part", "model", "engine", "batch", "A", "win/s", "B", "win/s", "A/B", "rounds",
                                "verdict"]
    assert next(l for l in lines if " onnx " in l).split() == ["infer", "lstm", "onnx", "64", "290.0", "405.0", "0.72",
                                                               "0.68-0.75", "slower"]
    assert any(l.startswith("train") and "FAILED: b: boom" in l for l in lines)


def test_against_extracts_the_revision_and_measures_both_trees(tmp_path, capsys, monkeypatch):
    """``--against HEAD`` with the workers stubbed (test_against_child_runs_the_trees_own_worker runs a
    real child in a tree; the slow test below runs both trees for real): HEAD extracted with git
    archive, each tree measured once, the ratio row, the report and the JSON."""
    import subprocess
    from pathlib import Path

    from benchmarks import against

    if subprocess.run(["git", "-C", str(against.REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    seen = []

    def run_in_tree(tree, kind, timeout, defaults, **kwargs):
        root = Path(tree["path"])
        assert (root / "benchmarks" / "run.py").is_file() and (root / "ecg_keras" / "__init__.py").is_file()
        seen.append((tree["label"], kind, kwargs["arch"]))
        speed = 100.0 if tree["label"] == "HEAD" else 150.0
        return {"ok": True, "process_s": 1.0, "source": {"ecg_keras": str(root / "ecg_keras" / "__init__.py")},
                "engines": {"keras": {"1": {"windows_per_s": speed}}}}

    monkeypatch.setattr(against, "run_in_tree", run_in_tree)
    out = tmp_path / "against.json"
    assert bench.main(["--against", "HEAD", "--archs", "fcn_wang", "--parts", "infer", "--engines", "keras",
                       "--batches", "1", "--rounds", "1", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    a, b = result["trees"]
    assert a["path"] == str(against.REPO) and b["label"] == "HEAD" and len(b["commit"]) == 40
    assert seen == [("this tree", "infer", "fcn_wang"), ("HEAD", "infer", "fcn_wang")]
    (row,) = result["ratios"]
    assert (row["part"], row["arch"], row["engine"], row["batch"]) == ("infer", "fcn_wang", "keras", "1")
    assert row["ratio"] == pytest.approx(1.5)
    text = capsys.readouterr().out
    assert "infer  fcn_wang       keras          1" in text and f"wrote {out}" in text


@pytest.mark.slow
def test_against_measures_both_trees(tmp_path, capsys):
    """End to end on a tiny setting: this tree and HEAD (git archive), one round, both really run."""
    import subprocess

    from benchmarks import against

    if subprocess.run(["git", "-C", str(against.REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    out = tmp_path / "against.json"
    code = bench.main(["--against", "HEAD", "--archs", "fcn_wang", "--parts", "infer", "--engines", "keras",
                       "--batches", "1", "--infer-seconds", "0.05", "--rounds", "1", "--output", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    a, b = result["trees"]
    assert a["path"] == str(against.REPO) and b["label"] == "HEAD" and len(b["commit"]) == 40
    (run,) = result["runs"]
    for side, tree in (("a", a), ("b", b)):
        assert run[side]["ok"] and run[side]["source"]["ecg_keras"].startswith(tree["path"] + "/")
    assert run["b"]["source"]["ecg_keras"] != run["a"]["source"]["ecg_keras"]
    (row,) = result["ratios"]
    assert (row["part"], row["arch"], row["engine"], row["batch"]) == ("infer", "fcn_wang", "keras", "1")
    assert row["ratio"] == pytest.approx(row["a_median"] / row["b_median"], rel=1e-3)
    text = capsys.readouterr().out
    assert "infer  fcn_wang       keras          1" in text and f"wrote {out}" in text


def test_against_errors(capsys):
    assert bench.main(["--against", "no-such-revision-xyz", "--archs", "fcn_wang"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --against no-such-revision-xyz: not a commit of the repository")
    with pytest.raises(SystemExit):
        bench.main(["--against", "HEAD", "--compare", "x.json"])
    assert "--compare does not combine" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--fail-below", "0.9"])
    assert "--fail-below needs --against" in capsys.readouterr().err


@pytest.fixture
def registry_restored():
    """The model registry as it was before the test (``benchmarks.stream`` registers ``probe_conv``)."""
    from ecg_keras.models import _registry

    saved = dict(_registry._REGISTRY)
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)


def test_stream_ab_rounds_ratios_and_cpu_time(synthetic_data, capsys, registry_restored):
    """benchmarks.stream: ABBA turns, per-round ratios with their spread, CPU time per step and the
    input pipelines alone, on the session's synthetic set (probe_conv: cheap steps)."""
    from benchmarks import stream

    assert stream.turn_order(3) == [(0, "in-memory"), (0, "streamed"), (1, "streamed"), (1, "in-memory"),
                                    (2, "in-memory"), (2, "streamed")]
    fast = [{"n": 2, "wall": 1.0, "cpu": 2.0, "compute": 1.5}, {"n": 2, "wall": 4.0, "cpu": 2.2, "compute": 1.6},
            {"n": 2, "wall": 2.0, "cpu": 2.0, "compute": 1.5}]
    slow = [{"n": 2, "wall": 1.1, "cpu": 2.2, "compute": 1.5}, {"n": 2, "wall": 4.4, "cpu": 2.2, "compute": 1.6},
            {"n": 2, "wall": 2.4, "cpu": 2.4, "compute": 1.5}]
    s = stream.summarize({"in-memory": fast, "streamed": slow})
    # per round: 1/1.1, 1/1.1, 1/1.2 of the steps/s although the turns' speeds differ 4x
    assert s["ratio_steps_per_s"]["median"] == pytest.approx(1 / 1.1)
    assert s["ratio_steps_per_s"]["min"] == pytest.approx(1 / 1.2)
    assert s["ratio_cpu_per_step"]["median"] == pytest.approx(1.1) and s["ratio_cpu_per_step"]["min"] == 1.0
    assert s["in-memory"]["cpu_per_step"]["median"] == pytest.approx(1.0)
    assert s["streamed"]["other_per_step"]["median"] == pytest.approx(0.35)
    assert stream.spread([3.0, 1.0, 2.0, 4.0]) == {"median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0}

    main_thread = frozenset([threading.get_native_id()])
    assert main_thread <= stream.threads()
    busy = stream.timed(lambda: sum(i * i for i in range(300_000)), 5, main_thread)
    assert busy["n"] == 5 and busy["cpu"] > 0.02 and busy["cpu"] - 0.03 <= busy["compute"] <= busy["cpu"] + 0.03
    idle = stream.timed(lambda: time.sleep(0.02), 3, main_thread)
    assert idle["wall"] >= 0.06 and idle["cpu"] < 0.03

    assert stream.main(["--data-dir", str(synthetic_data), "--arch", "probe_conv", "--records", "40",
                        "--batch-size", "8", "--rounds", "2", "--steps", "1", "--supply", "2",
                        "--supply-rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "round 1 streamed" in out and "load average" in out
    assert "streamed / in-memory, per round: steps/s" in out and "CPU s/step" in out
    assert out.count("input alone,") == 2

"""Smoke test of the benchmark machinery (benchmarks/) with tiny settings (< 60 s)."""
import json

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
    cold = bench.work_train("fcn_wang", batch_size=8, seconds=0.0, warmup=0, min_steps=2, max_steps=2, records=16)
    assert cold["steps"] == 2 and cold["warmup_s"] == 0 and 0 < cold["windows_per_s"] < float("inf")
    i = bench.work_infer("fcn_wang", seconds=0.0, batches=(1, 2), engines=("keras",))
    assert i["windows_per_record"] == 7
    assert set(i["engines"]["keras"]) == {"1", "2"}
    assert i["engines"]["keras"]["2"]["windows_per_s"] > 0


def test_worker_subprocess_and_report():
    m = bench.run_worker("matmul", 120, n=64, seconds=0.01)
    assert m["ok"] and m["gflops_best"] > 0 and m["process_s"] > 0
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

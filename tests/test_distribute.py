"""--distribute mirrored on two logical CPU devices: the loss decreases and the results match
single-device training within tolerance. Runs in a subprocess because logical devices must be
configured before TensorFlow initialises."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from ecg_keras import models
    from ecg_keras.training import TrainConfig, train

    @models.register("tiny_no_dropout")
    def tiny(num_classes=5, input_shape=None, include_top=True, pooling=None, name="tiny_no_dropout", **kw):
        # conv + BatchNorm, no dropout: dropout masks drawn per replica can never match one device's
        inputs = keras.Input(input_shape or (None, 12))
        x = keras.layers.Conv1D(16, 5, use_bias=False, name="conv")(inputs)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(keras.layers.ReLU(name="relu")(x))
        return keras.Model(inputs, keras.layers.Dense(num_classes, name="head_out")(x), name=name)

    data_dir, out = sys.argv[1], sys.argv[2]
    result = {"logical_cpus": len(tf.config.list_logical_devices("CPU"))}
    for mode in ("none", "mirrored"):
        run = train(TrainConfig(task="rhythm", dataset="synthetic", data_dir=data_dir, arch="tiny_no_dropout", epochs=4,
                                batch_size=16, seed=1, output=f"{out}/{mode}", distribute=mode, verbose=0))
        cfg = json.load(open(run / "config.json"))
        hist = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
        result[mode] = {"replicas": cfg["replicas"], "loss": hist["loss"].tolist(),
                        "val_loss": hist["val_loss"].tolist(),
                        "test": np.load(run / "predictions" / "test.npz")["y_pred"].tolist(),
                        "metrics": json.load(open(run / "metrics.json"))}
    print("RESULT " + json.dumps(result))
""")


@pytest.mark.timeout(600)
def test_mirrored_on_two_logical_cpus_matches_single_device(tmp_path):
    import numpy as np
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

    data = generate_synthetic_ptbxl(tmp_path / "ptbxl-synthetic", n_records=80, seed=0, sampling_rates=(100,),
                                    progress=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ECG_KERAS_DATA": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(data), str(tmp_path / "runs")], env=env,
                          capture_output=True, text=True, timeout=550)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    assert r["logical_cpus"] == 2
    single, mirrored = r["none"], r["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    # training works under the strategy: the loss decreases
    assert mirrored["loss"][-1] < mirrored["loss"][0]
    # same data, same init, global batch split 8 + 8 with synchronised BatchNorm: the same training
    # up to the order of floating-point reductions
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["val_loss"], single["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["test"], single["test"], atol=1e-4)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_multiworker_two_local_workers_write_one_run_dir(tmp_path):
    """Two MultiWorkerMirroredStrategy workers on localhost ($TF_CONFIG): the chief writes the run."""
    import numpy as np
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl

    data = generate_synthetic_ptbxl(tmp_path / "ptbxl-synthetic", n_records=80, seed=0, sampling_rates=(100,),
                                    progress=False)
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    out = tmp_path / "run"
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        env = {**os.environ, "PYTHONPATH": str(REPO), "ECG_KERAS_DATA": str(tmp_path), "TF_CONFIG": tf_config,
               "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), "--task", "rhythm", "--dataset", "synthetic", "--data-dir",
             str(data), "--arch", "fcn_wang", "--epochs", "3", "--batch-size", "16", "--output", str(out),
             "--distribute", "multiworker", "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    logs = [p.communicate(timeout=800)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(l[-2000:] for l in logs)
    assert (out / "COMPLETE").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["replicas"] == 2 and config["distribute"] == "multiworker"
    hist = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    assert hist["loss"][-1] < hist["loss"][0]

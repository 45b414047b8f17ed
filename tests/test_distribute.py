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

    from ecg_keras.training.data import load_splits

    data_dir, out = sys.argv[1], sys.argv[2]
    result = {"logical_cpus": len(tf.config.list_logical_devices("CPU"))}
    def n_train(directory):
        probe = TrainConfig(task="rhythm", dataset="synthetic", data_dir=directory, arch="tiny_no_dropout", seed=1)
        return len(load_splits(probe.resolved(), log=lambda *a: None)[0].train)

    # an epoch whose last batch of 16 is odd and >= 3, so that two replicas get unequal, non-empty
    # halves (e.g. 8 + 7): else a copy of the data without as many training records as that takes
    n = n_train(data_dir)
    if not (n % 16 >= 3 and n % 2 == 1):
        import shutil
        import pandas as pd
        copy = shutil.copytree(data_dir, f"{out}/data")
        table = pd.read_csv(f"{copy}/ptbxl_database.csv")
        for row in table.index[table["strat_fold"] <= 8]:
            table = table.drop(index=row)
            table.to_csv(f"{copy}/ptbxl_database.csv", index=False)
            if n_train(copy) % 16 >= 3 and n_train(copy) % 2 == 1:
                break
        data_dir, n = copy, n_train(copy)
    result["train_records"] = n
    for mode in ("none", "mirrored"):
        config = TrainConfig(task="rhythm", dataset="synthetic", data_dir=data_dir, arch="tiny_no_dropout", epochs=4,
                             batch_size=16, seed=1, output=f"{out}/{mode}", distribute=mode, verbose=0)
        run = train(config)
        cfg = json.load(open(run / "config.json"))
        hist = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
        result[mode] = {"replicas": cfg["replicas"], "loss": hist["loss"].tolist(),
                        "val_loss": hist["val_loss"].tolist(),
                        "test": np.load(run / "predictions" / "test.npz")["y_pred"].tolist(),
                        "metrics": json.load(open(run / "metrics.json"))}
    try:  # a last batch of 1 for 2 replicas: refused before training
        train(TrainConfig(task="rhythm", dataset="synthetic", data_dir=data_dir, arch="tiny_no_dropout", epochs=1,
                          batch_size=n - 1, seed=1, output=f"{out}/empty", distribute="mirrored", verbose=0))
        result["empty_replica"] = "trained"
    except ValueError as e:
        import os
        left = sorted(os.listdir(f"{out}/empty")) if os.path.isdir(f"{out}/empty") else []
        result["empty_replica"] = str(e) + (f" (left: {left})" if left else "")
    print("RESULT " + json.dumps(result))
""")


@pytest.fixture(scope="module")
def mirrored_result(synthetic_data, tmp_path_factory):
    """One subprocess trains the tiny model on one device and mirrored on two logical CPUs."""
    tmp_path = tmp_path_factory.mktemp("mirrored")
    env = {**os.environ, "PYTHONPATH": str(REPO), "ECG_KERAS_DATA": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(synthetic_data), str(tmp_path / "runs")], env=env,
                          capture_output=True, text=True, timeout=550)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.timeout(600)
def test_mirrored_on_two_logical_cpus_trains(mirrored_result):
    r = mirrored_result
    assert r["logical_cpus"] == 2
    single, mirrored = r["none"], r["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    # training works under the strategy: the loss decreases
    assert mirrored["loss"][-1] < mirrored["loss"][0]


@pytest.mark.timeout(600)
def test_mirrored_on_two_logical_cpus_matches_single_device(mirrored_result):
    """Each replica's loss counts by its share of the global batch: an epoch's last batch split
    unevenly over the replicas trains as one device on the whole batch."""
    import numpy as np

    single, mirrored = mirrored_result["none"], mirrored_result["mirrored"]
    assert mirrored_result["train_records"] % 16 % 2 == 1  # the last global batch splits unevenly (e.g. 8 + 7)
    # same data, same init, synchronised BatchNorm: the same training up to the order of
    # floating-point reductions
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["val_loss"], single["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["test"], single["test"], atol=1e-4)


# --------------------------------------------------------------------------- multi-worker
# Two MultiWorkerMirroredStrategy workers on 127.0.0.1 ($TF_CONFIG), real subprocesses.
KILL_AFTER = """
import os, signal, sys
from ecg_keras.training import callbacks, rundir
kill = int(os.environ["ECG_KERAS_TEST_KILL_AFTER_EPOCH"])
checkpoint_end, epoch_end = rundir.Checkpointer.on_epoch_end, callbacks.EpochLog.on_epoch_end

def after_checkpoint(self, epoch, logs=None):  # the chief: SIGKILL right after writing the checkpoint
    checkpoint_end(self, epoch, logs)
    if epoch + 1 == kill:
        os.kill(os.getpid(), signal.SIGKILL)

def after_epoch(self, epoch, logs=None):  # the other worker (no checkpoint of its own): after the epoch
    epoch_end(self, epoch, logs)
    if not self.write and epoch + 1 == kill:
        os.kill(os.getpid(), signal.SIGKILL)

rundir.Checkpointer.on_epoch_end, callbacks.EpochLog.on_epoch_end = after_checkpoint, after_epoch
from ecg_keras.cli.train import main
sys.exit(main(sys.argv[1:]))
"""


def _free_ports(n):
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _two_workers(data, out, *extra, kill_after=None, timeout=300):
    """Run train.py as worker 0 and 1 of one cluster; return (return codes, outputs)."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    args = ["--task", "rhythm", "--dataset", "synthetic", "--data-dir", str(data), "--arch", "fcn_wang", "--epochs",
            "2", "--batch-size", "16", "--seed", "2", "--output", str(out), "--distribute", "multiworker", "--quiet",
            *extra]
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(REPO), "ECG_KERAS_DATA": str(Path(data).parent),
               "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
        if kill_after is None:
            cmd = [sys.executable, str(REPO / "train.py"), *args]
        else:
            cmd, env["ECG_KERAS_TEST_KILL_AFTER_EPOCH"] = [sys.executable, "-c", KILL_AFTER, *args], str(kill_after)
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        logs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [p.returncode for p in procs], logs


@pytest.fixture(scope="module")
def multiworker_run(synthetic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mw_runs") / "uninterrupted"
    codes, logs = _two_workers(synthetic_data, out)
    assert codes == [0, 0], "\n".join(l[-3000:] for l in logs)
    return out


@pytest.mark.timeout(400)
def test_multiworker_two_local_workers_write_one_run_dir(multiworker_run):
    """fcn_wang, 2 epochs, 2 workers: one complete run directory written by the chief alone."""
    import numpy as np

    out = multiworker_run
    assert sorted(p.name for p in out.iterdir()) == [
        "COMPLETE", "checkpoints", "classes.json", "config.json", "history.csv", "history.png", "metrics.json",
        "model.keras", "predictions", "standardizer.json", "tensorboard"]
    assert not list(out.rglob(".*"))  # no temporary files left behind
    config = json.loads((out / "config.json").read_text())
    assert config["replicas"] == 2 and config["distribute"] == "multiworker"
    complete = json.loads((out / "COMPLETE").read_text())
    assert complete["workers"] == 2 and complete["weights_identical_across_workers"] is True
    hist = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    assert hist["epoch"].tolist() == [1, 2] and np.isfinite(hist["loss"]).all()
    assert json.loads((out / "metrics.json").read_text())["epochs_trained"] == 2


@pytest.mark.timeout(500)
def test_multiworker_sigkill_after_checkpoint_then_resume(synthetic_data, multiworker_run, tmp_path):
    """Both workers SIGKILLed after epoch 1's checkpoint, restarted with --resume: the run completes
    with each epoch once in history.csv and the uninterrupted run's predictions."""
    import numpy as np

    out = tmp_path / "killed"
    codes, logs = _two_workers(synthetic_data, out, kill_after=1)
    assert codes == [-9, -9], "\n".join(l[-3000:] for l in logs)
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["epoch"] == 1
    assert not (out / "COMPLETE").exists()

    codes, logs = _two_workers(synthetic_data, out, "--resume")
    assert codes == [0, 0], "\n".join(l[-3000:] for l in logs)
    assert (out / "COMPLETE").exists()
    hist = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    ref_hist = np.genfromtxt(multiworker_run / "history.csv", delimiter=",", names=True)
    assert hist["epoch"].tolist() == [1, 2]
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], rtol=1e-5)
    for part in ("val", "test"):
        got = np.load(out / "predictions" / f"{part}.npz")["y_pred"]
        want = np.load(multiworker_run / "predictions" / f"{part}.npz")["y_pred"]
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_multiworker_finetune_two_local_workers(synthetic_data, multiworker_run, tmp_path):
    """--init-from with --distribute multiworker: 2 workers finetune the uninterrupted run (new head)."""
    import numpy as np

    out = tmp_path / "ft"
    codes, logs = _two_workers(synthetic_data, out, "--task", "superdiagnostic", "--init-from",
                               str(multiworker_run), "--phase-epochs", "1,1", timeout=800)
    assert codes == [0, 0], "\n".join(l[-3000:] for l in logs)
    complete = json.loads((out / "COMPLETE").read_text())
    assert complete["workers"] == 2 and complete["weights_identical_across_workers"] is True
    config = json.loads((out / "config.json").read_text())
    assert config["replicas"] == 2 and config["init_from"] == str(multiworker_run)
    hist = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    assert hist["phase"].tolist() == [1, 2]


@pytest.mark.timeout(600)
def test_mirrored_refuses_a_last_batch_smaller_than_the_replicas(mirrored_result):
    message = mirrored_result["empty_replica"]
    assert "leave a last batch of 1 for 2 replicas" in message and "--batch-size" in message, message
    assert "left:" not in message  # nothing written

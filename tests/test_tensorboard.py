"""Every run writes TensorBoard logs: loss, validation loss and macro AUC, learning rate per epoch."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf


def _scalars(directory: Path) -> dict:
    """{tag: {step: value}} of every event file under ``directory`` (what TensorBoard reads)."""
    out = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, {})[event.step] = number
    return out


def test_run_writes_epoch_scalars_for_tensorboard(trained_run):
    history = pd.read_csv(trained_run / "history.csv")
    train = _scalars(trained_run / "tensorboard" / "train")
    val = _scalars(trained_run / "tensorboard" / "validation")
    assert {"epoch_loss", "epoch_learning_rate", "epoch_beta_1"} <= set(train)
    assert {"epoch_loss", "epoch_macro_auc"} <= set(val)
    epochs = history["epoch"].tolist()
    for scalars, tag, column in ((train, "epoch_loss", "loss"), (train, "epoch_learning_rate", "lr"),
                                 (val, "epoch_loss", "val_loss"), (val, "epoch_macro_auc", "val_macro_auc")):
        assert sorted(scalars[tag]) == epochs, tag
        np.testing.assert_allclose([scalars[tag][e] for e in epochs], history[column], rtol=1e-6, err_msg=tag)


@pytest.mark.parametrize("planted", ["tensorboard", "tensorboard/train"])
def test_event_files_are_not_written_through_a_planted_link(tmp_path, planted):
    from ecg_keras.files import UnsafeFileError
    from ecg_keras.training.callbacks import TensorBoardLog

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    (run / planted).parent.mkdir(parents=True)
    elsewhere.mkdir()
    (run / planted).symlink_to(elsewhere, target_is_directory=True)
    log = TensorBoardLog(run, [{"epoch": 1, "loss": 0.5, "val_loss": 0.6}])
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        log.on_epoch_end(0)
    assert list(elsewhere.iterdir()) == []

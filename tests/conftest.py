"""Shared test fixtures. Real data lives in ../shared/data (present in CI, absent in a fresh clone;
``$ECG_KERAS_SHARED_DATA`` points elsewhere, e.g. from a git worktree).

Synthetic data and a trained run, each built once per session (read them, never write to them:
a test that changes a run copies it first, ``shutil.copytree(trained_run, tmp_path / "run")``):

* ``synthetic_data``: an 80-record synthetic PTB-XL (seed 0, 100 Hz; 63 train / 9 val / 8 test
  records), at ``<root>/ptbxl-synthetic-vN`` where ``--dataset synthetic`` finds it with
  ``$ECG_KERAS_DATA=<root>``; ``data_env`` (module scope) sets that variable;
* ``trained_run``: a complete ``train()`` run on it: ``TRAINED_RUN_CONFIG`` (fcn_wang, rhythm,
  2 epochs, batch 16, seed 0, data found through ``$ECG_KERAS_DATA``).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

import ecg_keras  # noqa: F401  (before any test module imports TF: the package's oneDNN default applies)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Dataset caches and generated data go to a per-session temporary root, never to ~/.ecg_keras.
if "ECG_KERAS_DATA" not in os.environ:
    import tempfile

    os.environ["ECG_KERAS_DATA"] = tempfile.mkdtemp(prefix="ecg_keras_test_data_")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ECG_KERAS_SHARED_DATA") or REPO.parent / "shared" / "data")
SYNTHETIC_RECORDS = 80
TRAINED_RUN_CONFIG = dict(task="rhythm", dataset="synthetic", arch="fcn_wang", epochs=2, batch_size=16, seed=0,
                          verbose=0)


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real ECG data not available: {path} is missing (only in the project's CI/workplace)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def scp_statements_csv() -> Path:
    return shared_path("ptb-xl-sample", "scp_statements.csv")


def make_synthetic(tmp_path_factory, n_records: int) -> Path:
    """A new synthetic PTB-XL (seed 0, 100 Hz) at ``<new tmp root>/ptbxl-synthetic-vN``."""
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl
    from ecg_keras.training.data import SYNTHETIC_DIR

    return Path(generate_synthetic_ptbxl(tmp_path_factory.mktemp("data") / SYNTHETIC_DIR, n_records=n_records,
                                         seed=0, sampling_rates=(100,), progress=False))


@contextlib.contextmanager
def data_root(synthetic: Path):
    """``$ECG_KERAS_DATA`` set so that ``--dataset synthetic`` finds ``synthetic``; restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECG_KERAS_DATA", str(synthetic.parent))
        yield synthetic


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory, SYNTHETIC_RECORDS)


@pytest.fixture(scope="module")
def data_env(synthetic_data):
    with data_root(synthetic_data) as path:
        yield path


@pytest.fixture(scope="session")
def trained_run(synthetic_data, tmp_path_factory) -> Path:
    from ecg_keras.training import TrainConfig, train

    with data_root(synthetic_data):
        return Path(train(TrainConfig(**TRAINED_RUN_CONFIG, output=str(tmp_path_factory.mktemp("runs") / "rhythm"))))


#: The classes of the untrained rhythm run (``untrained_run``) of test_predict, test_api and test_validity_policy.
RHYTHM_CLASSES = ["AFIB", "SARRH", "SBRAD", "SR", "STACH"]


@pytest.fixture(scope="session")
def untrained_run(tmp_path_factory) -> Path:
    """:func:`write_untrained_run`, once per session (read it, never write to it)."""
    return write_untrained_run(tmp_path_factory.mktemp("untrained") / "run")


class _Exports:
    """The exports of a run, each made on first use and then shared (read them, never write to them):
    ``savedmodel`` (the version folder ``serving/ecg/1``), ``onnx_window``, ``onnx_record``,
    ``litert_window`` and ``litert_record`` (whole-record models)."""

    def __init__(self, run: Path, folder: Path):
        self.run, self.folder, self._paths = run, folder, {}

    def __getitem__(self, kind: str) -> Path:
        if kind not in self._paths:
            from ecg_keras.runs import resolve

            source = resolve(self.run)
            kw, (fmt, _, part) = source.export_kwargs(), kind.partition("_")
            if fmt == "savedmodel":
                from ecg_keras.export import export_savedmodel

                self._paths[kind] = Path(export_savedmodel(source.model, self.folder / "serving", **kw))
            elif fmt == "onnx":
                from ecg_keras.export import export_onnx

                self._paths[kind] = Path(export_onnx(source.model, self.folder / f"{part}.onnx",
                                                     whole_record=part == "record", **kw))
            elif fmt == "litert":
                from ecg_keras.export.litert import export_litert

                self._paths[kind] = Path(export_litert(source.model, self.folder / f"{part}.tflite",
                                                       whole_record=part == "record", **kw))
            else:
                raise KeyError(kind)
        return self._paths[kind]


@pytest.fixture(scope="session")
def untrained_exports(untrained_run, tmp_path_factory) -> _Exports:
    """``untrained_run`` exported, each format once per session: ``untrained_exports["onnx_record"]``."""
    return _Exports(untrained_run, tmp_path_factory.mktemp("untrained_exports"))


def beat_signal(seconds: float = 10.0, fs: float = 500.0, seed: int = 0):
    """A 12-lead (samples, 12) mV signal of Gaussian beats at 72 bpm plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beat = np.exp(-((t * 1.2) % 1.0 - 0.3) ** 2 / 0.0004)
    return beat[:, None] * np.linspace(0.5, 1.6, 12)[None, :] + 0.05 * rng.standard_normal((len(t), 12))


def write_untrained_run(path: Path) -> Path:
    """A run directory at ``path`` holding a seeded, untrained fcn_wang for :data:`RHYTHM_CLASSES`
    (100 Hz, standardiser mean 0 std 0.2, marked synthetic)."""
    import json

    import keras

    from ecg_keras import models
    from ecg_keras.standardize import Standardizer

    keras.utils.set_random_seed(0)
    model = models.get("fcn_wang", num_classes=len(RHYTHM_CLASSES))
    path.mkdir()
    model.save(path / "model.keras")
    (path / "classes.json").write_text(json.dumps(RHYTHM_CLASSES))
    Standardizer(mean=0.0, std=0.2).save(path / "standardizer.json")
    (path / "config.json").write_text(json.dumps({"arch": "fcn_wang", "task": "rhythm", "dataset": "synthetic",
                                                  "synthetic": True, "sampling_rate": 100, "seed": 0}))
    return path

"""Shared test fixtures. Real data lives in ../shared/data (present in CI, absent in a fresh clone)."""
from __future__ import annotations

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
SHARED_DATA = REPO.parent / "shared" / "data"


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


def synthetic_env(tmp_path_factory, n_records: int):
    """Yield a small synthetic PTB-XL where ``--dataset synthetic`` finds it ($ECG_KERAS_DATA set)."""
    from ecg_keras.datasets.synthetic import generate_synthetic_ptbxl
    from ecg_keras.training.data import SYNTHETIC_DIR

    root = tmp_path_factory.mktemp("data")
    path = generate_synthetic_ptbxl(root / SYNTHETIC_DIR, n_records=n_records, seed=0, sampling_rates=(100,),
                                    progress=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("ECG_KERAS_DATA", str(root))
    yield Path(path)
    mp.undo()

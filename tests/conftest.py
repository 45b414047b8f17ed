"""Shared test fixtures. Real data lives in ../shared/data (present in CI, absent in a fresh clone)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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

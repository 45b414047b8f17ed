"""One scalar mean and std over all training samples of all leads (docs/PROTOCOL.md "Data")."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


#: A standardiser outside these bounds (mV) is refused wherever one is made or read (fit, a run's
#: standardizer.json, a manifest entry, the reference's standard_scaler.pkl, --mean/--std).
MAX_ABS_MEAN = 1e4
STD_RANGE = (1e-6, 1e4)


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / std``; mean and std must be finite numbers, std within :data:`STD_RANGE`."""

    mean: float
    std: float

    def __post_init__(self):
        try:
            mean, std = float(self.mean), float(self.std)
        except (TypeError, ValueError):
            raise ValueError(f"standardiser mean {self.mean!r} / std {self.std!r}: not numbers") from None
        if not (np.isfinite(mean) and abs(mean) <= MAX_ABS_MEAN):
            raise ValueError(f"standardiser mean {mean!r} is not a finite value within +-{MAX_ABS_MEAN:g}")
        if not (np.isfinite(std) and STD_RANGE[0] <= std <= STD_RANGE[1]):
            raise ValueError(f"standardiser std {std!r} must be a finite positive value from {STD_RANGE[0]:g} to "
                             f"{STD_RANGE[1]:g} (0, negative, NaN or inf would divide the signal by nonsense)")

    @classmethod
    def fit(cls, signals: np.ndarray | Sequence[np.ndarray]) -> "Standardizer":
        """Fit on an (n, length, leads) array (or RecordView) or a list of (length_i, leads) arrays,
        a chunk of records at a time."""
        from ecg_keras.datasets.cache import iter_chunks

        count, total, total_sq = 0, 0.0, 0.0
        for a in iter_chunks(signals) if len(signals) else ():  # bounded memory; float64 sums so that 260M samples do not lose precision
            a64 = np.asarray(a, dtype=np.float64)
            count += a64.size
            total += float(a64.sum())
            total_sq += float(np.square(a64).sum())
        if count == 0:
            raise ValueError("cannot fit a standardizer on no samples")
        mean = total / count
        std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
        if not np.isfinite(mean) or not np.isfinite(std):
            raise ValueError("signals contain NaN or inf; cannot fit a standardizer")
        if std == 0.0:
            raise ValueError("signals are constant (std 0); cannot standardise")
        return cls(mean=float(mean), std=std)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"type": "scalar", "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(mean=float(d["mean"]), std=float(d["std"]))

    def save(self, path: str | Path) -> Path:
        from ecg_keras.files import write_text

        path = Path(path)
        write_text(path, json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Standardizer":
        return cls.from_dict(json.loads(Path(path).read_text()))

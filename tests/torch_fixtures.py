"""PyTorch parity fixtures for ``ecg_keras.export.from_torch`` (a test helper, not a test module).

``scripts/make_torch_fixtures.py`` (run where torch is installed) builds each reference
architecture with ``benchmarks/torch_peer.py``, gives it random weights and randomised BatchNorm
statistics and stores, per architecture, ``tests/fixtures/from_torch/<arch>.npz``:

* ``keys``: the state-dict keys in PyTorch's order (aliases included), ``alias_keys`` /
  ``alias_targets``: keys that are the same tensor as an earlier key (xresnet's ``convpath.0``);
* the 0-/1-D tensors (biases, BatchNorm) and the (scaled) last Linear weight under ``t/KEY``;
  every other tensor of 2 or more dimensions is NOT stored but regenerated from ``seed`` by
  :func:`generated_tensor` (numpy only), which keeps the fixtures small (xresnet1d152 has 2.8 M
  weights); ``generated_digest`` guards the regeneration;
* ``logits`` (``logits_float64``: the same model in float64, the float32 floor): the PyTorch
  model's outputs (eval mode) for :func:`ludb_windows` (8 real LUDB windows, 100 Hz, 250 x 12,
  standardised); ``input_digest`` guards those inputs.

:func:`state_dict` rebuilds the full state dict, which the tests save as an ``.npz`` checkpoint.
"""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "from_torch"
LUDB_RECORDS = ("1", "2", "3", "4", "5", "6", "7", "8")
WINDOW = 250
NUM_CLASSES = 71


def ludb_windows(ludb_data: Path) -> np.ndarray:
    """The first 2.5-s window of LUDB records 1-8, resampled 500 -> 100 Hz as the export tests do
    (``scipy.signal.resample_poly(x, 1, 5)``), standardised with their own scalar mean and std:
    (8, 250, 12) float32."""
    import wfdb
    from scipy.signal import resample_poly

    out = []
    for rec in LUDB_RECORDS:
        x, fields = wfdb.rdsamp(str(Path(ludb_data) / rec))
        assert fields["fs"] == 500 and x.shape[1] == 12, (rec, fields["fs"], x.shape)
        out.append(resample_poly(x, 1, 5, axis=0).astype(np.float32)[:WINDOW])
    w = np.stack(out).astype(np.float64)
    return ((w - w.mean()) / w.std()).astype(np.float32)


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()


def generated_tensor(key: str, shape, seed: int) -> np.ndarray:
    """Deterministic N(0, 1/fan_in) weights for one state-dict key (fan_in = prod(shape[1:]))."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(tuple(shape)) / np.sqrt(fan_in)).astype(np.float32)


def is_generated(shape) -> bool:
    return len(shape) >= 2


def state_dict(z) -> dict[str, np.ndarray]:
    """The full state dict of a fixture (an ``np.load``-ed file), aliases included."""
    seed = int(z["seed"])
    alias = dict(zip(z["alias_keys"].tolist(), z["alias_targets"].tolist()))
    sd: dict[str, np.ndarray] = {}
    generated = []
    shapes = dict(zip(z["gen_keys"].tolist(), [tuple(d for d in s if d) for s in z["gen_shapes"].tolist()]))
    for key in z["keys"].tolist():
        if key in alias:
            sd[key] = sd[alias[key]]
        elif key in shapes:
            sd[key] = generated_tensor(key, shapes[key], seed)
            generated.append(sd[key])
        else:
            sd[key] = z[f"t/{key}"]
    if digest(generated) != str(z["generated_digest"]):
        raise AssertionError("regenerated weights differ from the ones PyTorch used (numpy's generator changed?); "
                             "rerun scripts/make_torch_fixtures.py")
    return sd

"""Reading the PTB-XL benchmark's files for :mod:`ecg_keras.export.from_torch`: its checkpoints
(``.npz`` from the headers first, ``.pth``/``.pt`` with ``torch.load(weights_only=True)``), its
``standard_scaler.pkl`` and ``mlb.pkl`` (a restricted unpickler that runs no code) and the class
order of a statement task."""
from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from ecg_keras.errors import ECGKerasError
from ecg_keras.standardize import Standardizer

#: Largest checkpoint data read (the reference's xresnet1d101 holds ~8 MB of tensors).
MAX_CHECKPOINT_BYTES = 2 << 30
#: torch.load(weights_only=True) can be bypassed before 2.6 (CVE-2025-32434).
MIN_TORCH = (2, 6)


class ConversionError(ECGKerasError, ValueError):
    """The checkpoint does not fit the architecture (message names the offending tensors)."""


# --------------------------------------------------------------------------- reading checkpoints
def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """State-dict tensors of ``path`` (.npz, or .pth/.pt with torch) as numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".npz":
        return read_npz_headers(path)
    if path.suffix not in (".pth", ".pt"):
        raise ConversionError(f"{path}: unknown checkpoint format {path.suffix!r}; expected .npz, .pth or .pt")
    try:
        import torch
    except ImportError:
        raise ConversionError(
            f"{path} is a PyTorch checkpoint and reading it needs torch, which is not installed: "
            "pip install 'ecg_keras[torch]' (or torch alone), or convert it to .npz where torch is: "
            "np.savez('model.npz', **{k: v.cpu().numpy() for k, v in state_dict.items()})") from None
    version = tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2])
    if version < MIN_TORCH:
        raise ConversionError(f"{path}: torch {torch.__version__} is installed, but torch.load(weights_only=True) "
                              f"can be bypassed before {'.'.join(map(str, MIN_TORCH))} (CVE-2025-32434); "
                              "pip install 'ecg_keras[torch]' (torch>=2.6)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ConversionError(
            f"{path}: torch.load(weights_only=True) refused it ({str(e).splitlines()[0]}). Only if you trust "
            "the file: sd = torch.load(path, weights_only=False)['model']; "
            "np.savez('model.npz', **{k: v.cpu().numpy() for k, v in sd.items()}) and convert the .npz") from None
    except Exception as e:  # noqa: BLE001 - a damaged file fails in many ways inside torch.load
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]  # fastai v1 Learner.save(with_opt=True)
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConversionError(f"{path} holds neither a state dict nor a fastai learner save {{'model': state_dict}}")
    out = {}
    for k, v in obj.items():
        try:
            out[str(k)] = v.detach().cpu().numpy()
        except (TypeError, RuntimeError) as e:  # bfloat16, sparse, quantised ... tensors
            raise ConversionError(f"{path}: tensor {k!r} ({v.dtype}) cannot be read as a numpy array ({e}); "
                                  "save it as float32") from None
    return out


class _NpzTensor:
    """One tensor of an ``.npz`` known from its ``.npy`` header: shape and dtype without its data,
    read by ``np.asarray`` only once the checkpoint's keys and shapes fit."""

    def __init__(self, path: Path, member: str, shape: tuple, dtype: np.dtype):
        self.path, self.member, self.shape, self.dtype = path, member, tuple(shape), dtype

    def __array__(self, dtype=None, copy=None):
        with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
        return arr if dtype is None else arr.astype(dtype)


def read_npz_headers(path: str | Path) -> dict[str, _NpzTensor]:
    """Tensors of an ``.npz`` checkpoint by name, from the zip directory and each member's ``.npy``
    header only: an object array, a header that does not parse or disagrees with the member's size,
    or more than :data:`MAX_CHECKPOINT_BYTES` of data is a ConversionError naming the file, before
    any tensor is read."""
    from numpy.lib import format as npy

    path = Path(path)
    out: dict[str, _NpzTensor] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise ConversionError(f"{path}: member {info.filename!r} is not a .npy array")
                key = info.filename[:-4]
                total += info.file_size
                if total > MAX_CHECKPOINT_BYTES:
                    raise ConversionError(f"{path}: more than {MAX_CHECKPOINT_BYTES >> 20} MB of tensors (member "
                                          f"{key!r} alone holds {info.file_size} bytes); not a benchmark checkpoint")
                with zf.open(info) as f:
                    version = npy.read_magic(f)
                    read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
                    shape, _, dtype = read(f) if read else npy._read_array_header(f, version)
                    header = f.tell()
                if dtype.hasobject:
                    raise ConversionError(f"{path}: tensor {key!r} is an object array (dtype {dtype}); only numeric "
                                          "tensors are read (no pickles)")
                if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize != info.file_size - header:
                    raise ConversionError(f"{path}: tensor {key!r}: its header claims shape {tuple(shape)} of {dtype} "
                                          f"but the member holds {info.file_size - header} bytes (damaged file)")
                out[key] = _NpzTensor(path, info.filename, shape, dtype)
    except ConversionError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, SyntaxError, TypeError, MemoryError,
            NotImplementedError) as e:
        raise ConversionError(f"{path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from None
    return out



# --------------------------------------------------------------------------- restricted unpickling
class _PickledObject:
    """Stand-in for an admitted sklearn class: records the pickled state, runs no code."""

    _cls_name = "?"

    @property
    def state(self) -> dict:
        return self.__dict__.get("state", {})

    def __setstate__(self, state):
        self.__dict__["state"] = state if isinstance(state, dict) else {}


def _stub(name: str):
    return type(name, (_PickledObject,), {"_cls_name": name})


_StandardScaler = _stub("StandardScaler")
_MultiLabelBinarizer = _stub("MultiLabelBinarizer")
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    # pickle protocols 0-2 build bytes and plain objects through these (harmless: no code of their own)
    ("_codecs", "encode"), ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
    ("builtins", "object"), ("__builtin__", "object"),
}
_SKLEARN_MODULES = {"StandardScaler": ("sklearn.preprocessing._data", "sklearn.preprocessing.data"),
                    "MultiLabelBinarizer": ("sklearn.preprocessing._label", "sklearn.preprocessing.label")}


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits numpy arrays/scalars and the named sklearn preprocessing class; refuses anything else."""

    def __init__(self, file, admit: str):
        super().__init__(file)
        self.admit = admit

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if name == self.admit and module in _SKLEARN_MODULES[name]:
            return {"StandardScaler": _StandardScaler, "MultiLabelBinarizer": _MultiLabelBinarizer}[name]
        raise pickle.UnpicklingError(f"refused to unpickle {module}.{name}: only sklearn's {self.admit} and numpy "
                                     "arrays are admitted")


def _unpickle(path: str | Path, admit: str) -> _PickledObject:
    data = Path(path).read_bytes()
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), admit).load()
    except pickle.UnpicklingError as e:
        raise ConversionError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - empty, truncated, EXT-opcode, ragged ... pickles
        raise ConversionError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, _PickledObject) or obj._cls_name != admit:
        raise ConversionError(f"{path} does not hold a pickled sklearn {admit}")
    return obj


def read_standard_scaler(path: str | Path) -> Standardizer:
    """The reference's ``standard_scaler.pkl`` (one scalar sklearn StandardScaler) as a Standardizer."""
    state = _unpickle(path, "StandardScaler").state
    with_mean, with_std = state.get("with_mean", True), state.get("with_std", True)
    if (with_mean and state.get("mean_") is None) or (with_std and state.get("scale_") is None):
        raise ConversionError(f"{path}: the StandardScaler is not fitted (no mean_/scale_)")
    try:
        mean = np.asarray(state["mean_"] if with_mean else 0.0, dtype=np.float64).ravel()
        scale = np.asarray(state["scale_"] if with_std else 1.0, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:  # ragged, text or stub-typed mean_/scale_
        raise ConversionError(f"{path}: the StandardScaler's mean_/scale_ are not numbers ({e})") from None
    if mean.size != 1 or scale.size != 1:
        raise ConversionError(
            f"{path}: a StandardScaler with {max(mean.size, scale.size)} features; the benchmark's scaler (and "
            "ecg_keras's Standardizer) is ONE mean and std over all samples of all leads. Pass --mean/--std.")
    try:  # the same rule as --mean/--std and every other standardiser (Standardizer's own check)
        return Standardizer(mean=float(mean[0]), std=float(scale[0]))
    except ValueError as e:
        raise ConversionError(f"{path}: {e}") from None


def read_classes(path: str | Path) -> list[str]:
    """Class names in output order: the reference's ``mlb.pkl``, a JSON list, or one name per line."""
    path = Path(path)
    if path.suffix == ".pkl":
        classes = _unpickle(path, "MultiLabelBinarizer").state.get("classes_")
        if classes is None:
            raise ConversionError(f"{path}: the MultiLabelBinarizer is not fitted (no classes_)")
        try:
            return [str(c) for c in np.asarray(classes).ravel().tolist()]
        except (TypeError, ValueError) as e:
            raise ConversionError(f"{path}: the MultiLabelBinarizer's classes_ are not a list of names ({e})") from None
    text = path.read_text()
    if path.suffix == ".json":
        classes = json.loads(text)
        if not isinstance(classes, list):
            raise ConversionError(f"{path}: expected a JSON list of class names")
        return [str(c) for c in classes]
    return [line.strip() for line in text.splitlines() if line.strip()]


def task_classes(task: str) -> list[str]:
    """The reference's class order for a PTB-XL statement task (sorted, as MultiLabelBinarizer)."""
    from ecg_keras import statements, tasks

    spec = tasks.find(task)
    if spec is not None and spec.source == tasks.STATEMENTS:
        rows = [s for s in statements.STATEMENTS if spec.flag is None or getattr(s, spec.flag)]
        if spec.level is None:
            return sorted(s.code for s in rows)
        return sorted({getattr(s, spec.level) for s in rows if getattr(s, spec.level)})
    raise ConversionError(f"task {task!r} has no built-in class list; pass --classes FILE "
                          "(mlb.pkl, a JSON list or one class per line)")

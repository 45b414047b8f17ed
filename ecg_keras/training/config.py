"""TrainConfig: every argument of a training run; stored verbatim in RUN_DIR/config.json."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ecg_keras import tasks
from ecg_keras.augment import parse as parse_augment
from ecg_keras.preprocessing import WINDOW_SECONDS, window_length

RNN_ARCHS = ("lstm", "lstm_bidir", "gru")  # lr 1e-3 and gradient clipping 0.25

TASKS = tasks.names()
NAMED_DATASETS = ("ptbxl", "icbeb2018", "synthetic")
DISTRIBUTE = ("none", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies (training/precision.py)
#: Default of ``jit_compile`` for single-device training: off (= Keras "auto" on CPU), because XLA
#: (with op determinism off) trained every architecture slower on CPU (docs/RESULTS.md section 8.5).
#: --jit opts in.
DEFAULT_JIT = False


@dataclass
class TrainConfig:
    """Arguments of one run. ``None`` fields are resolved by :meth:`resolved` (lr, clipnorm, output)."""

    task: str = tasks.DEFAULT_TASK
    arch: str = "xresnet1d101"
    dataset: str = "ptbxl"  # ptbxl | icbeb2018 | synthetic | path to a WFDB folder
    data_dir: str | None = None
    cache_dir: str | None = None  # signal cache folder (None: <data root>/cache; "off": no cache)
    sampling_rate: int = 100
    window_seconds: float = WINDOW_SECONDS  # training window (--window); another than 2.5 s leaves the paper's protocol
    epochs: int = 50
    batch_size: int = 128
    lr: float | None = None  # 1e-2, or 1e-3 for RNNs
    wd: float = 1e-2
    seed: int = 0
    output: str | None = None
    split: str = "strat"
    resume: bool = False
    distribute: str = "none"
    jit: bool | None = None  # None: DEFAULT_JIT without distribution, off with it
    deterministic: bool = True
    sync_batchnorm: bool = True  # with --distribute: BatchNorm statistics over the global batch
    precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16 (training only; outputs stay float32)
    clipnorm: float | None = None  # global gradient-norm clipping; 0.25 for RNNs
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div: float = 1e4
    moms: tuple[float, float] = (0.95, 0.85)
    beta_2: float = 0.99
    epsilon: float = 1e-8
    eval_batch_size: int = 256
    keep_checkpoints: int = 2
    synthetic_records: int = 2000  # size of the generated demo dataset (``dataset="synthetic"``)
    augment: str = ""  # comma-separated ecg_keras.augment.NAMES (off: the paper's protocol)
    verbose: int = 1
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. experiment name)

    def __post_init__(self):
        self.moms = tuple(self.moms)
        if tasks.find(self.task) is None:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(tasks.names())}")
        if self.distribute not in DISTRIBUTE:
            raise ValueError(f"--distribute must be one of {', '.join(DISTRIBUTE)}, got {self.distribute!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        self.augment = ",".join(parse_augment(self.augment))
        if self.split not in ("strat", "random"):
            raise ValueError(f"--split must be strat or random, got {self.split!r}")
        if self.jit and self.deterministic:
            # Keras's model_supports_jit() is False under TF op determinism: compile() would drop XLA silently
            raise ValueError("--jit needs --no-deterministic: with TensorFlow's op determinism on, Keras compiles "
                             "the train step without XLA")
        if self.sampling_rate not in (100, 500):
            raise ValueError(f"--sampling-rate must be 100 or 500, got {self.sampling_rate}")
        try:
            self.window_seconds = float(self.window_seconds)
            window_length(self.sampling_rate, self.window_seconds)
        except (TypeError, ValueError) as e:
            raise ValueError(f"--window: {e}") from None
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        checks = {"lr": (self.lr, "> 0", lambda v: v > 0), "wd": (self.wd, ">= 0", lambda v: v >= 0),
                  "clipnorm": (self.clipnorm, "> 0", lambda v: v > 0),
                  "keep_checkpoints": (self.keep_checkpoints, ">= 0", lambda v: v >= 0)}
        for name, (value, rule, ok) in checks.items():
            if value is not None and not (math.isfinite(value) and ok(value)):
                raise ValueError(f"--{name.replace('_', '-')} must be finite and {rule}, got {value}")

    @property
    def window(self) -> int:
        """The training window in samples."""
        return window_length(self.sampling_rate, self.window_seconds)

    @property
    def is_rnn(self) -> bool:
        return self.arch in RNN_ARCHS

    def resolved(self) -> "TrainConfig":
        """A copy with the architecture-dependent defaults and the output directory filled in."""
        lr = self.lr if self.lr is not None else (1e-3 if self.is_rnn else 1e-2)
        clip = self.clipnorm if self.clipnorm is not None else (0.25 if self.is_rnn else None)
        output = self.output or str(Path("runs") / default_run_name(self))
        jit = self.jit if self.jit is not None else (DEFAULT_JIT and self.distribute == "none")
        return dataclasses.replace(self, lr=lr, clipnorm=clip, output=output, jit=bool(jit))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["moms"] = list(self.moms)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def default_run_name(config: TrainConfig) -> str:
    dataset = Path(config.dataset).name if config.dataset not in NAMED_DATASETS else config.dataset
    rate = "" if config.sampling_rate == 100 else f"-{config.sampling_rate}hz"
    window = "" if config.window_seconds == WINDOW_SECONDS else f"-{config.window_seconds:g}s"
    return f"{dataset}{rate}-{config.task}-{config.arch}{window}-seed{config.seed}"

"""Read a training run directory (what ``ecg_keras.training`` writes) for export.

RUN_DIR/config.json ({"arch", "task", "dataset", "sampling_rate", ...}), RUN_DIR/classes.json,
RUN_DIR/standardizer.json, RUN_DIR/model.keras (the logits model).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ecg_keras.standardize import Standardizer
from ecg_keras.windows import aggregation

REGRESSION_TASKS = ("age",)  # linear output: no sigmoid


@dataclass
class Run:
    model: object  # keras.Model
    classes: list[str]
    standardizer: Standardizer
    config: dict
    path: Path

    @property
    def sampling_rate(self) -> int:
        return int(self.config.get("sampling_rate", 100))

    @property
    def aggregation(self) -> str:
        return self.config.get("aggregation") or aggregation(self.config.get("task"))

    @property
    def activation(self) -> str | None:
        if "activation" in self.config:
            return self.config["activation"]
        return None if self.config.get("task") in REGRESSION_TASKS else "sigmoid"

    @property
    def extra(self) -> dict:
        keys = ("arch", "task", "dataset", "sampling_rate", "seed")
        return {k: self.config[k] for k in keys if k in self.config} | {"run_dir": self.path.name}

    def export_kwargs(self) -> dict:
        """Keyword arguments shared by export_savedmodel and export_onnx."""
        return dict(classes=self.classes, standardizer=self.standardizer, sampling_rate=self.sampling_rate,
                    aggregation=self.aggregation, activation=self.activation, extra=self.extra)


def load_run(run_dir: str | Path) -> Run:
    """Load model, classes, standardiser and config from a run directory."""
    import keras

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a run directory")
    from ecg_keras.training.rundir import RunDir

    missing = RunDir(run_dir).missing_files()
    if missing:
        raise FileNotFoundError(f"{run_dir} is not a complete run directory: missing {', '.join(missing)}")
    import ecg_keras.models  # noqa: F401  (registers the custom layers before deserialising)
    config = json.loads((run_dir / "config.json").read_text())
    classes = [str(c) for c in json.loads((run_dir / "classes.json").read_text())]
    standardizer = Standardizer.load(run_dir / "standardizer.json")
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    return Run(model=model, classes=classes, standardizer=standardizer, config=config, path=run_dir)


def load_pretrained(name: str, models_directory: str | Path | None = None) -> Run:
    """A released model (manifest entry ``name``, see :mod:`ecg_keras.zoo`) as a :class:`Run` for export."""
    from ecg_keras.zoo import pretrained

    model = pretrained(name=name, models_directory=models_directory, weights=None)
    info = model.ecg_info
    config = {"arch": info.arch, "task": info.task, "dataset": info.training_data,
              "sampling_rate": info.sampling_rate, "release": name}
    return Run(model=model, classes=list(info.classes), standardizer=info.standardizer, config=config,
               path=Path(info.entry["file"]))


def resolve(source: str | Path, models_directory: str | Path | None = None) -> Run:
    """A run directory or a released model's name as a :class:`Run` (the one place that decides
    which); FileNotFoundError naming both possibilities otherwise."""
    from ecg_keras.zoo import list_pretrained

    if Path(source).is_dir():
        return load_run(source)
    released = list_pretrained(models_directory)
    if str(source) in released:
        return load_pretrained(str(source), models_directory)
    raise FileNotFoundError(f"{source} is neither a run directory (config.json, classes.json, standardizer.json, "
                            f"model.keras) nor a released model ({', '.join(released) or 'none released'})")

"""The one reader of trained models (issue 17): ``ecg_keras.runs.resolve`` -> ``Run`` for a run
directory, a release name or a release directory; no second Run class or load_run function."""
import ast
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from ecg_keras.runs import RUN_FILES, Run, RunError, RunFileMissing, resolve


def _run_dir(path, arch="fcn_wang"):
    from ecg_keras import models
    from ecg_keras.standardize import Standardizer

    path.mkdir(parents=True)
    models.get(arch, num_classes=3).save(path / "model.keras")
    (path / "config.json").write_text(json.dumps({"arch": arch, "task": "rhythm", "dataset": "synthetic",
                                                  "synthetic": True, "sampling_rate": 100}))
    (path / "classes.json").write_text(json.dumps(["AFIB", "SBRAD", "SR"]))
    Standardizer(mean=0.01, std=0.2).save(path / "standardizer.json")
    return path


def test_run_dir_release_name_and_release_directory_give_the_same_run(tmp_path):
    from ecg_keras.export import release_run

    run = resolve(_run_dir(tmp_path / "run"))
    models_dir = tmp_path / "models"
    release_run(run.path, "demo", models_directory=models_dir)
    by_name = resolve("demo", models_directory=models_dir)
    by_dir = resolve(models_dir)
    assert type(run) is type(by_name) is type(by_dir) is Run
    assert (run.release, by_name.name, by_dir.name) == (None, "demo", "demo")
    x = np.random.default_rng(0).normal(size=(2, 250, 12)).astype("float32")
    expected = run.model.predict(x, verbose=0)
    for r in (by_name, by_dir):
        assert (r.classes, r.sampling_rate, r.aggregation, r.activation) == (
            run.classes, run.sampling_rate, run.aggregation, run.activation)
        assert r.standardizer.to_dict() == run.standardizer.to_dict() and r.config["arch"] == "fcn_wang"
        np.testing.assert_allclose(r.model.predict(x, verbose=0), expected, rtol=1e-6)
        assert r.export_kwargs()["extra"]["run_dir"] == "demo.keras"
        with pytest.raises(RunFileMissing, match="released model"):
            r.predictions("test")
    assert resolve(run) is run

    from ecg_keras.training.transfer import default_output, source_description
    from ecg_keras.training import TrainConfig

    assert source_description(run) == {"type": "run", "path": str(run.path.resolve()), "arch": "fcn_wang",
                                       "task": "rhythm", "dataset": "synthetic", "synthetic": True, "init_from": None}
    entry = by_name.release
    assert source_description(by_dir) == {"type": "release", "name": "demo", "arch": "fcn_wang", "task": "rhythm",
                                          "training_data": "synthetic", "sha256": entry["sha256"]}
    assert default_output(TrainConfig(task="rhythm", dataset="ludb"), by_name).endswith("-ft-demo")
    assert default_output(TrainConfig(task="rhythm", dataset="ludb"), run).endswith("-ft-run")

    release_run(run.path, "other", models_directory=models_dir)  # two entries: the directory is ambiguous
    with pytest.raises(RunError, match="2 released models.*demo, other"):
        resolve(models_dir)


def test_parts_are_read_when_used_and_missing_files_are_named(tmp_path):
    run_dir = _run_dir(tmp_path / "run")
    (run_dir / "model.keras").unlink()
    run = resolve(run_dir)  # a baseline run has no model.keras: resolving it still works
    assert run.classes == ["AFIB", "SBRAD", "SR"] and run.missing_files() == ["model.keras"]
    with pytest.raises(FileNotFoundError, match="model.keras is missing.*not a finished training run"):
        run.check_complete()
    with pytest.raises(RunFileMissing, match="predictions/test.npz is missing"):
        run.splits  # noqa: B018
    (run_dir / "predictions").mkdir()
    np.savez(run_dir / "predictions" / "test.npz", ids=np.arange(2), y_true=np.eye(3)[:2],
             y_pred=np.array([[0.1, 0.2, np.nan], [0.3, 0.2, 0.1]]))
    with pytest.raises(RunError, match="non-finite prediction nan at row 0"):
        resolve(run_dir).splits  # noqa: B018
    (run_dir / "config.json").write_text("{")
    with pytest.raises(RunError, match="config.json: invalid JSON"):
        resolve(run_dir).config  # noqa: B018
    with pytest.raises(RunFileMissing, match="does not exist.*neither a run directory.*nor a released model"):
        resolve(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        resolve(tmp_path / "empty")
    assert RUN_FILES == ("config.json", "classes.json", "standardizer.json", "model.keras")


def test_the_reader_imports_without_tensorflow():
    code = ("import sys, ecg_keras.runs; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "ok", out.stderr


def test_one_run_class_and_no_load_run_function():
    runs, loaders = [], []
    for path in sorted((REPO / "ecg_keras").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name == "Run":
                runs.append(path.relative_to(REPO).as_posix())
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
                    "load_run", "load_pretrained", "load_source"):
                loaders.append(f"{path.relative_to(REPO).as_posix()}:{node.name}")
    assert runs == ["ecg_keras/runs.py"] and loaders == []

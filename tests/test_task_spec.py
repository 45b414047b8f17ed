"""The task specification: ``ecg_keras.tasks`` is the one home of the task list, the task names
and the task-kind strings, and the stages follow its records."""
from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_keras import tasks

PACKAGE = Path(__file__).resolve().parents[1] / "ecg_keras"
TASK_MODULE = "tasks.py"

_FORMAT_FIELD = "a field name of an external file format or of RecordSet.meta, not a task"
_SCP_COLUMN = "a column of PTB-XL's scp_statements.csv (the statement flags), not a task"
#: (module, literal) pairs where the same word names something other than a task or a kind.
#: Each entry must still be needed (``test_allow_list_is_minimal``), so the list cannot go stale.
ALLOWED: dict[str, dict[str, str]] = {
    "io/ishne.py": {"sex": _FORMAT_FIELD},
    "io/xml_ecg.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD, "rhythm": "HL7 aECG WaveformType value"},
    "io/records.py": {"all": "the lead named in a unit error when one unit applies to every lead"},
    "datasets/wfdb_io.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD},
    "datasets/wfdb_folder.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD},
    "datasets/icbeb.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD},
    "datasets/ptbxl.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD, "diagnostic": _SCP_COLUMN,
                          "form": _SCP_COLUMN, "rhythm": _SCP_COLUMN},
    "datasets/ptbxl_writer.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD},
    "datasets/synthetic_metadata.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD},
    "datasets/synthetic_morphology.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD},
    "datasets/throughput.py": {"age": _FORMAT_FIELD, "sex": _FORMAT_FIELD, "diagnostic": _SCP_COLUMN,
                               "form": _SCP_COLUMN, "rhythm": _SCP_COLUMN},
    "statements.py": {"diagnostic": _SCP_COLUMN, "form": _SCP_COLUMN, "rhythm": _SCP_COLUMN},
    "augment.py": {"all": "--augment all: every augmentation"},
    "evaluation/metrics.py": {"all": "metrics.EVERY_RECORD, the subgroup of every record"},
}


def forbidden_words() -> set[str]:
    """Every task name and every task-kind string, read from the registry."""
    return set(tasks.names()) | set(tasks.KINDS)


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def task_literals(source: str, words: set[str]) -> list[tuple[int, str]]:
    """``(line, value)`` of every ``str`` constant of ``source`` that equals one of ``words``.

    Every string constant of the syntax tree counts: comparisons, defaults, dict keys and
    values, tuples, call arguments, subscripts, the literal parts of f-strings. Only docstrings
    (the first statement of a module, class or function) are skipped: they are documentation.
    A string that merely contains a task name ("--task rhythm" in a help text) is not a
    spelling of it; a constant equal to it is.
    """
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in words and id(node) not in skip)


@functools.lru_cache(maxsize=None)
def _package_literals(package: Path = PACKAGE) -> dict[str, frozenset[str]]:
    """``{module: literals}`` of every module under ``package`` but the task module."""
    words = forbidden_words()
    found: dict[str, frozenset[str]] = {}
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        if module == TASK_MODULE:
            continue
        hits = task_literals(path.read_text(encoding="utf-8"), words)
        if hits:
            found[module] = frozenset(value for _, value in hits)
    return found


def test_no_module_but_the_task_module_spells_a_task_name_or_kind():
    """AST check over every module of ``ecg_keras`` except ``ecg_keras/tasks.py``: no string
    constant (docstrings aside, see :func:`task_literals`) equals a task name or a task kind
    (``tasks.names()`` and ``tasks.KINDS``: "all", "diagnostic", ..., "multilabel", "regression"),
    except the (module, word) pairs of ``ALLOWED``, where the word names a file-format field or
    "every ..." and not a task. Tests and docs are outside the package and not checked."""
    words = forbidden_words()
    assert {"all", "form", "rhythm", "age", "sex", "quality", "multilabel", "binary", "regression"} <= words
    violations = []
    for module, values in _package_literals().items():
        allowed = ALLOWED.get(module, {})
        violations += [f"ecg_keras/{module}: {v!r}" for v in sorted(values) if v not in allowed]
    assert not violations, ("task names / kinds spelt outside ecg_keras/tasks.py (read them from the Task "
                            "record instead):\n" + "\n".join(violations))


def test_allow_list_is_minimal():
    found = _package_literals()
    stale = [f"{m}: {v!r}" for m, values in ALLOWED.items() for v in values if v not in found.get(m, ())]
    assert not stale, f"allow-list entries no longer needed: {stale}"
    assert all(reason for values in ALLOWED.values() for reason in values.values())


def test_checker_catches_planted_violations():
    words = forbidden_words()
    planted = '''
"""Module docstring naming rhythm and all is documentation."""
DEFAULT = "rhythm"

def f(task, kind="regression"):
    """Docstring: "age" here is fine."""
    if task == "age":
        return {"form": 1}
    order = ("all", "diagnostic")
    help = f"choose {task} or the default"
    also = f"{task}" + "sex"
    return "--task rhythm", kind in ("binary",), TABLE["quality"]
'''
    hits = task_literals(planted, words)
    assert hits == [(3, "rhythm"), (5, "regression"), (7, "age"), (8, "form"), (9, "all"), (9, "diagnostic"),
                    (11, "sex"), (12, "binary"), (12, "quality")]
    assert task_literals('"""only rhythm in a docstring"""\nx = "rhythms"\n', words) == []


def test_checker_sees_a_planted_violation_in_a_package_module(tmp_path):
    """The package scan itself (not only the string checker) reports a module that spells a kind."""
    package = tmp_path / "ecg_keras"
    (package / "training").mkdir(parents=True)
    (package / TASK_MODULE).write_text('X = "regression"\n')  # the task module may
    (package / "training" / "bad.py").write_text('def loss(kind):\n    return kind == "regression"\n')
    assert _package_literals(package) == {"training/bad.py": {"regression"}}


# --------------------------------------------------------------------------- the records
def test_records_are_frozen_and_complete():
    assert tasks.names() == ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm",
                             "age", "sex", "quality")
    assert tasks.table_tasks() == tasks.statement_tasks() == tasks.names()[:6]
    with pytest.raises(AttributeError):
        tasks.RHYTHM.kind = tasks.REGRESSION
    for t in tasks.all_tasks():
        assert t.kind in tasks.KINDS and t.aggregation in ("max", "mean")
    assert {t: tasks.aggregation(t) for t in tasks.names() if tasks.aggregation(t) == "mean"} == {
        "age": "mean", "sex": "mean"}
    assert [tasks.get(t).published for t in tasks.table_tasks()] == list(tasks.table_tasks())
    assert tasks.activation("age") is None and tasks.activation("sex") == "sigmoid"
    assert tasks.activation("a_custom_label_set") == "sigmoid" and tasks.aggregation(None) == "max"
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        tasks.get("nope")
    with pytest.raises(ValueError, match="unknown task kind 'ordinal'"):
        tasks.kind("ordinal")
    with pytest.raises(ValueError, match="already registered"):
        tasks.register(tasks.Task("rhythm", tasks.MULTILABEL, tasks.STATEMENTS))


@pytest.fixture
def toy_tasks():
    """Two tasks registered for one test, removed afterwards (the registry is restored)."""
    before = tasks.names()
    added = [tasks.register(tasks.Task("toy_years", tasks.REGRESSION, tasks.COLUMN, aggregation="max",
                                       column="age", classes=("years",))),
             tasks.register(tasks.Task("toy_rhythm", tasks.BINARY, tasks.STATEMENTS, aggregation="mean",
                                       flag="rhythm"))]
    try:
        yield added
    finally:
        for t in added:
            tasks.unregister(t.name)
        assert tasks.names() == before


def _ptbxl_like(n: int = 30):
    from ecg_keras.datasets.base import RecordSet
    from ecg_keras.statements import statements_frame

    rng = np.random.default_rng(0)
    codes = [{"NORM": 100.0, "SR": 0.0}, {"IMI": 50.0, "AFIB": 0.0}, {"LVH": 100.0}]
    meta = pd.DataFrame({"scp_codes": [codes[i % 3] for i in range(n)],
                         "age": [300.0 if i == 0 else 40.0 + i for i in range(n)],
                         "sex": [i % 2 for i in range(n)],
                         "strat_fold": [i % 10 + 1 for i in range(n)]},
                        index=pd.Index(np.arange(1, n + 1), name="ecg_id"))
    signals = rng.normal(size=(n, 250, 12)).astype(np.float32)
    return RecordSet("ptbxl", 100, signals, meta, statements_frame(), False)


def test_a_registered_task_flows_through_every_stage(toy_tasks, tmp_path):
    import keras

    from ecg_keras import windows
    from ecg_keras.datasets.tasks import available_tasks, make_task
    from ecg_keras.evaluation.metrics import default_metrics
    from ecg_keras.export.from_torch import task_classes
    from ecg_keras.runs import Run
    from ecg_keras.training.config import TrainConfig
    from ecg_keras.training.lifecycle import task_loss

    records = _ptbxl_like()
    years, rhythm = toy_tasks
    assert {"toy_years", "toy_rhythm"} <= set(available_tasks(records))

    # labels: a regression on the age column (PTB-XL's 300 read as 90), named by the record
    td = make_task(records, "toy_years")
    assert td.kind == tasks.REGRESSION and td.classes == ["years"] and td.y.shape == (30, 1)
    assert td.y[0, 0] == 90.0
    # a statement task filtered by its flag: the rhythm task's labels, under the toy's kind
    toy, real = make_task(records, "toy_rhythm"), make_task(records, tasks.RHYTHM.name)
    assert toy.kind == tasks.BINARY and real.kind == tasks.MULTILABEL
    assert toy.classes == real.classes == ["AFIB", "SR"] and np.array_equal(toy.y, real.y)
    assert task_classes("toy_rhythm") == task_classes(tasks.RHYTHM.name)

    # loss, activation, aggregation and metrics follow the record's kind and aggregation
    assert isinstance(task_loss(td.kind), keras.losses.MeanSquaredError)
    bce = task_loss(toy.kind)
    assert isinstance(bce, keras.losses.BinaryCrossentropy) and bce.get_config()["from_logits"] is True
    assert windows.aggregation("toy_years") == "max" and windows.aggregation("toy_rhythm") == "mean"
    assert tasks.activation("toy_years") is None and tasks.activation("toy_rhythm") == "sigmoid"
    assert set(default_metrics(td.kind)) == {"mae", "r2"}
    assert set(default_metrics(toy.kind)) == {"auc", "accuracy"}

    # training accepts the name; a run directory without kind/aggregation/activation gets them from it
    assert TrainConfig(task="toy_years").task == "toy_years"
    (tmp_path / "config.json").write_text(json.dumps({"task": "toy_years", "dataset": "ptbxl"}))
    run = Run(tmp_path)
    assert (run.kind, run.aggregation, run.activation) == (tasks.REGRESSION, "max", None)

"""What each task is: one frozen :class:`Task` record per task name (docs/PROTOCOL.md "Data").

The task list, every task name and every task-kind string live here; the stages read the record
(``datasets.tasks.make_task`` for labels, training for loss, output activation and the validation
metric, ``windows`` for the aggregation of window predictions, evaluation for metrics, table order
and published numbers, export and the PyTorch import for activation and aggregation). A new task
is one :func:`register` call (plus its label source in ``make_task`` if it needs a new one).

Pure Python, importable without TensorFlow, below every other module of the package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

# --------------------------------------------------------------------------- kinds
MULTILABEL, BINARY, REGRESSION = "multilabel", "binary", "regression"
#: How window predictions may be combined per record, and the output activations (None: linear).
AGGREGATIONS = ("max", "mean")
ACTIVATIONS = ("sigmoid", None)


@dataclass(frozen=True)
class Kind:
    """What a task kind implies for training and scoring.

    ``loss``: a ``keras.losses`` class name, built with ``loss_config`` (on logits for the
    sigmoid kinds, on the linear output for regression); ``activation``: applied to the model's
    logits at prediction (None: linear); ``metrics``: the evaluation's default metric names
    (``evaluation.metrics.default_metrics``); ``headline``: the record-level validation metric of
    training (``val_<headline>``); ``linear``: a linear output whose bias starts at the training
    mean (targets in raw units).
    """

    name: str
    loss: str
    loss_config: tuple[tuple[str, object], ...]
    activation: str | None
    metrics: tuple[str, ...]
    headline: str
    linear: bool = False


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind(MULTILABEL, "BinaryCrossentropy", (("from_logits", True),), "sigmoid", ("macro_auc", "fmax"), "macro_auc"),
    Kind(BINARY, "BinaryCrossentropy", (("from_logits", True),), "sigmoid", ("auc", "accuracy"), "macro_auc"),
    Kind(REGRESSION, "MeanSquaredError", (), None, ("mae", "r2"), "mae", linear=True),
)}


def kind(name: str) -> Kind:
    """The :class:`Kind` record of a kind name; ValueError naming the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown task kind {name!r} ({' | '.join(KINDS)})") from None


# --------------------------------------------------------------------------- label sources
#: ``Task.source`` values: how ``make_task`` derives the labels.
STATEMENTS = "statements"  # PTB-XL SCP codes (likelihoods ignored), filtered by ``flag``, mapped to ``level``
COLUMN = "column"          # one numeric metadata column (``column``), see ``values``
ANY_TEXT = "any_text"      # 1 when any of ``columns`` is non-empty (PTB-XL's noise annotations)
LABELS = "labels"          # other datasets' label lists (``meta["labels"]``), see LABEL_TASKS


@dataclass(frozen=True)
class Task:
    """One task.

    * ``source`` (see STATEMENTS, COLUMN, ANY_TEXT, LABELS) with its parameters: ``flag`` (the
      scp_statements.csv 0/1 column a statement must have, None: every statement), ``level``
      (the diagnostic class column statements are mapped to, None: the statement code itself),
      ``column`` / ``columns`` (metadata columns), ``values`` (the accepted values of a binary
      column, None: any finite number), ``classes`` (the output names of a non-statement task);
    * ``kind``: a key of :data:`KINDS` (loss, activation, metrics);
    * ``aggregation``: how window predictions are combined per record ("max" or "mean");
    * ``table``: position in the paper's tables (Table II columns), None: after them in order
      of appearance; ``published``: the task's key in ``evaluation.published`` (None: no
      published numbers);
    * ``ptbxl_only``: answered only by PTB-XL-layout record sets.
    """

    name: str
    kind: str
    source: str
    aggregation: str = "max"
    flag: str | None = None
    level: str | None = None
    column: str | None = None
    columns: tuple[str, ...] = ()
    values: tuple[float, ...] | None = None
    classes: tuple[str, ...] = ()
    table: int | None = None
    published: str | None = None
    ptbxl_only: bool = False
    description: str = ""

    @property
    def kind_record(self) -> Kind:
        return kind(self.kind)

    @property
    def activation(self) -> str | None:
        return self.kind_record.activation


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add ``task`` to the registry (ValueError if the name is taken or its fields are unknown)."""
    if task.name in _REGISTRY:
        raise ValueError(f"task {task.name!r} is already registered")
    kind(task.kind)
    if task.source not in (STATEMENTS, COLUMN, ANY_TEXT, LABELS):
        raise ValueError(f"task {task.name!r}: unknown label source {task.source!r}")
    if task.aggregation not in AGGREGATIONS:
        raise ValueError(f"task {task.name!r}: aggregation must be one of {AGGREGATIONS}, got {task.aggregation!r}")
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> Task:
    """Remove a task (for tests that register a toy one)."""
    return _REGISTRY.pop(name)


ALL = register(Task("all", MULTILABEL, STATEMENTS, table=0, published="all",
                    description="every SCP statement (71)"))
DIAGNOSTIC = register(Task("diagnostic", MULTILABEL, STATEMENTS, flag="diagnostic", table=1, published="diagnostic",
                           description="diagnostic statements (44)"))
SUBDIAGNOSTIC = register(Task("subdiagnostic", MULTILABEL, STATEMENTS, flag="diagnostic", level="diagnostic_subclass",
                              table=2, published="subdiagnostic", description="diagnostic subclasses (23)"))
SUPERDIAGNOSTIC = register(Task("superdiagnostic", MULTILABEL, STATEMENTS, flag="diagnostic", level="diagnostic_class",
                                table=3, published="superdiagnostic", description="diagnostic superclasses (5)"))
FORM = register(Task("form", MULTILABEL, STATEMENTS, flag="form", table=4, published="form",
                     description="form statements (19)"))
RHYTHM = register(Task("rhythm", MULTILABEL, STATEMENTS, flag="rhythm", table=5, published="rhythm",
                       description="rhythm statements (12)"))
AGE = register(Task("age", REGRESSION, COLUMN, aggregation="mean", column="age", classes=("age",),
                    description="age in years (PTB-XL's 300 for ages above 89 read as 90)"))
SEX = register(Task("sex", BINARY, COLUMN, aggregation="mean", column="sex", values=(0.0, 1.0), classes=("female",),
                    description="sex, 1 = female"))
QUALITY = register(Task("quality", BINARY, ANY_TEXT, columns=("static_noise", "burst_noise", "baseline_drift"),
                        classes=("noisy",), ptbxl_only=True,
                        description="1 when any noise annotation is present"))

#: The levels of PTB-XL's diagnostic hierarchy, leaf to root (statement, subclass, superclass):
#: the statement tasks whose classes they are (``evaluation.hierarchy``).
DIAGNOSTIC_LEVELS = (DIAGNOSTIC.name, SUBDIAGNOSTIC.name, SUPERDIAGNOSTIC.name)
#: The label task each non-PTB-XL record set answers (``meta["labels"]``), by RecordSet name.
LABEL_TASKS = {"icbeb2018": (ALL.name,), "ludb": (RHYTHM.name,)}
DEFAULT_LABEL_TASKS = (ALL.name,)
#: TrainConfig's default task.
DEFAULT_TASK = RHYTHM.name


def get(name: str) -> Task:
    """The :class:`Task` of ``name``; ValueError naming the known tasks."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; one of {', '.join(_REGISTRY)}") from None


def find(name) -> Task | None:
    """The :class:`Task` of ``name`` or None (names read from old run directories may be unknown)."""
    return _REGISTRY.get(name) if isinstance(name, str) else None


def names() -> tuple[str, ...]:
    """Every task name, in registration order."""
    return tuple(_REGISTRY)


def all_tasks() -> Iterator[Task]:
    return iter(tuple(_REGISTRY.values()))


def statement_tasks() -> tuple[str, ...]:
    """The PTB-XL statement tasks, in registration order."""
    return tuple(t.name for t in _REGISTRY.values() if t.source == STATEMENTS)


def table_tasks() -> tuple[str, ...]:
    """The tasks of the paper's tables, in its column order."""
    return tuple(t.name for t in sorted((t for t in _REGISTRY.values() if t.table is not None), key=lambda t: t.table))


def table_key(name: str, seen: list[str]) -> tuple[int, int]:
    """Sort key of a table column: the paper's order first, others in order of appearance in ``seen``."""
    order = table_tasks()
    return (order.index(name) if name in order else len(order), seen.index(name))


def label_tasks(dataset: str) -> tuple[str, ...]:
    """The label task(s) a non-PTB-XL record set called ``dataset`` answers."""
    return LABEL_TASKS.get(dataset, DEFAULT_LABEL_TASKS)


def kind_of(name) -> str:
    """The kind of task ``name``; multi-label for a name not registered (a custom label set)."""
    task = find(name)
    return task.kind if task is not None else MULTILABEL


def aggregation(name) -> str:
    """How window predictions of task ``name`` are combined per record ("max" for unknown names)."""
    task = find(name)
    return task.aggregation if task is not None else "max"


def activation(name) -> str | None:
    """The output activation of task ``name`` (sigmoid for unknown names)."""
    return kind(kind_of(name)).activation

"""The package-level import graph follows the layer order of docs/ARCHITECTURE.md: a unit (a
top-level module or subpackage of ecg_keras, or a module the order names on its own, such as
``io.records``) imports only units on lower lines of that order, never one on its own line or above."""
import re

import pytest
from conftest import REPO
from test_imports import PACKAGE, import_graph, module_imports

DOC = REPO / "docs" / "ARCHITECTURE.md"


def layer_order(text: str) -> list[list[str]]:
    """The units of the ```layers block, one list per line, lowest layer first (``#`` starts a comment)."""
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, f"{DOC} has no ```layers block"
    lines = [line.split("#")[0].replace(",", " ").split() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def unit_of(module: str, units: set[str]) -> str | None:
    """The most specific unit of ``module`` (``ecg_keras.io.records`` -> ``io.records`` if listed, else ``io``);
    the package's own ``__init__`` is the unit ``ecg_keras``, every ``__main__`` module (an entry point) ``__main__``."""
    rest = module.split(".")[1:]
    if not rest:
        return "ecg_keras"
    if rest[-1] == "__main__":
        return "__main__"
    for n in range(len(rest), 0, -1):
        if ".".join(rest[:n]) in units:
            return ".".join(rest[:n])
    return None


def violations(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Every import that is not strictly downwards, and every module of no listed unit."""
    rank = {u: i for i, line in enumerate(layers) for u in line}
    out = []
    for module, targets in sorted(graph.items()):
        a = unit_of(module, set(rank))
        if a is None:
            out.append(f"{module}: in no unit of the layer order")
            continue
        for target in sorted(targets):
            b = unit_of(target, set(rank))
            if b is not None and b != a and rank[b] >= rank[a]:
                out.append(f"{module} imports {target}: {a} (line {rank[a] + 1}) -> {b} (line {rank[b] + 1})")
    return out


def test_layer_order_is_documented():
    layers = layer_order(DOC.read_text())
    units = [u for line in layers for u in line]
    assert len(units) == len(set(units)), "a unit is listed twice"
    assert units.index("training") > units.index("export") > units.index("artefact") > units.index("models")
    assert units.index("io") < units.index("datasets") < units.index("io.records")
    present = {unit_of(m, set(units)) for m in import_graph()}
    assert {"io", "datasets", "training", "export", "artefact", "cli", "ecg_keras"} <= present


def test_imports_follow_the_documented_layer_order():
    assert violations(import_graph(), layer_order(DOC.read_text())) == []


@pytest.fixture(scope="module")
def graph():
    return import_graph()


@pytest.mark.parametrize("module, planted", [
    ("export.release", "from ecg_keras.training import rundir\n"),     # a lower package imports a higher one
    ("artefact", "def _planted():\n    from ecg_keras import runs\n"),  # lazily, inside a function
    ("datasets.base", "import ecg_keras.io.records\n"),               # below the module listed on its own
    ("standardize", "from ecg_keras import augment\n"),               # a unit on its own line
])
def test_a_planted_upward_import_fails(graph, module, planted):
    module = "ecg_keras." + module
    layers = layer_order(DOC.read_text())
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    planted_graph = graph | {module: module_imports(module, path.read_text() + "\n" + planted, False, set(graph))}
    assert violations(graph, layers) == [] and planted_graph[module] > graph[module]
    found = violations(planted_graph, layers)
    assert len(found) == 1 and found[0].startswith(module + " imports"), found


def test_entry_points_are_the_top():
    assert unit_of("ecg_keras.datasets.__main__", {"datasets", "__main__"}) == "__main__"
    assert violations({"ecg_keras.datasets.__main__": {"ecg_keras.cli"}, "ecg_keras.cli": set()},
                      [["datasets"], ["cli"], ["__main__"]]) == []


def test_a_module_outside_every_unit_fails(graph):
    assert violations(graph | {"ecg_keras.newcomer": set()}, layer_order(DOC.read_text())) == [
        "ecg_keras.newcomer: in no unit of the layer order"]

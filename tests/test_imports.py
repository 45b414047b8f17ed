"""The package's modules import each other without cycles (layers only import downwards)."""
import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "ecg_keras"


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the ecg_keras modules it imports (at any level, including inside functions)."""
    modules = {_module_name(p, package.parent): p for p in package.rglob("*.py")}
    return {name: module_imports(name, path.read_text(), path.name == "__init__.py", modules)
            for name, path in modules.items()}


def module_imports(name: str, source: str, is_pkg: bool, modules) -> set[str]:
    """The ecg_keras modules (of ``modules``) that the module ``name`` with ``source`` imports."""
    edges = set()
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("ecg_keras"):
                edges.add(target)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_detector_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert "ecg_keras.training.lifecycle" in graph and "ecg_keras.windows" in graph["ecg_keras.training.lifecycle"]
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_training_exports_functions_not_modules():
    """``from ecg_keras.training import finetune, sweep, train`` gives the functions (docs/ARCHITECTURE.md),
    also after their modules were imported, and their signatures are the real ones."""
    import importlib
    import inspect

    import ecg_keras.training as training

    for module in set(training._LAZY.values()):
        importlib.import_module(f"ecg_keras.training.{module}")  # a submodule named like a function would shadow it
    assert not {name for name in training._LAZY if (PACKAGE / "training" / f"{name}.py").exists()}
    from ecg_keras.training import finetune, sweep, train

    for fn, first in ((finetune, ["config", "init_from", "phase_epochs"]), (sweep, ["config", "init_from", "sizes"]),
                      (train, ["config"])):
        assert inspect.isfunction(fn), fn
        params = inspect.signature(fn).parameters
        assert list(params)[: len(first)] == first, (fn.__name__, list(params))
        var = {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}
        assert not {p.kind for p in params.values()} & var, fn.__name__

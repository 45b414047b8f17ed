"""No module of the package uses a private name (``_x``) of another of its modules: what one
module needs from another is public API. Checked on the source (AST), for the whole package."""
from __future__ import annotations

import ast
from pathlib import Path

import ecg_keras

PACKAGE = Path(ecg_keras.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str, module: str = "ecg_keras.x") -> list[str]:
    """``from M import _x`` with M a module of the package (absolute or relative), and ``m._x``
    where ``m`` was bound by an import from the package; ``module`` resolves relative imports."""
    tree = ast.parse(source)
    package = module.rsplit(".", 1)[0]
    found, bound = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "ecg_keras":
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"line {node.lineno}: from {target} import {alias.name}")
                bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ecg_keras":
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"line {node.lineno}: import {alias.name}")
                    bound.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.append("__init__")  # relative imports of a package's __init__ resolve inside the package
    return ".".join(parts)


def test_checker_finds_planted_violations():
    assert private_uses("from ecg_keras.evaluation.cli import _bootstrap_for\n") == [
        "line 1: from ecg_keras.evaluation.cli import _bootstrap_for"]
    assert private_uses("from .plots import _plt, save_figure\n", "ecg_keras.evaluation.x") == [
        "line 1: from ecg_keras.evaluation.plots import _plt"]
    assert private_uses("from ..evaluation import plots\nplots._save(1, 2)\n", "ecg_keras.training.grid.x") == [
        "line 2: plots._save"]
    assert private_uses("import ecg_keras.training.loop\necg_keras.training.loop._output_dense(m)\n") == [
        "line 2: ecg_keras.training.loop._output_dense"]
    # not violations: public names, dunders, private names of other libraries or of the module itself
    assert private_uses("from ecg_keras.evaluation.plots import pyplot\nimport numpy as np\nnp._x\n"
                        "from ecg_keras import __version__\ndef _own():\n    return _own\nself._y = 1\n") == []


def test_no_module_uses_a_private_name_of_another():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        uses = private_uses(path.read_text(encoding="utf-8"), _module_name(path))
        if uses:
            found[str(path.relative_to(PACKAGE.parent))] = uses
    assert not found, found

"""Every repository file that a docstring, comment or document cites exists."""
import re
from pathlib import Path

from conftest import REPO

TOP = ("ecg_keras", "docs", "tests", "benchmarks", "export", "scripts", "models")
#: a path into one of this repository's top-level folders, or a bare Markdown file name
CITED = re.compile(r"(?<![\w/.~-])((?:%s)/[\w./-]*[\w]|[A-Z][A-Z_]+\.md)" % "|".join(TOP))


def _sources():
    for folder in ("ecg_keras", "benchmarks", "export", "tests", "scripts"):
        yield from (REPO / folder).rglob("*.py")
    yield from (REPO / "docs").rglob("*.md")
    yield from (REPO / "scripts").rglob("*.sh")
    yield REPO / "README.md"
    yield from REPO.glob("*.py")


def _exists(cited: str, source: Path) -> bool:
    cited = cited.rstrip(".")
    candidates = [REPO / cited, source.parent / cited]
    if "/" not in cited:  # bare NAME.md: the repository root or docs/
        candidates += [REPO / "docs" / cited]
    return any(c.exists() or any(c.parent.glob(c.name + "*")) for c in candidates)


def test_cited_files_exist():
    missing = []
    for source in _sources():
        if source.name == "test_citations.py":
            continue
        for n, line in enumerate(source.read_text(errors="replace").splitlines(), 1):
            for cited in CITED.findall(line):
                if "*" in cited or "<" in cited or not _exists(cited, source):
                    if "*" not in cited and "<" not in cited:
                        missing.append(f"{source.relative_to(REPO)}:{n}: {cited}")
    assert not missing, "cited files that do not exist:\n" + "\n".join(missing)


def test_the_pattern_finds_citations():
    assert CITED.findall('see docs/PROTOCOL.md "Data" and ecg_keras/windows.py; README.md') == [
        "docs/PROTOCOL.md", "ecg_keras/windows.py", "README.md"]
    assert CITED.findall("helme/ecg_ptbxl_benchmarking code/utils/utils.py ~/.ecg_keras/models") == []

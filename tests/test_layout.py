"""The package layout's import rules (docs/ARCHITECTURE.md), checked on the source so they cannot erode."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "parm"

# (package, packages it must not import)
FORBIDDEN = [
    ("serving", ("parm.bench", "parm.training", "parm.cli")),
    ("evaluation", ("parm.training", "parm.serving", "parm.bench")),
    ("serving/core", ("parm.serving.http", "parm.serving.runtime", "parm.serving.backends", "parm.bench")),
    ("workload", ("parm.serving", "parm.bench", "parm.training", "parm.evaluation", "parm.runs")),
    ("runs.py", ("parm.training", "parm.evaluation", "parm.serving", "parm.bench")),
    ("export", ("parm.training", "parm.bench", "parm.cli")),
    ("serving/backends", ("parm.serving.runtime", "parm.serving.http", "parm.serving.grpc", "parm.bench")),
    ("serving/grpc", ("parm.serving.runtime", "parm.serving.backends", "parm.bench")),
    ("tasks", ("parm.data", "parm.models", "parm.training", "parm.evaluation", "parm.serving", "parm.bench", "parm.runs")),
]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, written absolutely (relative imports resolved against its package)."""
    package = ".".join(("parm", *path.relative_to(SOURCE).with_suffix("").parts[:-1]))
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(("place", "forbidden"), FORBIDDEN, ids=[place for place, _ in FORBIDDEN])
def test_no_import_runs_against_the_layout(place: str, forbidden: tuple[str, ...]) -> None:
    root = SOURCE / place
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    assert files, f"{place} holds no Python files"
    wrong = sorted(f"{path.relative_to(SOURCE)} imports {name}" for path in files for name in imported_modules(path)
                   if any(name == bad or name.startswith(bad + ".") for bad in forbidden))
    assert not wrong, "\n".join(wrong)


def test_no_module_is_longer_than_400_lines() -> None:
    long = sorted(f"{path.relative_to(SOURCE)}: {n}" for path in SOURCE.rglob("*.py")
                  if (n := len(path.read_text().splitlines())) > 400)
    assert not long, long

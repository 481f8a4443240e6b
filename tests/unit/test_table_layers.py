"""The table layer's boundaries: the builders (`edgepack.summary`) and the HTML report import no renderer
and nothing of the CLI; only `cli/output.py` and `cli/progress.py` import rich."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "edgepack"


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any level (in functions too, under TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _under(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)}


@pytest.mark.parametrize("path", sorted((PACKAGE / "summary").glob("*.py")), ids=lambda p: p.name)
def test_the_table_builders_import_no_renderer_and_no_layer_above_them(path: Path) -> None:
    banned = ("rich", "edgepack.cli", "edgepack.pipeline", "edgepack.report", "edgepack.api", "edgepack.init")
    assert not _under(_imports(path), banned)
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 300  # split by concern, none too long


def test_the_html_report_renders_tables_itself() -> None:
    assert not _under(_imports(PACKAGE / "report" / "html.py"), ("rich", "edgepack.cli"))


def test_the_table_model_imports_nothing_of_edgepack() -> None:
    assert not _under(_imports(PACKAGE / "table.py"), ("rich", "edgepack"))


def test_only_the_output_and_progress_modules_import_rich() -> None:
    importers = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if _under(_imports(p), ("rich",))}
    assert importers - {"cli/devices.py"} == {"cli/output.py", "cli/progress.py"}  # devices.py: until its rewrite

"""tests/unit/conftest.py's check: a unit test that imports TensorFlow or its family fails, naming itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, TESTS

UNIT_TESTS = """
import sys
from types import ModuleType


def test_imports_tensorflow():
    import tensorflow  # noqa: F401


def test_catches_the_import_error():
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        pass  # as edgepack does where a runtime is optional: asking is enough to fail


def test_imports_nothing_heavy():
    import json

    assert json.loads("[1]") == [1]


def test_adds_a_module_without_importing_it():
    sys.modules["tflite_micro"] = ModuleType("tflite_micro")


def test_runs_after_a_module_was_left_imported():
    pass


def test_asks_for_a_fixture_that_trains(tiny_run):
    pass
"""


def test_a_unit_test_that_imports_tensorflow_fails_saying_where_it_belongs(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "unit").mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    shutil.copy(TESTS / "unit" / "conftest.py", tests / "unit" / "conftest.py")
    (tests / "unit" / "__init__.py").write_text("")
    (tests / "unit" / "test_heavy.py").write_text(UNIT_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's options (no xdist workers)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-rA", "tests/unit"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    move = "unit tests must not import TensorFlow: move tests/unit/test_heavy.py::{} to tests/integration ({})"
    assert move.format("test_imports_tensorflow", "it imports tensorflow") in out
    assert move.format("test_catches_the_import_error", "it imported ai_edge_litert") in out
    assert move.format("test_adds_a_module_without_importing_it", "it imported tflite_micro") in out
    assert "cannot check that tests/unit/test_heavy.py::test_runs_after_a_module_was_left_imported" in out
    assert "tflite_micro were imported before it ran" in out
    assert (
        move.format("test_asks_for_a_fixture_that_trains", "it uses the tiny_run fixture, which trains a model") in out
    )
    assert "PASSED tests/unit/test_heavy.py::test_imports_nothing_heavy" in out
    assert "1 failed, 3 passed, 4 errors" in out  # found after a passing call or before the test: errors
    assert "tensorflow" not in sys.modules

"""`import edgepack` stays light (the API's runs on a real bundle: tests/integration/test_api.py)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_import_edgepack_imports_neither_numpy_nor_pydantic_nor_tensorflow() -> None:
    probe = "import sys, edgepack\nedgepack.api\nprint(' '.join(sorted(sys.modules)))"
    modules = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.split()
    )
    assert "edgepack.api" in modules
    assert not {"numpy", "pydantic", "tensorflow", "ai_edge_litert"} & modules

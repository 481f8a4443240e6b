"""Broken and incomplete bundle archives are clear errors (archives around a real bundle, and the refusal
of paths outside it: tests/integration/test_archive.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import invoke, zip_of


def test_a_broken_or_incomplete_archive_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(zip_of([("labels.txt", b"0\n", None)]))
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("manifest.json", b"{}")
        archive.writestr("manifest.json", b"{}")
    for path, text in ((broken, "not a readable zip"), (empty, "has no manifest.json"), (twice, "twice")):
        result = invoke("gate", str(path))
        assert result.exit_code == 2 and text in result.stderr, result.output

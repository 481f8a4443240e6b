"""Broken and incomplete bundle archives are clear errors (archives around a real bundle, and the refusal
of paths outside it: tests/integration/test_archive.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from conftest import invoke


def _zip(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def test_a_broken_or_incomplete_archive_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(_zip([("labels.txt", b"0\n", None)]))
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("manifest.json", b"{}")
        archive.writestr("manifest.json", b"{}")
    for path, text in ((broken, "not a readable zip"), (empty, "has no manifest.json"), (twice, "twice")):
        result = invoke("gate", str(path))
        assert result.exit_code == 2 and text in result.stderr, result.output

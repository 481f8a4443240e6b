"""Bundle archives are read safely: absolute paths, `..` entries and links are refused."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke, zip_of

from edgepack.bundle.archive import read_archive
from edgepack.bundle.writer import zip_bytes
from edgepack.errors import BundleError


def test_gate_reads_the_zip_edgepack_wrote(default_run: dict[str, Any], tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(zip_bytes(default_run["bundle"]))
    files = read_archive(archive)
    assert {"model.tflite", "manifest.json", "labels.txt"} <= set(files)
    assert files["model.tflite"] == (default_run["bundle"] / "model.tflite").read_bytes()
    from_zip, from_dir = invoke("--json", "gate", str(archive)), invoke("--json", "gate", str(default_run["bundle"]))
    assert from_zip.exit_code == from_dir.exit_code == 0 and from_zip.stdout.replace(
        str(archive), "X"
    ) == from_dir.stdout.replace(str(default_run["bundle"]), "X")


@pytest.mark.parametrize(
    ("entry", "mode", "why"),
    [
        ("../evil.txt", None, "'..' component"),
        ("bundle/../../evil.txt", None, "'..' component"),
        ("/etc/evil.txt", None, "absolute path"),
        ("C:\\evil.txt", None, "absolute path"),
        ("link", stat.S_IFLNK | 0o777, "symbolic link"),
    ],
)
def test_an_archive_pointing_outside_the_bundle_is_refused(
    default_run: dict[str, Any], tmp_path: Path, entry: str, mode: int | None, why: str
) -> None:
    manifest = (default_run["bundle"] / "manifest.json").read_bytes()
    archive = tmp_path / "bad.zip"
    archive.write_bytes(zip_of([("manifest.json", manifest, None), (entry, b"/etc/passwd", mode)]))
    with pytest.raises(BundleError, match=why) as info:
        read_archive(archive)
    assert info.value.code == "bundle-unsafe"
    result = invoke("gate", str(archive))
    assert result.exit_code == 2 and "refused" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_odd_archives_are_clear_errors_and_windows_names_are_read(default_run: dict[str, Any], tmp_path: Path) -> None:
    manifest = (default_run["bundle"] / "manifest.json").read_bytes()
    nameless = tmp_path / "nameless.zip"
    nameless.write_bytes(zip_of([("manifest.json", manifest, None), ("", b"x", None)]))
    corrupt = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(corrupt, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest)
        archive.writestr("model.tflite", b"A" * 4096)
    data = bytearray(corrupt.read_bytes())
    start = data.index(b"model.tflite") + len("model.tflite")
    data[start + 2 : start + 12] = b"\xff" * 10  # damage the deflate stream of the second entry
    corrupt.write_bytes(bytes(data))
    for path in (nameless, corrupt):
        result = invoke("verify", str(path))
        assert result.exit_code == 2 and "Traceback" not in result.output and "internal error" not in result.stderr, (
            result.output
        )
    windows = tmp_path / "windows.zip"
    windows.write_bytes(zip_of([("manifest.json", manifest, None), ("c\\model_data.h", b"//", None)]))
    assert "c/model_data.h" in read_archive(windows)


def test_gate_on_edgepacks_zip_asks_for_the_measurements_and_checks_them(
    default_run: dict[str, Any], tmp_path: Path
) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(zip_bytes(default_run["bundle"], exclude=("measurements.json",)))  # as `run --zip` writes it
    result = invoke("gate", str(archive))
    assert result.exit_code == 2 and "no measurements.json to check latency_p90_ms against" in result.stderr
    measured = default_run["bundle"] / "measurements.json"
    assert invoke("gate", str(archive), "--measurements", str(measured)).exit_code == 0
    stale = json.loads(measured.read_text())
    stale["model_sha256"] = "f" * 64  # measurements of another model
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    result = invoke("gate", str(archive), "--measurements", str(tmp_path / "stale.json"))
    assert result.exit_code == 2 and "measured another model" in result.stderr

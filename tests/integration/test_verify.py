"""`edgepack verify`: a bundle verifies as written; one changed byte or an edited field is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

from edgepack.bundle.writer import zip_bytes


@pytest.fixture()
def bundle(default_run: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(default_run["bundle"], copy)
    return copy


def test_a_bundle_as_written_verifies(bundle: Path, tmp_path: Path) -> None:
    result = invoke("--json", "verify", str(bundle))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and {r["path"] for r in report["artifacts"]} >= {"model.tflite", "labels.txt"}
    assert all(r["status"] == "ok" for r in report["artifacts"])
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(zip_bytes(bundle))
    assert invoke("verify", str(archive)).exit_code == 0


def test_one_changed_byte_in_the_model_is_named(bundle: Path) -> None:
    model = bundle / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    result = invoke("verify", str(bundle))
    assert result.exit_code == 2 and "model.tflite: changed" in result.stderr, result.output
    assert "Traceback" not in result.output


def test_edited_missing_and_extra_files_are_named(bundle: Path) -> None:
    (bundle / "labels.txt").write_text("cat\n")
    (bundle / "notes.txt").write_text("added later\n")
    result = invoke("--json", "verify", str(bundle))
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]  # one JSON document: the report
    assert problems == ["labels.txt: changed", "notes.txt: unlisted"]
    (bundle / "labels.txt").unlink()
    assert "labels.txt: missing" in invoke("verify", str(bundle)).stderr


def test_an_edited_manifest_field_is_named(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["inputs"][0]["shape"] = [1, 28, 28, 1]
    manifest["model"]["sha256"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("verify", str(bundle))
    assert result.exit_code == 2
    assert "manifest model.sha256 does not match model.tflite" in result.stderr
    assert "manifest inputs" in result.stderr and "[1, 28, 28, 1]" in result.stderr


def test_a_bundle_without_its_model_does_not_verify(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] != "model.tflite"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    (bundle / "model.tflite").unlink()
    result = invoke("verify", str(bundle))
    assert result.exit_code == 2 and "model.tflite: the model is missing" in result.stderr
    del manifest["model"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("verify", str(bundle))
    assert result.exit_code == 2 and "names no model" in result.stderr and "Traceback" not in result.output


def test_the_manifest_schema_is_published_and_bundles_conform(bundle: Path) -> None:
    from edgepack.bundle.schema import schema_problems

    result = invoke("manifest", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema") and "artifacts" in schema["required"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert schema_problems(manifest) == []
    manifest["model"]["size_bytes"] = "big"
    del manifest["labels"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("verify", str(bundle))
    assert result.exit_code == 2
    assert "manifest at /model/size_bytes: 'big' is not of type 'integer'" in result.stderr
    assert "'labels' is a required property" in result.stderr


def test_measurements_follow_their_schema_and_must_be_of_the_bundled_model(bundle: Path) -> None:
    from edgepack.bundle.schema import measurements_schema, schema_problems

    result = invoke("manifest", "schema", "--measurements")
    assert result.exit_code == 0 and json.loads(result.stdout) == measurements_schema()
    measured = json.loads((bundle / "measurements.json").read_text())
    assert schema_problems(measured, measurements_schema(), "measurements.json") == []
    measured["model_sha256"] = "0" * 64  # measurements of some other model, copied in
    (bundle / "measurements.json").write_text(json.dumps(measured))
    result = invoke("verify", str(bundle))
    assert result.exit_code == 2 and "measurements.json: measured another model" in result.stderr


def test_a_manifest_of_the_previous_schema_version_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"schema_version": 1, "validation": {}, "model": {}}')
    result = invoke("verify", str(tmp_path))
    assert result.exit_code == 2 and "unsupported manifest (schema_version 1)" in result.stderr
    assert "reads schema_version 2" in result.stderr

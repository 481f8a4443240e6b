"""The published manifest and measurements schemas, generated from the pydantic records: bundles written by
earlier edgepacks (tests/fixtures/manifests, see its README) conform to the schema of their version, broken
copies do not, every key they carry is described, and the records dump a manifest back byte for byte."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgepack.bundle.manifest_model import MANIFEST_MODELS
from edgepack.bundle.measurements_model import MEASUREMENTS_MODELS
from edgepack.bundle.schema import manifest_schema, measurements_schema, schema_problems

FIXTURES = Path(__file__).parents[1] / "fixtures" / "manifests"
READ = ("v2", "0.3", "current", "current-formats")  # the versions this edgepack reads (2, 3, 3, 3)


def _load(folder: str, name: str = "manifest.json") -> Any:
    return json.loads((FIXTURES / folder / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("folder", READ)
def test_old_manifests_conform_to_the_schema_of_their_version(folder: str) -> None:
    manifest = _load(folder)
    assert manifest["schema_version"] == (2 if folder == "v2" else 3)
    assert schema_problems(manifest) == []
    assert schema_problems(manifest, manifest_schema(manifest["schema_version"])) == []


@pytest.mark.parametrize("folder", READ)
def test_old_measurements_conform_to_the_schema_of_their_version(folder: str) -> None:
    run = _load(folder, "measurements.json")
    assert schema_problems(run, measurements_schema(run["schema_version"]), "measurements.json") == []


def test_a_version_2_manifest_is_not_a_version_3_one() -> None:
    problems = schema_problems(_load("v2"), manifest_schema(3))
    assert "manifest at /schema_version: 3 was expected" in problems
    assert "manifest at /: 'task' is a required property" in problems


def test_edgepack_0_2_manifests_are_version_1_which_is_no_longer_read() -> None:
    from edgepack.bundle.manifest import READABLE_VERSIONS, read_manifest
    from edgepack.errors import BundleError

    assert _load("0.2")["schema_version"] == 1 not in READABLE_VERSIONS
    with pytest.raises(BundleError, match="unsupported manifest"):
        read_manifest(FIXTURES / "0.2")
    with pytest.raises(ValueError, match="no schema for schema_version 1"):
        manifest_schema(1)


@pytest.mark.parametrize("folder", READ)
@pytest.mark.parametrize(
    ("path", "change", "message"),
    [
        (("model",), "delete", "'model' is a required property"),
        (("model", "size_bytes"), "big", "/model/size_bytes: 'big' is not of type 'integer'"),
        (("model", "sha256"), "0" * 63, "/model/sha256: '000"),
        (("inputs",), [], "/inputs: [] should be non-empty"),
        (("labels",), "abc", "/labels: 'abc' is not of type 'array'"),
        (("data", "train", "fingerprint"), "delete", "/data/train: 'fingerprint' is a required property"),
        (("model", "mode"), "int3", "/model/mode: 'int3' is not one of"),
        (("artifacts", 0, "size_bytes"), -1, "/artifacts/0/size_bytes: -1 is less than the minimum of 0"),
    ],
)
def test_broken_copies_fail(folder: str, path: tuple[Any, ...], change: Any, message: str) -> None:
    manifest = copy.deepcopy(_load(folder))
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    if change == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = change
    problems = schema_problems(manifest)
    assert any(message in p for p in problems), problems
    assert all(p.startswith("manifest at /") for p in problems)


def _described(schema: dict[str, Any], node: dict[str, Any], value: Any, where: str) -> list[str]:
    """The keys of `value` the schema `node` does not describe (as a property, or through a mapping's
    additionalProperties); free-form objects (no properties, no additionalProperties schema) describe all."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    options = node.get("anyOf", [node])
    if len(options) > 1:
        kinds = [o for o in options if o.get("type") != "null"]
        if value is None or not kinds:
            return []
        return min((_described(schema, o, value, where) for o in kinds), key=len)
    missing = []
    if isinstance(value, dict):
        properties, mapping = node.get("properties"), node.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                missing += _described(schema, properties[key], item, f"{where}/{key}")
            elif isinstance(mapping, dict):
                missing += _described(schema, mapping, item, f"{where}/{key}")
            elif properties:  # a record: each key it carries should be a field
                missing.append(f"{where}/{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            missing += _described(schema, node["items"], item, f"{where}/{index}")
    return missing


@pytest.mark.parametrize("folder", READ)
def test_every_key_the_bundles_carry_is_described(folder: str) -> None:
    manifest, run = _load(folder), _load(folder, "measurements.json")
    schema = manifest_schema(manifest["schema_version"])
    assert _described(schema, schema, manifest, "") == []
    schema = measurements_schema(run["schema_version"])
    assert _described(schema, schema, run, "") == []


def test_the_schema_is_generated_and_published_as_before() -> None:
    schema = manifest_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://edgepack.dev/schemas/manifest-v3.json"
    assert schema["title"] == "edgepack bundle manifest"
    assert schema == {**MANIFEST_MODELS[3].model_json_schema(), **{k: schema[k] for k in ("$schema", "$id", "title")}}
    assert set(schema["required"]) == {
        "schema_version", "name", "version", "task", "model", "source", "inputs", "outputs", "labels",
        "labels_file", "normalization", "recipe", "toolchain", "data", "stages", "metrics", "artifacts",
    }  # fmt: skip
    assert set(manifest_schema(2)["required"]) == set(schema["required"]) - {"task", "source"}
    assert schema["properties"]["schema_version"]["const"] == 3
    assert "compression" in schema["properties"] and schema["$defs"]["Compression"]["required"]
    assert measurements_schema()["$id"] == "https://edgepack.dev/schemas/measurements-v3.json"
    assert set(measurements_schema()["required"]) == {
        "schema_version", "model_sha256", "measured_at", "host", "validation", "gate"
    }  # fmt: skip
    manifest_schema()["title"] = "changed"  # a copy: the published one stays
    assert manifest_schema()["title"] == "edgepack bundle manifest"


@pytest.mark.parametrize("folder", READ)
def test_the_records_dump_a_bundle_back_byte_for_byte(folder: str) -> None:
    """Keys in the order given (fields and extras), nulls kept, absent keys left out, ints stay ints."""
    for name, models in (("manifest.json", MANIFEST_MODELS), ("measurements.json", MEASUREMENTS_MODELS)):
        text = (FIXTURES / folder / name).read_text(encoding="utf-8")
        data = json.loads(text)
        record = models[data["schema_version"]].model_validate(data)
        indent = 2
        assert json.dumps(record.dump(), indent=indent) + "\n" == text


def test_records_are_frozen_and_keep_extras() -> None:
    from pydantic import ValidationError

    from edgepack.bundle.manifest_model import Artifact, Tensor

    tensor = Tensor.model_validate(
        {"name": "x", "shape": [1, 2], "dtype": "int8", "scale": 1, "zero_point": 0, "later": True}
    )
    assert tensor.dump() == {"name": "x", "shape": [1, 2], "dtype": "int8", "scale": 1, "zero_point": 0, "later": True}
    assert isinstance(tensor.dump()["scale"], int)
    with pytest.raises(ValidationError):
        tensor.name = "y"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Artifact(path="", sha256="0" * 64, size_bytes=1)

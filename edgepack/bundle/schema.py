"""The published JSON Schemas of a bundle's `manifest.json` and `measurements.json`
(`edgepack manifest schema [--measurements]`), and checking against them.

The schemas are generated from the pydantic records the bundle is built with (`manifest_model`,
`measurements_model`): the manifest (the build section) pins what apps and CI read: the model file and
hash (and the converted model's, before the metadata), the embedded metadata's checks, the input and
output tensors with their quantization, labels and normalization, the artifacts with their hashes,
provenance (recipe hash, stage ids, data fingerprints, toolchain versions). The measurements (the run
section) hold per-device validation, the mode search's figures and the gate results, with the time and
host. Sections that describe optional features (fallback, quantization error, optimization, search) are
objects or null; new optional keys may appear in later versions of the same schema_version.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from edgepack.bundle.manifest import READABLE_VERSIONS, SCHEMA_VERSION


def _version(version: int | None) -> int:
    version = SCHEMA_VERSION if version is None else version
    if version not in READABLE_VERSIONS:
        raise ValueError(f"no schema for schema_version {version}; known: {READABLE_VERSIONS}")
    return version


@cache
def _manifest_schema(version: int) -> dict[str, Any]:
    from edgepack.bundle.manifest_model import MANIFEST_MODELS
    from edgepack.bundle.record_model import document

    return document(MANIFEST_MODELS[version], "manifest", version)


@cache
def _measurements_schema(version: int) -> dict[str, Any]:
    from edgepack.bundle.measurements_model import MEASUREMENTS_MODELS
    from edgepack.bundle.record_model import document

    return document(MEASUREMENTS_MODELS[version], "measurements", version)


def manifest_schema(version: int | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every manifest edgepack writes conforms to (of `version`: the
    current one by default; 2, what edgepack wrote between 0.2.0 and 0.3.0, is still read)."""
    import copy

    return copy.deepcopy(_manifest_schema(_version(version)))


def measurements_schema(version: int | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the measurements.json edgepack writes beside the manifest."""
    import copy

    return copy.deepcopy(_measurements_schema(_version(version)))


def schema_problems(document: Any, schema: dict[str, Any] | None = None, label: str = "manifest") -> list[str]:
    """Where `document` breaks `schema` (the manifest's by default), as '<label> at /json/path: what'
    lines (empty when it conforms)."""
    from jsonschema import Draft202012Validator

    if schema is None:  # the manifest's own schema_version picks the schema (2 or 3)
        version = document.get("schema_version") if isinstance(document, dict) else None
        schema = manifest_schema(version if version in READABLE_VERSIONS else None)
    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        where = "/" + "/".join(str(part) for part in error.absolute_path)
        problems.append(f"{label} at {where}: {error.message}")
    return problems

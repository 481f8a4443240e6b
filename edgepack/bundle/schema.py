"""The published JSON Schemas of a bundle's `manifest.json` and `measurements.json`
(`edgepack manifest schema [--measurements]`), and checking against them.

The manifest (the build section) pins what apps and CI read: the model file and hash (and the
converted model's, before the metadata), the embedded metadata's checks, the input and output
tensors with their quantization, labels and normalization, the artifacts with their hashes,
provenance (recipe hash, stage ids, data fingerprints, toolchain versions). The measurements (the
run section) hold per-device validation, the mode search's figures and the gate results, with the
time and host. Sections that describe optional features (fallback, quantization error,
optimization, search) are objects or null; new optional keys may appear in later versions of the
same schema_version.
"""

from __future__ import annotations

from typing import Any

from edgepack.bundle.manifest import READABLE_VERSIONS, SCHEMA_VERSION

_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_COUNT = {"type": "integer", "minimum": 0}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "dtype", "scale", "zero_point"],
    "properties": {
        "name": {"type": "string"},
        "index": _COUNT,
        "shape": {"type": "array", "items": {"type": "integer"}},
        "dtype": {"type": "string"},
        "scale": _NUMBER_OR_NULL,
        "zero_point": {"type": ["integer", "null"]},
    },
}
_LATENCY = {
    "type": "object",
    "required": ["mean", "min", "max", "runs"],
    "properties": {key: _NUMBER_OR_NULL for key in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")}
    | {"runs": _COUNT},
}
_COUNTS = {"type": "object", "additionalProperties": _COUNT}
_CPU_OP = {
    "type": "object",
    "required": ["op", "name"],
    "properties": {"op": {"type": "string"}, "name": {"type": "string"}, "reason": {"type": "string"}},
}
_ESTIMATE_FIGURES = {  # Vela's estimate of an Ethos-U configuration: what the record and the ethos-u format share
    "accelerator": {"type": "string"},
    "system_config": {"type": "string"},
    "memory_mode": {"type": "string"},
    "clock_mhz": {"type": "number", "exclusiveMinimum": 0},
    "vela_version": {"type": "string"},
    "npu_ops": _COUNT,
    "cpu_ops": _COUNT,
    "cpu_fallback": {"type": "array", "items": _CPU_OP},
    "memory_bytes": _COUNTS,
    "macs": _COUNT,
    "cycles": _COUNTS,
    "inference_ms": {"type": "number", "minimum": 0},
    "inferences_per_second": _NUMBER_OR_NULL,
    "model_sha256": _SHA256,
}
_ESTIMATE = {
    "type": "object",
    "required": [
        "accelerator",
        "system_config",
        "memory_mode",
        "clock_mhz",
        "vela_version",
        "npu_ops",
        "cpu_ops",
        "cpu_fallback",
        "memory_bytes",
        "macs",
        "cycles",
        "inference_ms",
        "layers",
    ],
    "properties": _ESTIMATE_FIGURES
    | {
        "clock_hz": {"type": "number"},
        "passes": _COUNT,
        "weights_bytes": _COUNTS,
        "config": {"type": "string"},
        "compiled": {
            "type": "object",
            "required": ["file", "sha256", "size_bytes"],
            "properties": {"file": {"type": "string"}, "sha256": _SHA256, "size_bytes": _COUNT},
        },
        "layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["op", "target", "cycles", "macs", "name"],
                "properties": {
                    "op": {"type": "string"},
                    "npu_op": {"type": "string"},
                    "target": {"enum": ["NPU", "CPU"]},
                    "cycles": _COUNT,
                    "macs": _COUNT,
                    "name": {"type": "string"},
                },
            },
        },
    },
}
ETHOS_U_FORMAT = {
    "type": "object",
    "required": [
        "files",
        "device",
        "accelerator",
        "system_config",
        "memory_mode",
        "clock_mhz",
        "vela_version",
        "model_sha256",
        "compiled_sha256",
        "npu_ops",
        "cpu_ops",
        "inference_ms",
        "memory_bytes",
    ],
    "properties": _ESTIMATE_FIGURES
    | {
        "files": {"type": "array", "items": {"type": "string"}},
        "device": {"type": "string"},
        "compiled_sha256": _SHA256,
        "compiled_by": {"enum": ["validate (reused)", "bundle"]},
        "cycles_total": _COUNT,
    },
}
_DEVICE_RECORD = {
    "type": "object",
    "required": ["device", "kind", "emulated", "latency_ms", "runtime", "parity"],
    "properties": {
        "device": {"type": "string"},
        "kind": {"enum": ["local", "ssh", "adb", "qemu-arm64", "tflm", "ethos-u"]},
        "emulated": {"type": "boolean"},
        "latency_ms": {"anyOf": [_LATENCY, {"type": "null"}]},
        "init_ms": _NUMBER_OR_NULL,
        "arena": {
            "type": "object",
            "required": ["bytes"],
            "properties": {
                "bytes": _COUNT,
                "persistent": {"type": ["integer", "null"]},
                "non_persistent": {"type": ["integer", "null"]},
            },
        },
        "peak_rss_kb": {"type": ["integer", "null"]},
        "runtime": {"type": "object", "required": ["name", "version"]},
        "parity": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": ["boolean", "null"]}}},
        "outputs_sha256": {"type": ["array", "null"], "items": _SHA256},
        "estimate": _ESTIMATE,
    },
}
_BUDGET = {
    "type": "object",
    "required": ["name", "limit", "measured", "unit", "passed", "margin"],
    "properties": {
        "name": {"type": "string"},
        "limit": {"type": "number"},
        "measured": _NUMBER_OR_NULL,
        "unit": {"type": "string"},
        "passed": {"type": "boolean"},
        "margin": _NUMBER_OR_NULL,
        "detail": {"type": "string"},
        "estimated": {"type": "boolean"},
    },
}
_OPTIONAL_OBJECT = {"type": ["object", "null"]}
_COUNT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
_COMPRESSION = {  # convert.compression = "lut": TFLM's look-up tables (the shipped model is the compressed one)
    "type": ["object", "null"],
    "required": ["method", "runtime", "size_before_bytes", "size_bytes", "tensors"],
    "properties": {
        "method": {"enum": ["lut"]},
        "runtime": {"enum": ["tflm"]},
        "decode_op": {"type": "string"},
        "size_before_bytes": {"type": "integer", "minimum": 1},
        "size_bytes": {"type": "integer", "minimum": 1},
        "ratio": {"type": ["number", "null"]},
        "tensor_bytes_before": {"type": "integer", "minimum": 0},
        "tensor_bytes_after": {"type": "integer", "minimum": 0},
        "tensors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "bits", "mode", "bytes_before", "bytes_after"],
                "properties": {
                    "name": {"type": "string"},
                    "bits": {"type": "integer", "minimum": 1, "maximum": 7},
                    "mode": {"enum": ["per-tensor", "per-channel"]},
                    "axis": {"type": ["integer", "null"]},
                    "values": {"type": "integer", "minimum": 1},
                    "tables": {"type": "integer", "minimum": 1},
                    "bytes_before": {"type": "integer", "minimum": 1},
                    "bytes_after": {"type": "integer", "minimum": 1},
                },
            },
        },
        "skipped": {
            "type": "array",
            "items": {"type": "object", "required": ["name", "why"], "properties": {"why": {"type": "string"}}},
        },
        "arena": {
            "type": "object",
            "required": ["how"],
            "properties": {
                "how": {"enum": ["measured", "not measured"]},
                "bytes": {"type": "integer", "minimum": 1},
                "uncompressed_model_bytes": _COUNT_OR_NULL,
                "decoded_bytes": {"type": ["integer", "null"]},
                "includes": {"type": "string"},
                "why": {"type": "string"},
            },
        },
    },
}


_GRANULARITY = {"enum": ["per-channel", "per-tensor"]}
_DENSE_GRANULARITY = {  # convert.dense_granularity = "auto": both conversions judged, the one kept
    "type": ["object", "null"],
    "required": ["chosen", "why", "candidates"],
    "properties": {
        "chosen": _GRANULARITY,
        "why": {"type": "string"},
        "candidates": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "required": ["dense_granularity", "size_bytes", "holds", "chosen", "budgets"],
                "properties": {
                    "dense_granularity": _GRANULARITY,
                    "size_bytes": {"type": "integer", "minimum": 1},
                    "worst_sqnr_db": _NUMBER_OR_NULL,
                    "holds": {"type": "boolean"},
                    "chosen": {"type": "boolean"},
                    "budgets": {"type": "array", "items": {"type": "object", "required": ["name", "passed"]}},
                },
            },
        },
    },
}
_METRICS = {"type": "object", "additionalProperties": {"type": "number"}}
_FIDELITY = {
    "type": "object",
    "required": ["outputs", "worst_sqnr_db"],
    "properties": {
        "worst_sqnr_db": _NUMBER_OR_NULL,
        "min_cosine": _NUMBER_OR_NULL,
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["output", "sqnr_db", "cosine", "max_abs_error"],
                "properties": {
                    "output": _COUNT,
                    "name": {"type": "string"},
                    "sqnr_db": _NUMBER_OR_NULL,
                    "identical": {"type": "boolean"},
                    "cosine": {"type": "number"},
                    "max_abs_error": {"type": "number"},
                },
            },
        },
    },
}
_ACCURACY = {
    "type": "object",
    "required": ["tflite"],
    "properties": {k: _NUMBER_OR_NULL for k in ("float", "optimized", "tflite", "drop")},
}


_COUNT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
_MEMORY = {  # where activation memory peaks, and the arena TFLM measured (when the run measured it)
    "type": "object",
    "required": ["activation_peak_bytes", "peak_op", "largest_tensors"],
    "properties": {
        "activation_peak_bytes": _COUNT,
        "peak_op": {"type": ["string", "null"]},
        "peak_op_index": _COUNT_OR_NULL,
        "peak_layer": {"type": ["string", "null"]},
        "live_tensors": _COUNT,
        "largest_tensors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "bytes", "shape", "dtype"],
                "properties": {
                    "name": {"type": "string"},
                    "bytes": _COUNT,
                    "dtype": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "layer": {"type": "string"},
                    "producer": _COUNT_OR_NULL,
                    "producer_op": {"type": ["string", "null"]},
                },
            },
        },
        "arena": {
            "type": "object",
            "required": ["how"],
            "properties": {
                "how": {"enum": ["measured", "not measured"]},
                "need": _COUNT,
                "non_persistent": _COUNT_OR_NULL,
                "persistent": _COUNT_OR_NULL,
                "runtime": {"type": "string"},
                "why": {"type": "string"},
            },
        },
    },
}
_FIT = {  # one board of budgets.fits (devices.boards.Fit)
    "type": "object",
    "required": [
        "board",
        "flash_bytes",
        "model_bytes",
        "runtime_flash_bytes",
        "flash_need",
        "flash_headroom",
        "ram_bytes",
        "arena_bytes",
        "io_bytes",
        "runtime_ram_bytes",
        "ram_need",
        "ram_headroom",
        "fits",
    ],
    "properties": {
        "board": {"type": "string"},
        "board_name": {"type": "string"},
        "core": {"type": "string"},
        "clock_mhz": {"type": "number"},
        "flash_bytes": _COUNT,
        "model_bytes": _COUNT,
        "runtime_flash_bytes": _COUNT,
        "flash_need": _COUNT,
        "flash_headroom": {"type": "integer"},
        "ram_bytes": _COUNT,
        "arena_bytes": _COUNT_OR_NULL,
        "io_bytes": _COUNT,
        "runtime_ram_bytes": _COUNT,
        "ram_need": _COUNT_OR_NULL,
        "ram_headroom": {"type": ["integer", "null"]},
        "fits": {"type": "boolean"},
        "arena_runtime": {"type": ["string", "null"]},
        "arena_why": {"type": "string"},
    },
}


def _document(kind: str, required: list[str], properties: dict[str, Any], version: int) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://edgepack.dev/schemas/{kind}-v{version}.json",
        "title": f"edgepack bundle {kind}",
        "type": "object",
        "required": required,
        "properties": properties,
    }


def _version(version: int | None) -> int:
    version = SCHEMA_VERSION if version is None else version
    if version not in READABLE_VERSIONS:
        raise ValueError(f"no schema for schema_version {version}; known: {READABLE_VERSIONS}")
    return version


def manifest_schema(version: int | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every manifest edgepack writes conforms to (of `version`: the
    current one by default; 2, what edgepack 0.2 wrote, is still read)."""
    version = _version(version)
    required = [
        "schema_version",
        "name",
        "version",
        "model",
        "inputs",
        "outputs",
        "labels",
        "labels_file",
        "normalization",
        "recipe",
        "toolchain",
        "data",
        "stages",
        "metrics",
        "artifacts",
    ]
    if version >= 3:
        required += ["task", "source"]
    metrics = (
        {"type": "object", "required": ["accuracy"], "properties": {"accuracy": _ACCURACY}}
        if version == 2
        else {
            "type": "object",
            "required": ["task", "metric", "float", "tflite", "fidelity"],
            "properties": {
                "task": {"enum": ["classification", "regression", "anomaly", "fidelity"]},
                "metric": {"type": "string"},
                "accuracy": _ACCURACY,
                "float": _METRICS,
                "optimized": _METRICS,
                "tflite": _METRICS,
                "drop": _NUMBER_OR_NULL,
                "fidelity": _FIDELITY,
            },
        }
    )
    return _document(
        "manifest",
        required,
        {
            "schema_version": {"const": version},
            "task": {"type": "object", "required": ["kind"]},
            "source": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["builder", "saved"]},
                    "saved_by": {"type": "string"},
                    "keras_version": {"type": ["string", "null"]},
                    "bridge": {"type": "object", "required": ["bridged"]},
                },
            },
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$"},
            "version": {"type": "string"},
            "description": {"type": "string"},
            "model": {
                "type": "object",
                "required": ["file", "sha256", "size_bytes", "mode", "io"],
                "properties": {
                    "file": {"type": "string"},
                    "sha256": _SHA256,
                    "size_bytes": _COUNT,
                    "gzip_bytes": _COUNT,
                    "converted_sha256": _SHA256,
                    "converted_size_bytes": _COUNT,
                    "mode": {"enum": ["int8", "int16x8", "dynamic", "float16", "float32"]},
                    "io": {"enum": ["int8", "float32"]},
                    "weights": {"type": "array", "items": {"type": "string"}},
                    "metadata": {
                        "type": "object",
                        "required": ["embedded"],
                        "properties": {
                            "embedded": {"type": "boolean"},
                            "min_parser_version": {"type": "string"},
                            "normalization_proof": {"type": ["object", "array"]},
                            "same_outputs": {"type": "object"},
                        },
                    },
                },
            },
            "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
            "outputs": {"type": "array", "minItems": 1, "items": _TENSOR},
            "labels": {"type": "array", "items": {"type": "string"}},
            "labels_file": {"type": "string"} if version == 2 else {"type": ["string", "null"]},
            "normalization": {
                "type": "object",
                "required": ["mean", "std", "formula"],
                "properties": {
                    "mean": {"type": ["number", "array"]},
                    "std": {"type": ["number", "array"]},
                    "formula": {"type": "string"},
                    "input_shape": {"type": "array", "items": {"type": ["integer", "array"]}},
                },
            },
            "recipe": {
                "type": "object",
                "required": ["sha256", "resolved"],
                "properties": {
                    "sha256": _SHA256,
                    "source": {"type": ["string", "null"]},
                    "resolved": {"type": "object"},
                },
            },
            "toolchain": {"type": "object", "additionalProperties": {"type": "string"}},
            "data": {
                "type": "object",
                "required": ["train", "test"],
                "properties": {
                    name: {"type": "object", "required": ["fingerprint"], "properties": {"fingerprint": _SHA256}}
                    for name in ("train", "test")
                }
                | {"calibration": _OPTIONAL_OBJECT},
            },
            "stages": {"type": "object", "additionalProperties": {"type": "string"}},
            "optimization": _OPTIONAL_OBJECT,
            "quantization_error": _OPTIONAL_OBJECT,
            "fallback": _OPTIONAL_OBJECT,
            "dense_granularity": _DENSE_GRANULARITY,
            "compression": _COMPRESSION,
            "metrics": metrics,
            "formats": {"type": "object", "properties": {"ethos-u": ETHOS_U_FORMAT}},
            "memory": _MEMORY,
            "fits": {"type": "object", "additionalProperties": _FIT},
            "artifacts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "sha256", "size_bytes"],
                    "properties": {"path": {"type": "string", "minLength": 1}, "sha256": _SHA256, "size_bytes": _COUNT},
                },
            },
        },
        version,
    )


def measurements_schema(version: int | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the measurements.json edgepack writes beside the manifest."""
    version = _version(version)
    return _document(
        "measurements",
        ["schema_version", "model_sha256", "measured_at", "host", "validation", "gate"],
        {
            "schema_version": {"const": version},
            "model_sha256": _SHA256,
            "measured_at": {"type": "string"},
            "host": {"type": "object"},
            "edgepack": {"type": "string"},
            "validation": {"type": "object", "additionalProperties": _DEVICE_RECORD},
            "search": _OPTIONAL_OBJECT,
            "gate": {
                "type": "object",
                "required": ["passed", "results"],
                "properties": {"passed": {"type": "boolean"}, "results": {"type": "array", "items": _BUDGET}},
            },
        },
        version,
    )


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

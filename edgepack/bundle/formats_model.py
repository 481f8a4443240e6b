"""The manifest's `formats` entries as pydantic records: android, c-array (the converted model as C sources for
TFLite Micro) and ethos-u (the model compiled by Vela, with Vela's figures)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgepack.bundle.measurements_model import CpuOp, EstimateFigures
from edgepack.bundle.record_model import Count, Counts, Num, Opt, Record, Sha256


class EthosUFormat(EstimateFigures):
    """The ethos-u format: the model compiled by Vela for a profile, with Vela's key figures."""

    files: list[str]
    device: str
    accelerator: str
    system_config: str
    memory_mode: str
    clock_mhz: Num = Field(gt=0)
    vela_version: str
    model_sha256: Sha256
    compiled_sha256: Sha256
    npu_ops: Count
    cpu_ops: Count
    cpu_fallback: Opt[list[CpuOp]] = None
    memory_bytes: Counts
    cycles_total: Opt[Count] = None
    inference_ms: Num = Field(ge=0)
    compiled_by: Opt[Literal["validate (reused)", "bundle"]] = None


class AndroidFormat(Record):
    files: list[str]
    metadata: bool  # the model carries its metadata


class CArrayArena(Record):
    how: Literal["measured", "estimate"]
    why: Opt[str] = None
    need_bytes: Opt[Count] = None
    margin_bytes: Opt[Count] = None
    non_persistent_bytes: Count | None = None
    persistent_bytes: Count | None = None
    runtime: Opt[str] = None
    estimate_bytes: Opt[Count] = None


class CArrayFormat(Record):
    """The c-array format: the converted model as C sources for TFLite Micro, its arena and resolver."""

    files: list[str]
    model_sha256: Sha256
    arena_bytes: Count
    arena: Opt[CArrayArena] = None
    activation_peak_bytes: Opt[Count] = None
    resolver_ops: Opt[list[str]] = None
    unsupported_ops: Opt[list[str]] = None


class Formats(Record):
    android: Opt[AndroidFormat] = None
    c_array: Opt[CArrayFormat] = Field(None, alias="c-array")
    ethos_u: Opt[EthosUFormat] = Field(None, alias="ethos-u")

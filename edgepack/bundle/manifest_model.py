"""manifest.json (the build section: what the bundle holds, how it was made, what was measured of the model) as
pydantic records, one model per schema_version edgepack reads (3, and 2: before the task and the model source).

The published JSON Schema is generated from these (`edgepack.bundle.schema`). Sections that describe optional
features (fallback, quantization error, optimization, granularity, compression) are objects or null; extra keys
are allowed everywhere, so later versions of the same schema_version may add some.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from edgepack.bundle.formats_model import Formats
from edgepack.bundle.record_model import Count, Num, Opt, Positive, Record, Sha256

Granularity = Literal["per-channel", "per-tensor"]


class Task(Record):
    kind: Any  # the recipe's [task] table as resolved


class Bridge(Record):
    bridged: Any


class Source(Record):
    kind: Literal["builder", "saved"]
    builder: Opt[str] = None
    saved_by: Opt[str] = None
    keras_version: str | None = None
    bridge: Opt[Bridge] = None


class Metadata(Record):
    """The metadata embedded in the shipped model, and the proofs it changes nothing."""

    embedded: bool
    min_parser_version: Opt[str] = None
    associated_files: Opt[list[Any]] = None
    normalization_proof: Opt[dict[str, Any] | list[Any]] = None
    same_outputs: Opt[dict[str, Any]] = None


class ModelFile(Record):
    file: str
    sha256: Sha256
    size_bytes: Count
    converted_sha256: Opt[Sha256] = None  # the converted model, before the metadata
    converted_size_bytes: Opt[Count] = None
    gzip_bytes: Opt[Count] = None
    mode: Literal["int8", "int16x8", "dynamic", "float16", "float32"]
    io: Literal["int8", "float32"]
    weights: Opt[list[str]] = None  # the kernels' dtypes
    metadata: Opt[Metadata] = None


class Tensor(Record):
    """An input or output tensor of the model file, in the file's order (keras_index: the Keras one it is)."""

    name: str
    index: Opt[Count] = None
    shape: list[int]
    dtype: str
    scale: Num | None
    zero_point: int | None
    keras_index: Opt[Count] = None


class Normalization(Record):
    mean: Num | list[Any]
    std: Num | list[Any]
    formula: str
    input_layout: Opt[str] = None
    input_shape: Opt[list[int | list[Any]]] = None
    resize: list[int] | None = None
    resize_method: str | None = None


class RecipeRef(Record):
    sha256: Sha256
    source: str | None = None
    resolved: dict[str, Any]


class Split(Record):
    fingerprint: Sha256
    samples: Opt[Count] = None
    left_out: Opt[Any] = None


class Data(Record):
    train: Split
    calibration: dict[str, Any] | None = None
    test: Split


class Optimization(Record):
    """What optimized the model: the float model's parameters, the optimize stages, the converted weights."""

    params_float: Opt[Any] = None
    stages: Opt[Any] = None
    tflite_weights: Opt[dict[str, Any]] = None


class BudgetRef(Record):
    name: Any
    passed: Any


class Candidate(Record):
    dense_granularity: Granularity
    size_bytes: Positive
    worst_sqnr_db: Num | None = None
    holds: bool
    chosen: bool
    budgets: list[BudgetRef]


class DenseGranularity(Record):
    """convert.dense_granularity = "auto": both conversions judged, the one kept."""

    chosen: Granularity
    why: str
    candidates: list[Candidate] = Field(min_length=2)


class LutTensor(Record):
    name: str
    bits: int = Field(ge=1, le=7)
    mode: Granularity
    axis: int | None = None
    values: Opt[Positive] = None
    tables: Opt[Positive] = None
    bytes_before: Positive
    bytes_after: Positive


class Skipped(Record):
    name: Any
    why: str


class LutArena(Record):
    how: Literal["measured", "not measured"]
    bytes_: Opt[Positive] = Field(None, alias="bytes")
    uncompressed_model_bytes: Count | None = None
    decoded_bytes: int | None = None
    includes: Opt[str] = None
    why: Opt[str] = None


class Compression(Record):
    """convert.compression = "lut": TFLM's look-up tables (the shipped model is the compressed one)."""

    method: Literal["lut"]
    runtime: Literal["tflm"]
    decode_op: Opt[str] = None
    size_before_bytes: Positive
    size_bytes: Positive
    ratio: Num | None = None
    tensor_bytes_before: Opt[Count] = None
    tensor_bytes_after: Opt[Count] = None
    tensors: list[LutTensor] = Field(min_length=1)
    skipped: Opt[list[Skipped]] = None
    arena: Opt[LutArena] = None


class Accuracy(Record):
    float_: Num | None = Field(None, alias="float")
    optimized: Num | None = None
    tflite: Num | None
    drop: Num | None = None


class OutputFidelity(Record):
    output: Count
    name: Opt[str] = None
    sqnr_db: Num | None
    identical: Opt[bool] = None
    cosine: Num
    max_abs_error: Num


class Fidelity(Record):
    """The shipped model's outputs against the float model's: per output, and the worst."""

    outputs: list[OutputFidelity]
    worst_sqnr_db: Num | None
    min_cosine: Num | None = None


Scores = dict[str, Num]


class Metrics(Record):
    task: Literal["classification", "regression", "anomaly", "fidelity"]
    metric: str
    accuracy: Opt[Accuracy] = None  # classifiers
    float_: Scores = Field(alias="float")
    optimized: Opt[Scores] = None
    tflite: Scores
    drop: Num | None = None
    fidelity: Fidelity
    test_samples: Opt[Count] = None
    size_bytes: Opt[Count] = None


class MetricsV2(Record):
    accuracy: Accuracy
    test_samples: Opt[Count] = None
    size_bytes: Opt[Count] = None


class LiveTensor(Record):
    index: Opt[Count] = None
    name: str
    bytes_: Count = Field(alias="bytes")
    dtype: str
    shape: list[int]
    layer: Opt[str] = None
    producer: Count | None = None
    producer_op: str | None = None


class Arena(Record):
    how: Literal["measured", "not measured"]
    need: Opt[Count] = None
    non_persistent: Count | None = None
    persistent: Count | None = None
    runtime: Opt[str] = None
    why: Opt[str] = None


class Memory(Record):
    """Where activation memory peaks, and the arena TFLM measured (when the run measured it)."""

    activation_peak_bytes: Count
    peak_op: str | None
    peak_op_index: Count | None = None
    peak_layer: str | None = None
    live_tensors: Opt[Count] = None
    largest_tensors: list[LiveTensor]
    arena: Opt[Arena] = None


class Fit(Record):
    """One board of budgets.fits (devices.boards.Fit)."""

    board: str
    board_name: Opt[str] = None
    core: Opt[str] = None
    clock_mhz: Opt[Num] = None
    flash_bytes: Count
    model_bytes: Count
    runtime_flash_bytes: Count
    flash_need: Count
    flash_headroom: int
    ram_bytes: Count
    arena_bytes: Count | None
    io_bytes: Count
    runtime_ram_bytes: Count
    ram_need: Count | None
    ram_headroom: int | None
    fits: bool
    arena_runtime: str | None = None
    arena_why: Opt[str] = None


class Artifact(Record):
    path: str = Field(min_length=1)
    sha256: Sha256
    size_bytes: Count


Name = Annotated[str, StringConstraints(pattern="^[a-z0-9][a-z0-9._-]*$")]


class Build(Record):
    """The manifest as `build_manifest` makes it: all but the artifacts, which the writer lists as written."""

    schema_version: Literal[3]
    name: Name
    version: str
    description: Opt[str] = None
    task: Task
    model: ModelFile
    source: Source
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[Tensor] = Field(min_length=1)
    labels: list[str]
    labels_file: str | None
    normalization: Normalization
    recipe: RecipeRef
    toolchain: dict[str, str]
    data: Data
    stages: dict[str, str]
    optimization: Optimization | None = None
    quantization_error: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    dense_granularity: DenseGranularity | None = None
    compression: Compression | None = None
    metrics: Metrics
    memory: Opt[Memory] = None
    fits: Opt[dict[str, Fit]] = None
    formats: Opt[Formats] = None


class ManifestV3(Build):
    """manifest.json, schema_version 3 (edgepack 0.3): the task, the model's source, the task's metrics."""

    artifacts: list[Artifact]


class ManifestV2(ManifestV3):
    """manifest.json, schema_version 2 (between 0.2.0 and 0.3.0): measurements split out; no task nor source."""

    schema_version: Literal[2]  # type: ignore[assignment]
    task: Opt[Task] = None  # type: ignore[assignment]
    source: Opt[Source] = None  # type: ignore[assignment]
    labels_file: str
    metrics: MetricsV2  # type: ignore[assignment]


MANIFEST_MODELS: dict[int, type[ManifestV3]] = {2: ManifestV2, 3: ManifestV3}


def with_artifacts(build: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole manifest: the build section (`Build.dump()`) with the files the writer wrote, listed last."""
    return {**build, "artifacts": artifacts}

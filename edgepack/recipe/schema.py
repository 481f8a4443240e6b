"""The recipe schema: strict pydantic models (unknown keys refused, values range-checked).

Tagged sections (`dataset`, `model`, each `[[optimize]]` entry) are discriminated unions on
`kind`, so an error names the branch that was meant. Cross-field rules live in model
validators whose messages name every field involved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2}


class Strict(BaseModel):
    """Base of every recipe section: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class Normalization(Strict):
    """Input normalization `x' = (x - mean) / std`, declared once, carried to the manifest."""

    mean: float | list[float] = 0.0
    std: float | list[float] = 1.0

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if not values or any(v <= 0 for v in values):
            raise ValueError("every std must be > 0")
        return value


Size2D = tuple[Annotated[int, Field(ge=1, le=4096)], Annotated[int, Field(ge=1, le=4096)]]


class _DatasetBase(Strict):
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    normalization: Normalization = Normalization()
    labels: list[str] | None = None
    resize: Size2D | None = None
    channels: Literal[1, 3] | None = None
    limit: int | None = Field(None, ge=2)
    # the raw pixel values that stand for black and full white (an app's 8-bit 0 and 255): the
    # embedded metadata's normalization is expressed for 8-bit pixels from it
    pixel_range: tuple[float, float] | None = None
    # how inputs are read: "auto" takes (N, F) arrays as feature vectors and (N, H, W[, C]) as images;
    # "tensors" takes every array as stored (sequences, spectrograms: no channel axis added)
    layout: Literal["auto", "tensors"] = "auto"

    @field_validator("pixel_range")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError("pixel_range is [black, white] with black < white")
        return value


class DigitsDataset(_DatasetBase):
    """The built-in 8x8 handwritten digits (1,797 images, pixel values 0..16)."""

    kind: Literal["digits"]
    normalization: Normalization = Normalization(mean=0.0, std=16.0)
    pixel_range: tuple[float, float] | None = (0.0, 16.0)


Key = Annotated[str, Field(min_length=1)]


class NpzDataset(_DatasetBase):
    """Arrays in a `.npz`: inputs (images (N, H, W[, C]), features (N, F), or any tensors) and the
    task's targets: integer labels, float targets (one array per output), 0/1 anomaly labels."""

    kind: Literal["npz"]
    path: str = Field(min_length=1)
    x_key: Key | list[Key] = "x"  # a list: one array per model input, in the model's input order
    y_key: Key | list[Key] | None = "y"  # classification: labels; regression: targets (a list: one per output)
    anomaly_key: Key | None = None  # anomaly: 0 normal / 1 anomalous per sample

    @field_validator("x_key", "y_key")
    @classmethod
    def _keys_distinct(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError(f"{value}: give at least one key, each once")
        return value


class FolderDataset(_DatasetBase):
    """A folder of images with one sub-folder per class (the sub-folder name is the label)."""

    kind: Literal["folder"]
    path: str = Field(min_length=1)
    image_size: Size2D
    color_mode: Literal["grayscale", "rgb"] = "rgb"
    pixel_range: tuple[float, float] | None = (0.0, 255.0)


DatasetSpec = Annotated[DigitsDataset | NpzDataset | FolderDataset, Field(discriminator="kind")]


class BuilderModel(Strict):
    """A model built by a Python function `module:function(input_shape, num_classes, **args)`."""

    kind: Literal["builder"]
    builder: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    args: dict[str, int | float | str | bool | list[int] | list[float]] = {}


class SavedModel(Strict):
    """A saved model: Keras 3 or tf_keras (Keras 2) `.keras` / `.h5`, or a SavedModel directory.

    A Keras 3 model is rebuilt in tf_keras (and the rebuild proven on the test inputs) so the
    optimize stages can work on it; `imports` are modules to import first (they register a Keras 3
    model's custom layers), found beside the recipe or installed.
    """

    kind: Literal["saved"]
    path: str = Field(min_length=1)
    imports: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*$")]] = []


ModelSpec = Annotated[BuilderModel | SavedModel, Field(discriminator="kind")]


class ClassificationTask(Strict):
    """Integer class labels; top-1 accuracy (the default task)."""

    kind: Literal["classification"]


class RegressionTask(Strict):
    """Float targets shaped like the model's outputs; MAE and RMSE."""

    kind: Literal["regression"]


class AnomalyTask(Strict):
    """Normal samples train; normal and anomalous ones test; ROC AUC of the anomaly score.

    Labels come from the npz (`dataset.anomaly_key`: 0 normal, 1 anomalous) or, for a dataset with
    classes, from `normal_classes` (those classes are normal, the others anomalous)."""

    kind: Literal["anomaly"]
    normal_classes: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)


class FidelityTask(Strict):
    """No labels: the converted model is judged against the float model (SQNR per output)."""

    kind: Literal["fidelity"]


TaskSpec = Annotated[ClassificationTask | RegressionTask | AnomalyTask | FidelityTask, Field(discriminator="kind")]

Optimizer = Literal["adam", "sgd", "rmsprop"]


class TrainSettings(Strict):
    """How a built model is trained from scratch."""

    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=65_536)
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0)
    optimizer: Optimizer = "adam"


class _FineTune(Strict):
    epochs: int = Field(2, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=65_536)
    learning_rate: float = Field(1e-4, gt=0.0, le=10.0)
    optimizer: Optimizer = "adam"


LayerPattern = Annotated[str, Field(min_length=1)]


class _Selection(Strict):
    """Which layers a stage touches: name or class patterns (`conv*`, `Dense`), minus `skip`."""

    layers: list[LayerPattern] | None = None
    skip: list[LayerPattern] = []


DEFAULT_SPARSITY_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)


def _fraction_or_auto(value: object) -> object:
    """A fraction in (0, 1) or "auto", checked before the union is (one message, not one per member)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value != "auto" and not (number and 0.0 < float(value) < 1.0):  # type: ignore[arg-type]
        raise ValueError('must be > 0 and < 1, or "auto" (the largest of sparsity_grid that holds the budgets)')
    return value


class PruneStage(_FineTune, _Selection):
    """Magnitude pruning; the schedule is expressed in epochs or fractions of the stage, never in steps."""

    kind: Literal["prune"]
    # "auto": the largest value of sparsity_grid (ascending) whose fine-tuned model holds the recipe's metric budgets
    final_sparsity: Annotated[float | Literal["auto"], BeforeValidator(_fraction_or_auto)] = 0.5
    sparsity_grid: list[Annotated[float, Field(gt=0.0, lt=1.0)]] | None = Field(None, min_length=1, max_length=50)
    max_tries: int | None = Field(None, ge=1, le=50)  # "auto": at most this many fine-tunings (default: the grid's)
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0)
    schedule: Literal["polynomial", "constant"] = "polynomial"
    structure: Literal["unstructured", "2:4", "block"] = "unstructured"
    block_size: tuple[Annotated[int, Field(ge=1, le=64)], Annotated[int, Field(ge=1, le=64)]] = (1, 4)
    begin_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    end_fraction: float = Field(0.7, gt=0.0, le=1.0)
    begin_epoch: float | None = Field(None, ge=0.0)
    end_epoch: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> PruneStage:
        # Conflicts are judged against the defaults, not on which keys were written, so that a
        # resolved recipe (every default filled in, as in the manifest) validates again.
        defaults = {name: field.default for name, field in type(self).model_fields.items()}
        self._check_auto()
        if self.initial_sparsity >= min(self.grid):
            target = "the grid's lowest value" if self.final_sparsity == "auto" else "final_sparsity"
            raise ValueError(f"initial_sparsity ({self.initial_sparsity}) must be below {target} ({min(self.grid)})")
        for edge in ("begin", "end"):
            fraction = f"{edge}_fraction"
            if getattr(self, f"{edge}_epoch") is not None and getattr(self, fraction) != defaults[fraction]:
                raise ValueError(f"give {edge}_epoch or {edge}_fraction, not both")
        if self.end_epoch is not None and self.end_epoch > self.epochs:
            raise ValueError(f"end_epoch ({self.end_epoch}) is after the stage's last epoch (epochs = {self.epochs})")
        if self.begin >= self.end:
            raise ValueError(
                f"pruning must begin before it ends (begin at {self.begin:.2f}, end at "
                f"{self.end:.2f} of the stage; see begin_*/end_* and epochs)"
            )
        if self.structure == "2:4" and (self.final_sparsity, self.initial_sparsity) != (0.5, 0.0):
            raise ValueError(
                "structure = '2:4' fixes the sparsity at 50 % in every block of 4; "
                "remove final_sparsity / initial_sparsity"
            )
        if self.structure == "2:4" and self.begin > 0:
            raise ValueError(
                "structure = '2:4' sets its mask once, at the first step; remove begin_epoch / begin_fraction"
            )
        if self.block_size != defaults["block_size"] and self.structure != "block":
            raise ValueError(f"block_size is set but structure = '{self.structure}'; set structure = 'block'")
        return self

    def _check_auto(self) -> None:
        if self.final_sparsity != "auto":
            for name in ("sparsity_grid", "max_tries"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is for final_sparsity = 'auto' (it is {self.final_sparsity}); remove it")
            return
        grid = self.sparsity_grid or []
        if grid != sorted(set(grid)):
            raise ValueError(f"sparsity_grid {grid} must ascend, each value once (the search stops at the first miss)")

    @property
    def grid(self) -> list[float]:
        """The sparsities tried: `sparsity_grid` (default 0.5 to 0.9 by 0.1) for "auto", else the one given."""
        if self.final_sparsity != "auto":
            return [self.final_sparsity]
        return list(self.sparsity_grid or DEFAULT_SPARSITY_GRID)

    @property
    def begin(self) -> float:
        """Where pruning starts, as a fraction of the stage."""
        return self.begin_fraction if self.begin_epoch is None else self.begin_epoch / self.epochs

    @property
    def end(self) -> float:
        """Where the target sparsity is reached, as a fraction of the stage."""
        return self.end_fraction if self.end_epoch is None else self.end_epoch / self.epochs


class QatStage(_FineTune, _Selection):
    """Quantization-aware training of the whole model or of the selected layers.

    It preserves what earlier stages made: sparsity after `prune`, clusters after `cluster`.
    """

    kind: Literal["qat"]


class ClusterStage(_FineTune, _Selection):
    """Weight clustering: each selected kernel keeps at most `clusters` distinct values."""

    kind: Literal["cluster"]
    clusters: int = Field(16, ge=2, le=65_536)
    init: Literal["kmeans++", "linear", "density", "random"] = "kmeans++"


class DistillStage(_FineTune):
    """Knowledge distillation: the trained model (or `teacher_path`) teaches a smaller `student`.

    loss = alpha * hard-label loss + (1 - alpha) * T^2 * KL(teacher_T || student_T).
    """

    kind: Literal["distill"]
    student: ModelSpec
    teacher_path: str | None = Field(None, min_length=1)
    temperature: float = Field(4.0, gt=0.0, le=100.0)
    alpha: float = Field(0.1, ge=0.0, le=1.0)
    compare_scratch: bool = False
    epochs: int = Field(10, ge=1, le=10_000)
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0)


DEFAULT_ENERGY = 0.9
"""The fraction of the squared singular values a low-rank stage keeps when neither rank nor energy is given."""


class LowRankStage(_FineTune, _Selection):
    """Low-rank factorization of Dense and 1x1 Conv2D kernels (truncated SVD), then fine-tuning.

    `rank` gives every selected layer that rank (at most what its kernel allows); `energy` gives each
    layer the smallest rank that keeps that fraction of its squared singular values (0.9 when
    neither is given). A layer is factored only where the two thinner layers have fewer parameters.
    """

    kind: Literal["low-rank"]
    rank: int | None = Field(None, ge=1, le=65_536)
    energy: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _default_energy(cls, data: Any) -> Any:
        # Filled in here (not as the field's default) so that a resolved recipe says what was used
        # and `rank = 8` alone is not a conflict with a default energy.
        if isinstance(data, dict) and data.get("rank") is None and data.get("energy") is None:
            return {**data, "energy": DEFAULT_ENERGY}
        return data

    @model_validator(mode="after")
    def _rank_or_energy(self) -> LowRankStage:
        if self.rank is not None and self.energy is not None:
            raise ValueError(
                f"give rank or energy, not both (rank = {self.rank}: the same rank for every layer; "
                f"energy = {self.energy}: each layer's smallest rank keeping that fraction of its squared "
                "singular values)"
            )
        return self


OptimizeStage = Annotated[
    PruneStage | QatStage | ClusterStage | DistillStage | LowRankStage, Field(discriminator="kind")
]


class _Criterion(Strict):
    """How much worse than the float model a converted one may be, in the task's headline metric
    (accuracy, RMSE, AUC): `max_drop` absolute (accuracy 0.01 = 1 point; RMSE in the targets' units),
    `max_relative_drop` as a fraction of the float figure (0.02 = 2 %); or `min_sqnr_db`, the worst
    output's SQNR against the float model (the only criterion of a fidelity task)."""

    max_drop: float | None = Field(None, ge=0)
    max_relative_drop: float | None = Field(None, ge=0, le=10)
    min_sqnr_db: float | None = Field(None, ge=-100, le=300)

    @model_validator(mode="after")
    def _one_criterion(self) -> _Criterion:
        given = [v for v in (self.max_drop, self.max_relative_drop, self.min_sqnr_db) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one criterion: max_drop (absolute, 0.01 = 1 point), max_relative_drop "
                "(0.02 = 2 % of the float figure) or min_sqnr_db (the worst output's SQNR)"
            )
        return self

    def allowed_drop(self, float_value: float) -> float:
        """The largest worsening the criterion allows, in the metric's units (SQNR criteria: none)."""
        if self.max_drop is not None:
            return self.max_drop
        if self.max_relative_drop is not None:
            return abs(float_value) * float(self.max_relative_drop)
        return float("inf")

    def describe(self) -> dict[str, float | None]:
        """The criterion as written."""
        return {"max_drop": self.max_drop, "max_relative_drop": self.max_relative_drop, "min_sqnr_db": self.min_sqnr_db}


class FallbackSettings(_Criterion):
    """Keep the ops int8 hurts most in float until the criterion holds (post-training int8).

    The criterion compares the `.tflite` with the float model on the test split. Ops are tried
    worst first (by the quantization error report), in growing groups (1, 2, 4... up to
    `max_ops`), then the smallest group that holds is searched.
    """

    max_ops: int = Field(8, ge=1, le=1000)


SearchMode = Literal["float32", "float16", "dynamic", "int8", "int16x8", "int8-fallback"]


class SearchSettings(_Criterion):
    """Convert to several modes, measure each, keep the one the objective prefers among those that
    meet the criterion (the task's metric of the .tflite against the float model's, on the test split).

    `int8-fallback` is int8 with the fallback search under the same criterion. Latency is the
    runner's p50 on `device` (default: the first of validate.devices), which must be a real one.
    """

    modes: list[SearchMode] = Field(min_length=2)
    objective: Literal["smallest", "fastest"] = "smallest"
    max_ops: int = Field(8, ge=1, le=1000)  # for int8-fallback
    device: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SearchSettings:
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes {self.modes} name a mode twice")
        return self


class ConvertSettings(Strict):
    """TFLite conversion mode and calibration.

    `per_channel = false` gives each convolution kernel one scale instead of one per output
    channel (a QAT stage then trains that way too): a smaller file for small models, where the
    per-channel scales and zero points (12 B a channel, for the kernel and again for its bias)
    are a large share of it, usually at some accuracy cost.

    `dense_granularity` is the same choice for Dense (FULLY_CONNECTED) layers alone, convolutions
    staying per channel: `per-tensor` saves about 24 B per output channel of each Dense layer;
    `auto` converts both ways and keeps per-tensor only where it is smaller and the recipe's metric
    and fidelity budgets hold (`[budgets]`), else per-channel.
    """

    mode: Literal["int8", "float16", "dynamic", "int16x8", "float32"] = "int8"
    weights: Literal["int8", "int4"] = "int8"  # int4: FULLY_CONNECTED / CONV_2D kernels 4-bit (litert-quantizer)
    io: Literal["int8", "float32"] = "int8"
    calibration_samples: int = Field(256, ge=1, le=100_000)
    calibration_seed: int | None = Field(None, ge=0)
    per_channel: bool = True
    dense_granularity: Literal["per-channel", "per-tensor", "auto"] = "per-channel"
    error_report: bool = True  # int8 after training: per-layer float-vs-int8 error (TFLite's debugger)
    error_samples: int = Field(32, ge=1, le=10_000)  # calibration samples the error is measured on
    keep_float: list[str] = Field(default_factory=list)  # op types (SOFTMAX) or Keras layer patterns (fc, block_1*)
    fallback: FallbackSettings | None = None
    search: SearchSettings | None = None

    @model_validator(mode="after")
    def _per_channel_needs_quantized_weights(self) -> ConvertSettings:
        if not self.per_channel and self.mode in ("float16", "float32"):
            raise ValueError(
                f"per_channel = false applies to integer weights; mode '{self.mode}' keeps "
                "them in float: remove per_channel or choose mode 'int8' or 'dynamic'"
            )
        if (self.keep_float or self.fallback) and self.mode != "int8":
            raise ValueError(
                f"keep_float and fallback keep some ops in float inside an int8 model; mode is "
                f"'{self.mode}': choose mode 'int8' or remove them"
            )
        if self.dense_granularity != "per-channel" and self.mode in ("float16", "float32"):
            raise ValueError(
                f"dense_granularity = '{self.dense_granularity}' applies to integer weights; mode "
                f"'{self.mode}' keeps them in float: remove dense_granularity or choose mode 'int8', "
                "'int16x8' or 'dynamic'"
            )
        if self.dense_granularity != "per-channel" and not self.per_channel:
            raise ValueError(
                f"dense_granularity = '{self.dense_granularity}' with per_channel = false: every kernel, "
                "Dense layers included, is per tensor already; remove one of them"
            )
        _check_int4(self)
        if not self.per_channel and self.mode == "int16x8":
            # The converter fails with "Quantized dimension ... do not match" (TF 2.21).
            raise ValueError(
                "per_channel = false is not supported by the converter's int16x8 mode: "
                "remove per_channel or choose mode 'int8' or 'dynamic'"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _io_needs_int8(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("mode", "int8") == "int8":
            return data
        if data.get("io") == "int8":
            raise ValueError(
                f"io = 'int8' needs mode = 'int8' (mode is '{data.get('mode')}'); use io = 'float32' or mode = 'int8'"
            )
        return {**data, "io": "float32"}  # only int8 models have integer I/O

    @property
    def dense_per_tensor(self) -> bool:
        """True when Dense layers are converted per tensor (convolutions per channel)."""
        return self.dense_granularity == "per-tensor"

    @property
    def integer_io(self) -> bool:
        """True when the model's inputs and outputs are int8 tensors."""
        return self.mode == "int8" and self.io == "int8"


def _check_int4(settings: ConvertSettings) -> None:
    """weights = 'int4': int8 mode, int8 I/O, per-channel kernels, no selective int8 or search (this slice)."""
    if settings.weights != "int4":
        return
    if settings.mode != "int8":
        raise ValueError(
            f"weights = 'int4' needs mode = 'int8' (mode is '{settings.mode}'): int4 kernels go with int8 "
            "activations; choose mode 'int8' or remove weights"
        )
    if settings.io != "int8":
        raise ValueError(
            "weights = 'int4' with io = 'float32': litert-quantizer's full-integer model has int8 inputs "
            "and outputs; use io = 'int8' or weights = 'int8'"
        )
    if not settings.per_channel or settings.dense_granularity != "per-channel":
        raise ValueError(
            "weights = 'int4' quantizes kernels per channel; remove per_channel = false / dense_granularity"
        )
    if settings.keep_float or settings.fallback:
        raise ValueError(
            "weights = 'int4' with keep_float or fallback: keeping ops in float is done by TFLite's int8 "
            "converter, not the int4 quantizer; remove them or weights = 'int4'"
        )
    if settings.search:
        raise ValueError("weights = 'int4' with convert.search: the search does not try int4 yet; remove one of them")


class ValidateSettings(Strict):
    """Where and how the converted model is measured."""

    devices: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]] = Field(
        default_factory=lambda: ["host"], min_length=1
    )
    warmup: int = Field(20, ge=0, le=100_000)
    runs: int = Field(200, ge=1, le=1_000_000)
    threads: int = Field(1, ge=1, le=256)


def _checked_size(value: int | str) -> int | str:
    parse_size(value)
    return value


Size = Annotated[int | str, AfterValidator(_checked_size)]
"""A size as written in a file: bytes, or "80 KB" / "64 KiB"; read it with `parse_size`."""


class Budgets(Strict):
    """Limits that fail the gate (exit 3) when exceeded. Accuracies are fractions in [0, 1]."""

    max_size: Size | None = None
    latency_p90_ms: float | dict[str, float] | None = None
    max_accuracy_drop: float | None = Field(None, ge=0.0, le=1.0)
    min_accuracy: float | None = Field(None, ge=0.0, le=1.0)
    max_rmse: float | None = Field(None, gt=0.0)  # regression: the .tflite's RMSE, in the targets' units
    max_rmse_increase: float | None = Field(None, ge=0.0, le=10.0)  # its RMSE over the float's, less 1 (0.05 = 5 %)
    min_auc: float | None = Field(None, ge=0.0, le=1.0)  # anomaly: the .tflite's ROC AUC
    max_auc_drop: float | None = Field(None, ge=0.0, le=1.0)  # float AUC minus .tflite AUC
    min_sqnr_db: float | None = Field(None, ge=-100.0, le=300.0)  # every task: the worst output's SQNR vs float
    # boards (device profiles of kind "mcu") the model must fit: flash (model + the board's runtime allowance)
    # and RAM (TFLM's measured arena + input/output buffers + the board's RAM allowance)
    fits: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]] = Field(default_factory=list)
    # against a previous bundle (its directory or manifest.json, relative to the recipe file): `gate --baseline`
    # gives one for an existing bundle. Increases are relative (0.05 = 5 %), the loss absolute in the task's metric.
    baseline: str | None = Field(None, min_length=1)
    max_size_increase: float | None = Field(None, ge=0.0, le=10.0)  # shipped size over the baseline's, less 1
    max_latency_increase: float | None = Field(
        None, ge=0.0, le=100.0
    )  # p90 over the baseline's, per device both measured
    max_accuracy_loss: float | None = Field(None, ge=0.0)  # the baseline's .tflite headline metric minus this one's

    @field_validator("fits")
    @classmethod
    def _boards_once(cls, value: list[str]) -> list[str]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"board(s) {twice} named more than once")
        return value

    @field_validator("latency_p90_ms")
    @classmethod
    def _latency_positive(cls, value: float | dict[str, float] | None) -> object:
        values = value.values() if isinstance(value, dict) else [value]
        if any(v is not None and v <= 0 for v in values):
            raise ValueError("latency budgets must be > 0 ms")
        return value

    @property
    def baseline_limits(self) -> dict[str, float]:
        """The budgets against the baseline that are set, by name."""
        names = ("max_size_increase", "max_latency_increase", "max_accuracy_loss")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    @property
    def max_size_bytes(self) -> int | None:
        """The size budget in bytes."""
        return None if self.max_size is None else parse_size(self.max_size)


def _check_stage_order(kinds: Sequence[str]) -> None:
    """Stages stack in one order: distill first, then low-rank, then prune, then cluster, QAT last."""
    if kinds.count("qat") > 1 or ("qat" in kinds and kinds[-1] != "qat"):
        raise ValueError(f"optimize: 'qat' must be the last stage and appear once (got {kinds})")
    if kinds.count("distill") > 1 or ("distill" in kinds and kinds[0] != "distill"):
        raise ValueError(
            f"optimize: 'distill' must be the first stage and appear once (got {kinds}); "
            "it replaces the model, so stages before it would be lost"
        )
    if "low-rank" in kinds:
        _check_low_rank_order(kinds)
    if "cluster" in kinds and "prune" in kinds[kinds.index("cluster") :]:
        raise ValueError(
            f"optimize: 'prune' after 'cluster' undoes the clusters (got {kinds}); "
            "prune first: clustering after pruning keeps the zeros"
        )


def _check_low_rank_order(kinds: Sequence[str]) -> None:
    """low-rank once, after distill and before prune, cluster and QAT (it replaces the kernels they work on)."""
    if kinds.count("low-rank") > 1:
        raise ValueError(f"optimize: 'low-rank' must appear once (got {kinds}); a second one would factor the factors")
    before = [kind for kind in kinds[: kinds.index("low-rank")] if kind in ("prune", "cluster", "qat")]
    if before:
        raise ValueError(
            f"optimize: 'low-rank' after {' and '.join(repr(k) for k in before)} (got {kinds}): it replaces the "
            "kernels with new ones, so their zeros, clusters or quantizers would be lost; put low-rank first "
            "(after distill): distill, low-rank, prune, cluster, qat"
        )


QUALITY_BUDGETS = (
    "max_accuracy_drop",
    "min_accuracy",
    "max_rmse",
    "max_rmse_increase",
    "min_auc",
    "max_auc_drop",
    "min_sqnr_db",
)
"""The budgets on the task's metric and fidelity: what `dense_granularity = "auto"` must hold."""


def _check_auto_granularity(recipe: Recipe, kinds: Sequence[str]) -> None:
    """`auto` needs a budget to judge by, and a model whose Dense granularity the converter chooses."""
    if "qat" in kinds:
        raise ValueError(
            "convert.dense_granularity = 'auto' with a QAT stage: TFMOT's QAT trains Dense layers per tensor "
            "and the converter keeps what it learned; remove dense_granularity or the QAT stage"
        )
    if recipe.convert.search is None and not any(getattr(recipe.budgets, n) is not None for n in QUALITY_BUDGETS):
        allowed = tasks_quality_budgets(recipe.task.kind)
        raise ValueError(
            "convert.dense_granularity = 'auto' keeps Dense layers per tensor only where the recipe's metric "
            f"and fidelity budgets hold, and [budgets] sets none: set one of {', '.join(allowed)} "
            "(or choose 'per-channel' or 'per-tensor')"
        )


INT4_REFUSED = "per-channel int4 FULLY_CONNECTED kernels do not run in TFLite Micro, nor compile with Vela"


def _check_int4_runtime(recipe: Recipe) -> None:
    """weights = 'int4' runs on LiteRT only: no MCU board, TFLM device, c-array or ethos-u format."""
    if recipe.convert.weights != "int4":
        return
    uses = [f'bundle.formats "{f}"' for f in recipe.bundle.formats if f in ("c-array", "ethos-u")]
    uses += [f"budgets.fits {recipe.budgets.fits}"] if recipe.budgets.fits else []
    uses += [f"validate.devices '{d}'" for d in recipe.validation.devices if d == "tflm" or d.startswith("ethos-u")]
    if uses:
        raise ValueError(
            f"convert.weights = 'int4' with {', '.join(uses)}: {INT4_REFUSED}; use weights = 'int8' "
            "for microcontrollers, or drop them"
        )


def _check_auto_sparsity(recipe: Recipe) -> None:
    """`final_sparsity = "auto"`: one such stage, judged by a budget on the task's metric."""
    autos = [i for i, stage in enumerate(recipe.optimize) if getattr(stage, "final_sparsity", None) == "auto"]
    if len(autos) > 1:
        raise ValueError(f"optimize{autos}: final_sparsity = 'auto' in more than one stage; search one of them")
    metric_budgets = [name for name in tasks_quality_budgets(recipe.task.kind) if name != "min_sqnr_db"]
    if autos and not any(getattr(recipe.budgets, name) is not None for name in metric_budgets):
        raise ValueError(
            f"optimize[{autos[0]}].final_sparsity = 'auto' keeps the largest sparsity whose fine-tuned model holds "
            f"the recipe's budgets on the task's metric, and [budgets] sets none: set one of {', '.join(metric_budgets)}"
        )


def tasks_quality_budgets(kind: str) -> list[str]:
    """The metric and fidelity budgets a task takes, in `QUALITY_BUDGETS` order."""
    from edgepack import tasks

    allowed = tasks.get(kind).budgets | {"min_sqnr_db"}
    return [name for name in QUALITY_BUDGETS if name in allowed]


def _check_task(recipe: Recipe) -> None:
    """The task fits the data, the model, the budgets, the stages and the criteria."""
    from edgepack import tasks  # numpy only; the task names its own budgets

    kind = recipe.task.kind
    allowed = tasks.get(kind).budgets
    wrong = sorted(name for name in tasks.ALL_TASK_BUDGETS - allowed if getattr(recipe.budgets, name) is not None)
    if wrong:
        raise ValueError(
            f"budgets.{wrong[0]} does not apply to task.kind = '{kind}'; its budgets are "
            f"{', '.join([*sorted(allowed), 'min_sqnr_db', 'max_size', 'latency_p90_ms', 'fits'])}"
        )
    if kind != "classification" and any(stage.kind == "distill" for stage in recipe.optimize):
        raise ValueError(f"optimize: 'distill' teaches class scores; task.kind = '{kind}' has none: remove the stage")
    if kind == "fidelity" and recipe.model.kind == "builder":
        raise ValueError(
            "task.kind = 'fidelity' has no targets to train a built model on: give a trained model "
            "(model.kind = 'saved') or another task"
        )
    if kind == "fidelity" and recipe.optimize:
        raise ValueError("task.kind = 'fidelity' has no targets to fine-tune on: remove the [[optimize]] stages")
    dataset = recipe.dataset
    key = getattr(dataset, "anomaly_key", None)
    if kind == "anomaly":
        classes = recipe.task.normal_classes  # type: ignore[union-attr]
        if (key is None) == (classes is None):
            raise ValueError(
                "task.kind = 'anomaly' takes its labels from dataset.anomaly_key (npz: 0 normal, "
                "1 anomalous) or task.normal_classes (classes that are normal): give exactly one"
            )
    elif key is not None:
        raise ValueError(
            f"dataset.anomaly_key is set but task.kind = '{kind}': set [task] kind = 'anomaly' or remove it"
        )
    if kind not in ("classification", "regression") and isinstance(dataset.__dict__.get("y_key"), list):
        raise ValueError(f"dataset.y_key is a list: several target arrays are for regression, not '{kind}'")
    for name in ("fallback", "search"):
        criterion = getattr(recipe.convert, name)
        if criterion is None:
            continue
        if kind == "fidelity" and criterion.min_sqnr_db is None:
            raise ValueError(
                f"convert.{name}: a fidelity task is judged by SQNR alone; give min_sqnr_db "
                "instead of max_drop / max_relative_drop"
            )
        if kind in ("classification", "anomaly") and (criterion.max_drop or 0) > 1:
            raise ValueError(
                f"convert.{name}.max_drop = {criterion.max_drop}: an accuracy or AUC drop is a "
                "fraction (0.01 = 1 point)"
            )


def parse_size(value: int | str) -> int:
    """Parse `12345`, `"80 KB"` (1000 B) or `"64 KiB"` (1024 B) into bytes."""
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a size must be > 0 bytes")
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a size; use bytes (an integer) or e.g. '80 KB', '64 KiB', '2 MB'")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError("a size must be > 0 bytes")
    return size


class BundleSettings(Strict):
    """Where the bundle goes and in which forms."""

    out: str | None = None
    zip: bool = False  # also write BUNDLE.zip (the same as listing "zip" in formats)
    # android: android/assets/ (model with metadata, labels) and a usage note; c-array:
    # c/model_data.{h,cc} for TFLite Micro; ethos-u: ethos-u/model_vela.tflite (compiled by Vela for an
    # Ethos-U NPU) with Vela's summary; zip: BUNDLE.zip, deterministic
    formats: list[Literal["android", "c-array", "ethos-u", "zip"]] = Field(default_factory=list)
    arena_margin: Size = "1 KiB"  # c-array: added to the arena TFLM measured (kModelDataArenaSize)
    # ethos-u: the ethos-u device profile to compile for (default: the first ethos-u device of
    # validate.devices, else ethos-u55-128)
    ethos_u: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    metadata: bool = True  # embed TFLite metadata (descriptions, normalization, labels) in model.tflite
    author: str = Field("", max_length=200)  # written into the embedded metadata
    license: str = Field("", max_length=200)
    input_description: str | None = Field(None, max_length=1000)  # replaces the description edgepack writes
    output_description: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _ethos_u_format(self) -> BundleSettings:
        if self.ethos_u is not None and "ethos-u" not in self.formats:
            raise ValueError(
                f"ethos_u = '{self.ethos_u}' names the profile of the ethos-u format, but formats "
                f'{self.formats} lacks "ethos-u"; add it, or leave ethos_u out'
            )
        return self


class Recipe(Strict):
    """One model's whole path: data, model, training, optimization, conversion, checks."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    description: str = ""
    version: str = Field("0.1.0", pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    strategy: Literal["default", "mirrored"] = "default"
    task: TaskSpec = ClassificationTask(kind="classification")
    dataset: DatasetSpec
    model: ModelSpec
    train: TrainSettings = TrainSettings()
    optimize: list[OptimizeStage] = []
    convert: ConvertSettings = ConvertSettings()
    validation: ValidateSettings = Field(ValidateSettings(), alias="validate")
    budgets: Budgets = Budgets()
    bundle: BundleSettings = BundleSettings()

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), populate_by_name=True)

    @model_validator(mode="after")
    def _cross_checks(self) -> Recipe:
        if isinstance(self.model, SavedModel) and "train" in self.model_fields_set:
            raise ValueError(
                "[train] is set but model.kind = 'saved': a saved model is not trained from "
                "scratch; remove [train] or fine-tune it in an [[optimize]] stage"
            )
        kinds = [stage.kind for stage in self.optimize]
        _check_stage_order(kinds)
        _check_task(self)
        kept = sorted({kind for kind in kinds if kind in ("prune", "cluster")})
        if not self.convert.per_channel and "qat" in kinds and kept:
            raise ValueError(
                f"convert.per_channel = false with QAT after {' and '.join(kept)}: TFMOT's "
                "sparsity- and cluster-preserving QAT schemes quantize per channel only; remove "
                "per_channel or the earlier stage"
            )
        if self.convert.search and self.convert.fallback:
            raise ValueError(
                "convert.search and convert.fallback together: the search has its own criterion and "
                "its 'int8-fallback' mode; put the criterion in convert.search and remove convert.fallback"
            )
        if self.convert.dense_granularity == "auto":
            _check_auto_granularity(self, kinds)
        _check_auto_sparsity(self)
        if self.convert.search and "qat" in kinds:
            raise ValueError(
                "convert.search with a QAT stage: the search compares post-training modes of one "
                "float model; remove the QAT stage or the search"
            )
        search_device = self.convert.search.device if self.convert.search else None
        if search_device and search_device not in self.validation.devices:
            raise ValueError(
                f"convert.search.device '{search_device}' is not in validate.devices {self.validation.devices}"
            )
        if (self.convert.fallback or self.convert.keep_float) and "qat" in kinds:
            raise ValueError(
                "convert.fallback / keep_float with a QAT stage: a QAT model's quantization is learned, "
                "and keeping ops in float works on post-training quantization; remove the QAT stage or them"
            )
        if (
            "ethos-u" in self.bundle.formats
            and self.convert.search is None
            and self.convert.mode not in ("int8", "int16x8")
        ):
            raise ValueError(
                f"bundle.formats has \"ethos-u\" but convert.mode = '{self.convert.mode}': an Ethos-U "
                "NPU runs integer models; convert to int8 (or int16x8), or drop the format"
            )
        _check_int4_runtime(self)
        budget = self.budgets.latency_p90_ms
        if isinstance(budget, dict):
            unknown = sorted(set(budget) - set(self.validation.devices))
            if unknown:
                raise ValueError(
                    f"budgets.latency_p90_ms names device(s) {unknown} that are not in "
                    f"validate.devices {self.validation.devices}"
                )
        return self

    def resolved(self) -> dict[str, object]:
        """The recipe with every default filled in, as TOML/JSON-ready data."""
        return self.model_dump(mode="json", by_alias=True)

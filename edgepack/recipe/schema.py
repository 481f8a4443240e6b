"""The recipe schema: strict pydantic models (unknown keys refused, values range-checked).

Tagged sections (`dataset`, `model`, each `[[optimize]]` entry) are discriminated unions on
`kind`, so an error names the branch that was meant. Cross-field rules live in model
validators whose messages name every field involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edgepack.recipe.base import Optimizer, Size, Strict, parse_size
from edgepack.recipe.convert import ConvertSettings
from edgepack.recipe.model import ModelSpec, SavedModel
from edgepack.recipe.optimize import OptimizeStage, auto_stages, check_stage_order


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
    # integer arrays that are no images: "ids" (token ids, codes) are fed as int32, never normalized, for a
    # model that takes integers; "readings" (int16 sensor samples, counts) are values, normalized to float32;
    # "auto": ids when the normalization is the identity, readings when one is given
    integers: Literal["auto", "ids", "readings"] = "auto"

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


class TrainSettings(Strict):
    """How a built model is trained from scratch."""

    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=65_536)
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0)
    optimizer: Optimizer = "adam"


class ValidateSettings(Strict):
    """Where and how the converted model is measured."""

    devices: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]] = Field(
        default_factory=lambda: ["host"], min_length=1
    )
    warmup: int = Field(20, ge=0, le=100_000)
    runs: int = Field(200, ge=1, le=1_000_000)
    # interpreter threads; a list (and a batch list, or a batch over 1) times the throughput grid of every
    # threads x batch cell on each device that runs LiteRT, the first thread count being the latency run's
    # (a device profile's own `threads` sets its latency run's instead; its grid is still these cells)
    threads: Annotated[int, Field(ge=1, le=256)] | list[Annotated[int, Field(ge=1, le=256)]] = 1
    batch: Annotated[int, Field(ge=1, le=4096)] | list[Annotated[int, Field(ge=1, le=4096)]] = 1

    @field_validator("threads", "batch")
    @classmethod
    def _grid_values(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one value, or a single number")
            twice = sorted({v for v in value if value.count(v) > 1})
            if twice:
                raise ValueError(f"{twice} given more than once")
        return value

    @property
    def latency_threads(self) -> int:
        """The threads of the latency run (the first of a list)."""
        return self.threads if isinstance(self.threads, int) else self.threads[0]

    @property
    def grid(self) -> tuple[tuple[int, int], ...]:
        """The throughput grid's cells (threads, batch), threads varying fastest; () when none was asked for."""
        threads = [self.threads] if isinstance(self.threads, int) else self.threads
        batches = [self.batch] if isinstance(self.batch, int) else self.batch
        if isinstance(self.threads, int) and isinstance(self.batch, int) and self.batch == 1:
            return ()
        return tuple((t, b) for b in batches for t in threads)


class Budgets(Strict):
    """Limits that fail the gate (exit 3) when exceeded. Accuracies are fractions in [0, 1]."""

    max_size: Size | None = None
    latency_p90_ms: float | dict[str, float] | None = None
    # the best cell of the throughput grid, in inferences per second (per device, or one figure for every
    # real device that times it); without a grid, the latency run (batch 1) is the one cell
    min_throughput_ips: float | dict[str, float] | None = None
    # the shipped model on TFLite's GPU delegate (offline, analyze/gpu_ops.py): every op taken, and the share of
    # MACs in the ops it takes
    gpu_compatible: Literal[True] | None = None
    min_gpu_macs_share: float | None = Field(None, ge=0.0, le=1.0)
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

    @field_validator("latency_p90_ms", "min_throughput_ips")
    @classmethod
    def _per_device_positive(cls, value: float | dict[str, float] | None, info: ValidationInfo) -> object:
        values = value.values() if isinstance(value, dict) else [value]
        if any(v is not None and v <= 0 for v in values):
            what = "latency budgets must be > 0 ms" if info.field_name == "latency_p90_ms" else "must be > 0"
            raise ValueError(what)
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
    """int4 kernels run on LiteRT only: no MCU board, TFLM device, c-array or ethos-u format, with
    weights = 'int4' or with a search that may pick 'int4'."""
    if not recipe.convert.int4_possible:
        return
    uses = [f'bundle.formats "{f}"' for f in recipe.bundle.formats if f in ("c-array", "ethos-u")]
    uses += [f"budgets.fits {recipe.budgets.fits}"] if recipe.budgets.fits else []
    uses += [f"validate.devices '{d}'" for d in recipe.validation.devices if d == "tflm" or d.startswith("ethos-u")]
    if uses:
        given = "convert.weights = 'int4'" if recipe.convert.weights == "int4" else "'int4' in convert.search.modes"
        fix = "use weights = 'int8'" if recipe.convert.weights == "int4" else "take 'int4' out of the search's modes"
        raise ValueError(f"{given} with {', '.join(uses)}: {INT4_REFUSED}; {fix} for microcontrollers, or drop them")


LUT_LITERT = "LiteRT refuses TFLM's TFLM_DECODE custom op"
LUT_VELA = (
    "Vela leaves TFLM_DECODE on the CPU and sees the decoded weights as no constants to place on the NPU "
    "(it compresses weights its own way)"
)
# The shipped profiles (devices/*.toml) that are not TFLM, by exact name: a user's profile may take any other
# name (`host-tflm` of kind tflm); the pipeline refuses every profile of another kind before training.
_LUT_REFUSED = {
    **dict.fromkeys(("host", "host-1core", "rpi4", "rpi4-emulated", "android"), LUT_LITERT),
    **dict.fromkeys(("ethos-u55-128", "ethos-u85-256"), LUT_VELA),
}


def lut_runtime(device: str) -> str | None:
    """Why the shipped device profile `device` cannot run a LUT-compressed model, or None (any other name: its
    kind is checked when the pipeline loads it)."""
    return _LUT_REFUSED.get(device)


def _check_lut_runtime(recipe: Recipe) -> None:
    """compression = 'lut' runs in TFLite Micro only: no LiteRT or Vela device, no android or ethos-u format,
    and no metadata asked for (TFLM ignores it: flash spent for nothing)."""
    if recipe.convert.compression != "lut":
        return
    uses = [(f"validate.devices '{d}'", lut_runtime(d)) for d in recipe.validation.devices if lut_runtime(d)]
    uses += [('bundle.formats "android"', LUT_LITERT)] if "android" in recipe.bundle.formats else []
    uses += [('bundle.formats "ethos-u"', LUT_VELA)] if "ethos-u" in recipe.bundle.formats else []
    if uses:
        raise ValueError(
            f"convert.compression = 'lut' with {', '.join(f'{use} ({why})' for use, why in uses)}: only TensorFlow "
            'Lite Micro runs the compressed model; validate on "tflm", bundle the c-array, fit boards with '
            "budgets.fits, or remove compression"
        )
    if recipe.bundle.metadata and "metadata" in recipe.bundle.model_fields_set:
        raise ValueError(
            "convert.compression = 'lut' with bundle.metadata = true: TFLite Micro ignores metadata, so in a "
            "microcontroller's flash it is waste, and the compressed model ships without it; remove bundle.metadata"
        )


def _check_auto_values(recipe: Recipe) -> None:
    """`final_sparsity = "auto"` or `rank = "auto"`: one such value, judged by a budget on the task's metric."""
    autos = auto_stages(recipe.optimize)
    where = [f"optimize[{i}].{knob.field}" for i, knob in autos]
    if len(autos) > 1:
        raise ValueError(f"{' and '.join(where)} are both 'auto': the search tries one value at a time; fix the others")
    metric_budgets = [name for name in tasks_quality_budgets(recipe.task.kind) if name != "min_sqnr_db"]
    if autos and not any(getattr(recipe.budgets, name) is not None for name in metric_budgets):
        knob = autos[0][1]
        raise ValueError(
            f"{where[0]} = 'auto' keeps the {knob.keeps} {knob.word} whose fine-tuned model holds "
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
            f"{', '.join([*sorted(allowed), 'min_sqnr_db', 'max_size', 'latency_p90_ms', 'min_throughput_ips', 'gpu_compatible', 'min_gpu_macs_share', 'fits'])}"
        )
    problem = tasks.get(kind).recipe_problem(recipe)
    if problem:
        raise ValueError(problem)


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
        check_stage_order(kinds)
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
        _check_auto_values(self)
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
        _check_lut_runtime(self)
        for name in ("latency_p90_ms", "min_throughput_ips"):
            budget = getattr(self.budgets, name)
            unknown = sorted(set(budget) - set(self.validation.devices)) if isinstance(budget, dict) else []
            if unknown:
                raise ValueError(
                    f"budgets.{name} names device(s) {unknown} that are not in validate.devices {self.validation.devices}"
                )
        return self

    @property
    def times_throughput(self) -> bool:
        """Whether each LiteRT device times a throughput grid: `[validate]` asks for one, or a throughput budget
        needs a figure (then the latency run, at the device's threads and batch 1, is the one cell)."""
        return bool(self.validation.grid) or self.budgets.min_throughput_ips is not None

    def resolved(self) -> dict[str, object]:
        """The recipe with every default filled in, as TOML/JSON-ready data."""
        return self.model_dump(mode="json", by_alias=True)

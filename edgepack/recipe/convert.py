"""The `[convert]` section of a recipe: the TFLite mode, calibration, granularity, int4 weights, compression, and the
criteria of the fallback and mode searches."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgepack.recipe.base import Strict


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


SearchMode = Literal["float32", "float16", "dynamic", "int8", "int16x8", "int8-fallback", "int4"]

OBJECTIVE_WORDS = {"smallest": "size", "fastest": "latency"}
"""`objective`, as 0.3 recipes wrote it, in the words of `minimize`."""


def storage_form(value: str) -> str:
    """A study storage as given: "journal:PATH" or a database URL (a ValueError saying what to give)."""
    if value == "journal:":
        raise ValueError('"journal:" needs a path: "journal:search.journal"')
    if not value.startswith("journal:") and "://" not in value:
        raise ValueError(f'{value!r}: give "journal:PATH" (a file) or a database URL such as sqlite:///search.db')
    return value


class SearchSettings(_Criterion):
    """Convert to several modes, measure each, keep the one that minimizes `minimize` among those that
    meet the criterion (the task's metric of the .tflite against its Keras model's, on the test split).

    `int8-fallback` is int8 with the fallback search under the same criterion; `int4` is int8 with
    4-bit FULLY_CONNECTED / CONV_2D kernels (litert-quantizer). `minimize`: the file's `size`, the
    runner's p50 `latency` on `device` (default: the first of validate.devices, a real one), or the
    `arena` (the activation peak, from the file). With `dense_granularity = "auto"` each integer mode
    is tried both ways; with an "auto" optimize value, each of its tries that held the budgets is.
    """

    modes: list[SearchMode] = Field(min_length=2)
    minimize: Literal["size", "latency", "arena"] = "size"
    max_ops: int = Field(8, ge=1, le=1000)  # for int8-fallback
    device: str | None = Field(None, min_length=1)
    # an Optuna study's storage the candidates are the trials of, shared by every worker (`edgepack search
    # --workers N`, and the same command on machines that reach it): "journal:PATH" (relative: to the
    # recipe's folder) or a database URL (sqlite:///search.db, postgresql://...); None: one process, no study
    storage: str | None = Field(None, min_length=1)

    @field_validator("storage")
    @classmethod
    def _storage_form(cls, value: str | None) -> str | None:
        return None if value is None else storage_form(value)

    @model_validator(mode="before")
    @classmethod
    def _objective_is_minimize(cls, data: Any) -> Any:
        # `objective = "smallest" | "fastest"` (0.3 recipes) reads as minimize = "size" | "latency".
        if not isinstance(data, dict) or "objective" not in data:
            return data
        data = dict(data)
        objective = data.pop("objective")
        if "minimize" in data:
            raise ValueError("give minimize or objective, not both (objective is the older name: use minimize)")
        if objective not in OBJECTIVE_WORDS:
            raise ValueError(f"objective = {objective!r}: use minimize = 'size', 'latency' or 'arena'")
        return {**data, "minimize": OBJECTIVE_WORDS[objective]}

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

    `compression = "lut"` ships the int8 model with TensorFlow Lite Micro's look-up-table compression
    (`edgepack.convert.lut`): lossless, so the task's metric is the uncompressed model's, but only TFLM
    runs it.
    """

    mode: Literal["int8", "float16", "dynamic", "int16x8", "float32"] = "int8"
    weights: Literal["int8", "int4"] = "int8"  # int4: FULLY_CONNECTED / CONV_2D kernels 4-bit (litert-quantizer)
    # lut: TFLite Micro's look-up-table compression of the shipped model (clustered kernels as 4-bit indices);
    # only TFLM runs the result (validate on tflm, c-array, budgets.fits)
    compression: Literal["none", "lut"] = "none"
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
        _check_lut(self)
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
    def int4_possible(self) -> bool:
        """True when the model may ship with int4 kernels: `weights = "int4"`, or a search that tries them."""
        return self.weights == "int4" or (self.search is not None and "int4" in self.search.modes)

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
        raise ValueError(
            "weights = 'int4' with convert.search: the search sets each candidate's weights; "
            "remove weights and put 'int4' in convert.search.modes"
        )


def _check_lut(settings: ConvertSettings) -> None:
    """compression = 'lut': an int8 model with int8 weights (TFLM's tables hold int8 values), no search."""
    if settings.compression != "lut":
        return
    if settings.mode != "int8":
        raise ValueError(
            f"compression = 'lut' needs mode = 'int8' (mode is '{settings.mode}'): TFLite Micro's look-up "
            "tables hold int8 weights; choose mode 'int8' or remove compression"
        )
    if settings.weights != "int8":
        raise ValueError(
            f"compression = 'lut' with weights = '{settings.weights}': the look-up tables are for int8 kernels, "
            "and int4 ones run in LiteRT only; remove one of them"
        )
    if settings.search:
        raise ValueError(
            "compression = 'lut' with convert.search: the search tries modes the tables cannot take "
            "(float, int16x8); remove one of them"
        )

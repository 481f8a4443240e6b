"""The `[[optimize]]` stages of a recipe (prune, QAT, cluster, distill, low-rank) and the order they stack in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from edgepack.recipe.base import Optimizer, Strict
from edgepack.recipe.model import ModelSpec


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


def _rank_or_auto(value: object) -> object:
    """A rank from 1 to 65,536 or "auto", checked before the union is (one message, not one per member)."""
    number = isinstance(value, int) and not isinstance(value, bool)
    if value is not None and value != "auto" and not (number and 1 <= value <= 65_536):  # type: ignore[operator]
        raise ValueError(
            'must be an integer from 1 to 65536, or "auto" (the smallest of rank_grid that holds the budgets)'
        )
    return value


DEFAULT_RANK_GRID = (64, 32, 16, 8, 4)

DEFAULT_ENERGY = 0.9
"""The fraction of the squared singular values a low-rank stage keeps when neither rank nor energy is given."""


class LowRankStage(_FineTune, _Selection):
    """Low-rank factorization of Dense and 1x1 Conv2D kernels (truncated SVD), then fine-tuning.

    `rank` gives every selected layer that rank (at most what its kernel allows); `energy` gives each
    layer the smallest rank that keeps that fraction of its squared singular values (0.9 when
    neither is given). A layer is factored only where the two thinner layers have fewer parameters.
    `rank = "auto"`: the smallest rank of `rank_grid` (tried from the largest down) whose fine-tuned
    model holds the recipe's budgets on the task's metric.
    """

    kind: Literal["low-rank"]
    rank: Annotated[int | Literal["auto"], BeforeValidator(_rank_or_auto)] | None = None
    rank_grid: list[Annotated[int, Field(ge=1, le=65_536)]] | None = Field(None, min_length=1, max_length=50)
    max_tries: int | None = Field(None, ge=1, le=50)  # "auto": at most this many fine-tunings (default: the grid's)
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
        if self.rank != "auto":
            for name in ("rank_grid", "max_tries"):
                if getattr(self, name) is not None:
                    given = "not set" if self.rank is None else f"rank = {self.rank}"
                    raise ValueError(f"{name} is for rank = 'auto' ({given}); remove it or set rank = 'auto'")
            return self
        grid = self.rank_grid or []
        if grid != sorted(set(grid), reverse=True):
            raise ValueError(
                f"rank_grid {grid} must descend, each value once (the search tries the largest rank first "
                "and stops at the first that breaks a budget)"
            )
        return self

    @property
    def grid(self) -> list[int]:
        """The ranks tried: `rank_grid` (default 64 down to 4, halving) for "auto", else the one given."""
        if self.rank == "auto":
            return list(self.rank_grid or DEFAULT_RANK_GRID)
        return [] if self.rank is None else [self.rank]


OptimizeStage = Annotated[
    PruneStage | QatStage | ClusterStage | DistillStage | LowRankStage, Field(discriminator="kind")
]


def check_stage_order(kinds: Sequence[str]) -> None:
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


@dataclass(frozen=True)
class Knob:
    """One value a stage may leave to the search: its field, its grid's field, the word for it and
    which end of the grid is the smaller model (the search walks towards it)."""

    kind: str
    field: str
    grid_field: str
    word: str
    keeps: str  # "largest" or "smallest": the value the search keeps among those that hold

    def stage_name(self, value: float) -> str:
        """One try's stage directory: `optimize-sparsity-0.7`, `optimize-rank-8`."""
        return f"optimize-{self.word}-{value:g}"

    @property
    def report_key(self) -> str:
        """Where the search goes in the manifest's `optimization` and in `--json`: `sparsity_search`."""
        return f"{self.word}_search"


KNOBS = {
    "prune": Knob("prune", "final_sparsity", "sparsity_grid", "sparsity", "largest"),
    "low-rank": Knob("low-rank", "rank", "rank_grid", "rank", "smallest"),
}


def auto_stages(stages: Sequence[OptimizeStage]) -> list[tuple[int, Knob]]:
    """Every `[[optimize]]` stage with a value left to the search, and which value."""
    return [
        (i, KNOBS[stage.kind])
        for i, stage in enumerate(stages)
        if stage.kind in KNOBS and getattr(stage, KNOBS[stage.kind].field) == "auto"
    ]

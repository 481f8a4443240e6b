"""What every stage of one run reads, fixed before the first stage runs (`RunInputs`).

The runner (`pipeline/run.py`) makes it once and hands it to each stage function with the records of the
stages before it; nothing in it changes while the run goes on, and no stage's result is reached through
it. The stage cache and the progress reporter are the runner's services: a stage asks the cache for its
id and directory, and reports progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.datasets import Dataset
    from edgepack.models.origins import ModelSource
    from edgepack.pipeline.cache import StageCache
    from edgepack.pipeline.plan import Plan
    from edgepack.pipeline.timing import StageClock
    from edgepack.progress import Reporter
    from edgepack.recipe import LoadedRecipe
    from edgepack.recipe.schema import Recipe
    from edgepack.tasks import Task


@dataclass(frozen=True)
class RunInputs:
    """The recipe (and where it lies), the plan, the task, the model source, the data with its calibration
    sample and fingerprints, the run's directory, the stage cache and progress."""

    loaded: LoadedRecipe
    plan: Plan
    root: Path  # WORKDIR/RECIPE: the stages' directories
    task: Task
    source: ModelSource
    data: Dataset
    calibration_indices: Any  # which train samples are the representative sample
    calibration: Any  # ... those samples, one array per input
    fingerprints: dict[str, str]  # sha256 of the train, calibration and test data
    cache: StageCache
    reporter: Reporter

    @property
    def recipe(self) -> Recipe:
        return self.loaded.recipe

    @property
    def base_dir(self) -> Path:
        """The recipe's folder: paths in it are relative to this."""
        return self.loaded.base_dir

    @property
    def clock(self) -> StageClock:
        return self.cache.clock

    @property
    def quiet_native(self) -> bool:
        """Keep TensorFlow's and LiteRT's native log lines off the terminal (not with --debug)."""
        return self.cache.quiet_native

"""The pipeline: the stage cache, one module per stage, the typed stage records and the `Pipeline`
that runs them in order (see `edgepack.pipeline.run`)."""

from edgepack.pipeline.cache import STAGE_FILE, StageOutput
from edgepack.pipeline.run import Pipeline, RunResult

__all__ = ["STAGE_FILE", "Pipeline", "RunResult", "StageOutput"]

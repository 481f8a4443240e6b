"""The optimize stage: the `[[optimize]]` stages in order on the trained model, then the converter's
SavedModel export and the final model's outputs on the test split (the fidelity reference)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepack.fsutil import path_digest
from edgepack.pipeline.cache import StageOutput
from edgepack.pipeline.inputs import RunInputs
from edgepack.records import OptimizeRecord, TrainRecord

if TYPE_CHECKING:
    from edgepack.recipe.optimize import OptimizeStage
    from edgepack.recipe.schema import Recipe

SAVED_MODEL_DIR = "saved_model"
TEST_OUTPUTS_FILE = "test_outputs.npz"


def optimize_stage(
    p: RunInputs,
    trained: StageOutput[TrainRecord],
    trained_model: Callable[[], Any],
    stages: Sequence[OptimizeStage] | None = None,
    name: str = "optimize",
) -> StageOutput[OptimizeRecord]:
    """Optimize a fresh copy of the trained model (seeded with seed + 1) and export it, as stage `name`.

    `trained_model` gives the train stage's Keras model (asked only when the stage is not cached); `stages`
    is the recipe's `[[optimize]]` list, or one try of a search (a value in place of `auto`)."""
    r = p.recipe
    stages = list(r.optimize if stages is None else stages)
    config: dict[str, Any] = {
        "stages": [s.model_dump(mode="json") for s in stages],
        "seed": r.seed,
        "strategy": r.strategy,
        "files": _files(r, p.base_dir),
    }
    if not r.convert.per_channel:  # QAT trains for the converter's weight granularity
        config["per_channel"] = False
    stage_id = p.cache.stage_id("optimize", config, {"train": trained.id, "test": p.fingerprints["test"]})

    def body(out: Path) -> OptimizeRecord:
        from edgepack.models.source import export_saved_model, input_names
        from edgepack.models.tf import load, seed_everything
        from edgepack.optimize.loop import predict
        from edgepack.optimize.stages import optimize

        model = trained_model()
        records: list[dict[str, Any]] = []
        if stages:
            with p.clock.timed("import"):  # tfmot (after TensorFlow): timed apart from the optimization
                _ = load().tfmot
            seed_everything(r.seed + 1)
            model, records = optimize(
                model, stages, p.data, p.reporter, p.loaded.base_dir, r.seed + 1, r.strategy, r.convert.per_channel
            )
        export_saved_model(model, out / SAVED_MODEL_DIR)
        outputs = predict(model, p.data.x_test, p.reporter, "optimize: outputs on the test split")
        arrays = {f"output_{i}": o for i, o in enumerate(outputs)}
        with open(out / TEST_OUTPUTS_FILE, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy stub: **arrays may bind allow_pickle: bool
        layers = [getattr(layer, "layer", layer).name for layer in model.layers]
        return OptimizeRecord(SAVED_MODEL_DIR, layers, records, input_names(model))

    return p.cache.run(name, stage_id, OptimizeRecord, body)


def test_outputs(stage: StageOutput[OptimizeRecord]) -> list[np.ndarray]:
    """The optimized model's outputs on the test split, one array per output (Keras order)."""
    with np.load(stage.dir / TEST_OUTPUTS_FILE, allow_pickle=False) as data:
        return [data[f"output_{i}"] for i in range(len(data.files))]


def _files(recipe: Recipe, base_dir: Path) -> dict[str, str]:
    """Digests of the files the optimize stages read (a distillation teacher, a saved student)."""
    files = {}
    for index, stage in enumerate(recipe.optimize):
        if stage.kind != "distill":
            continue
        if stage.teacher_path:
            files[f"{index}.teacher"] = path_digest(base_dir / stage.teacher_path)
        if stage.student.kind == "saved":
            files[f"{index}.student"] = path_digest(base_dir / stage.student.path)
    return files

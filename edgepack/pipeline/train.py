"""The train stage: the float reference model from the recipe's source, trained if built; its test metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.pipeline.cache import StageOutput
from edgepack.pipeline.inputs import RunInputs
from edgepack.records import TrainRecord

if TYPE_CHECKING:
    from edgepack.recipe.schema import Recipe


def train_stage(p: RunInputs) -> tuple[StageOutput[TrainRecord], Any]:
    """Build and train (or load) the model; a Keras 3 model is bridged to tf_keras and proven first. The
    stage and the Keras model when it was made in this process (None: the stage came from the cache)."""
    r = p.recipe
    config = {
        **p.source.stage_config(),
        "seed": r.seed,
        "task": r.task.model_dump(mode="json"),
        "train": r.train.model_dump(mode="json") if p.source.trains else None,
        "strategy": r.strategy,
    }
    # the bridge is proven on the test inputs, and the test metrics are part of the record
    stage_id = p.cache.stage_id("train", config, {"data": p.fingerprints["train"], "test": p.fingerprints["test"]})
    made: list[Any] = []

    def body(out: Path) -> TrainRecord:
        from edgepack.models.source import count_params, save_model, stage_model_file
        from edgepack.models.tf import load, seed_everything, strategy_scope
        from edgepack.optimize.loop import evaluate
        from edgepack.optimize.train import train

        with p.clock.timed("import"):  # TensorFlow and tf_keras: timed apart from the training
            load()
        seed_everything(r.seed)
        with strategy_scope(r.strategy):
            loaded, fit = train(p.source, p.data, r.train, p.task, bool(r.optimize), p.reporter)
        test_metrics = evaluate(loaded.model, p.data, p.reporter, "train: evaluate")
        model_file = stage_model_file(loaded.keras)
        save_model(loaded.model, out / model_file)
        made.append(loaded.model)
        if loaded.keras == 3:
            p.reporter.note(
                f"train: the Keras 3 model is kept as it is ({loaded.source['bridge']['why']}); "
                "it converts from Keras 3 directly"
            )
        return TrainRecord(model_file, loaded.keras, count_params(loaded.model), test_metrics, loaded.source, fit)

    stage = p.cache.run("train", stage_id, TrainRecord, body)
    check_kept_keras3(r, stage)
    return stage, (made[0] if made else None)


def check_kept_keras3(recipe: Recipe, stage: StageOutput[TrainRecord]) -> None:
    """A Keras 3 model the train stage kept as it is (an earlier run without optimize stages) cannot go
    through the recipe's `[[optimize]]` stages, which need tf_keras (exit 2)."""
    if stage.record.keras == 3 and recipe.optimize:
        from edgepack.errors import ModelError

        raise ModelError(
            stage.record.source.get("bridge", {}).get("why", "the Keras 3 model cannot be bridged"),
            context=f"recipe '{recipe.name}': the train stage kept the Keras 3 model",
            code="keras3-unbridgeable",
            hint="the [[optimize]] stages (TFMOT) need a tf_keras model: replace the layer, or remove "
            "the [[optimize]] stages to convert the Keras 3 model directly",
        )

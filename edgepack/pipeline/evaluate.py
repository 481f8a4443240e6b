"""The evaluate stage: the task's metrics of the float, optimized and `.tflite` models on the test
split, and the `.tflite`'s fidelity to the Keras model it was converted from (SQNR, cosine, max
error per output)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgepack.pipeline.cache import StageOutput
from edgepack.pipeline.inputs import RunInputs
from edgepack.records import ConvertRecord, EvaluateRecord, OptimizeRecord, TrainRecord

if TYPE_CHECKING:
    from edgepack.evaluate.judge import Judge


def evaluate_stage(
    p: RunInputs,
    trained: StageOutput[TrainRecord],
    optimized: StageOutput[OptimizeRecord],
    converted: StageOutput[ConvertRecord],
) -> StageOutput[EvaluateRecord]:
    """Judge the converted `.tflite` on the test split against the float model."""
    tflite = converted.dir / converted.record.model_file
    stage_id = p.cache.stage_id(
        "evaluate",
        {"task": p.task.kind},
        {"train": trained.id, "optimize": optimized.id, "convert": converted.id, "test": p.fingerprints["test"]},
    )

    def body(out: Path) -> EvaluateRecord:
        import dataclasses

        from edgepack.litert import interpreter, output_order

        names = [d["name"] for d in output_order(interpreter(tflite))]  # fidelity names each output's tensor
        referee = dataclasses.replace(judge(p, optimized, trained), output_names=names)
        verdict = referee.judge(tflite, p.reporter, f"evaluate {converted.record.mode} .tflite")
        float_metrics, opt_metrics = trained.record.test_metrics, optimized_metrics(trained, optimized)
        metric = p.task.metric
        float_value = float_metrics.get(metric)
        drop = None
        if float_value is not None and verdict.value is not None and metric in verdict.metrics:
            from edgepack.tasks import worsening

            drop = worsening(p.task, float_value, verdict.value)
        return EvaluateRecord(
            task=p.task.kind,
            metric=metric,
            float=float_value,
            optimized=opt_metrics.get(metric),
            tflite=verdict.value,
            drop=drop,
            metrics={"float": float_metrics, "optimized": opt_metrics, "tflite": verdict.metrics},
            fidelity=verdict.fidelity,
            test_samples=p.data.test_samples,
        )

    return p.cache.run("evaluate", stage_id, EvaluateRecord, body)


def optimized_metrics(trained: StageOutput[TrainRecord], optimized: StageOutput[OptimizeRecord]) -> dict[str, float]:
    """The test metrics of the model the conversion starts from: after the last optimize stage, else the trained one."""
    stages = optimized.record.stages
    return dict(stages[-1]["test_metrics"]) if stages else dict(trained.record.test_metrics)


def judge(p: RunInputs, optimized: StageOutput[OptimizeRecord], trained: StageOutput[TrainRecord]) -> Judge:
    """The judge of `.tflite` models converted from `optimized` (the run's optimize stage, or one try of an
    "auto" optimize value): the test split, the optimized Keras model's outputs on it (the fidelity
    reference) and its headline figure (what criteria compare with)."""
    from edgepack.evaluate.judge import Judge
    from edgepack.pipeline.optimize import test_outputs

    figure = optimized_metrics(trained, optimized).get(p.task.metric)
    return Judge(p.task.kind, p.data.test_split(), test_outputs(optimized), figure, list(optimized.record.inputs), None)

"""What each training-time recipe achieves at real epochs, against the float model of the same recipe.

Runs the shipped recipes through the edgepack pipeline (as a library) and checks issue 3's
acceptance figures on the digits test split:

- qat-int8: int8 accuracy >= float - 0.5 points
- prune-qat-int8 (80 %): int8 accuracy >= float - 1.5 points; sparsity measured in the .tflite
  >= 0.79 for every pruned layer; gzip size <= 0.45x that of the unpruned int8 model (qat-int8)
- prune24-qat-int8: every pruned kernel in the .tflite has <= 2 non-zeros in each block of 4
- cluster-qat-int8 (16 clusters): <= 16 distinct values per clustered kernel in a float32 export
  of the clustered model; int8 accuracy >= float - 2 points
- distillation: a student with <= 10 % of the teacher's parameters, distilled vs trained from
  scratch (same initial weights and budget), mean and spread over 3 seeds; no gain is claimed
- mobilenetv2-qat-int8: converts and runs through LiteRT; size <= 0.30x its float32 model (per-tensor
  weights, as the recipe sets; the per-channel figures are printed beside it)

    python bench/optimize.py                  # everything (about 30 min on 2 cores)
    python bench/optimize.py --only qat cluster

The table is printed and written to `bench/results/optimize.md`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "optimize.md"
WORK = BENCH / ".work-optimize"
SEEDS = (0, 1, 2)

sys.path.insert(0, str(BENCH.parent))

from edgepack.pipeline import Pipeline  # noqa: E402
from edgepack.recipe import load_recipe  # noqa: E402
from edgepack.recipe.convert import ConvertSettings  # noqa: E402

Row = tuple[str, str, str, bool | None]  # (recipe, measure, value, check passed / None: figure only)


def pipeline(name: str, **update: Any) -> Pipeline:
    """The shipped recipe `name` (optionally changed), in the bench's work folder."""
    loaded = load_recipe(name)
    if update:
        loaded = replace(loaded, recipe=loaded.recipe.model_copy(update=update))
    return Pipeline(loaded, WORK)


def evaluated(p: Pipeline) -> dict[str, Any]:
    return p.evaluate().record.to_dict()


def pts(value: float) -> str:
    return f"{100 * value:.2f} %"


def qat() -> list[Row]:
    e = evaluated(pipeline("qat-int8"))
    return [
        ("qat-int8", "float / int8 accuracy", f"{pts(e['float'])} / {pts(e['tflite'])}", None),
        (
            "qat-int8",
            "int8 >= float - 0.5 pts",
            f"{100 * (e['tflite'] - e['float']):+.2f} pts",
            e["tflite"] >= e["float"] - 0.005,
        ),
    ]


def prune() -> list[Row]:
    p = pipeline("prune-qat-int8")
    e, c = evaluated(p), p.convert().record.to_dict()
    pruned = p.optimize().record.stages[0]["pruned_layers"]
    sparsity = {name: c["weights"][name]["sparsity"] for name in pruned}
    dense = pipeline("qat-int8").convert().record.to_dict()
    ratio = c["gzip_bytes"] / dense["gzip_bytes"]
    return [
        ("prune-qat-int8", "float / int8 accuracy", f"{pts(e['float'])} / {pts(e['tflite'])}", None),
        (
            "prune-qat-int8",
            "int8 >= float - 1.5 pts",
            f"{100 * (e['tflite'] - e['float']):+.2f} pts",
            e["tflite"] >= e["float"] - 0.015,
        ),
        (
            "prune-qat-int8",
            "sparsity in the .tflite, every pruned layer >= 0.79",
            ", ".join(f"{k} {v:.3f}" for k, v in sparsity.items()),
            min(sparsity.values()) >= 0.79,
        ),
        (
            "prune-qat-int8",
            "gzip size vs unpruned int8 (qat-int8) <= 0.45x",
            f"{c['gzip_bytes']:,} B / {dense['gzip_bytes']:,} B = {ratio:.3f}x "
            f"(raw {c['size_bytes']:,} B / {dense['size_bytes']:,} B)",
            ratio <= 0.45,
        ),
    ]


def prune24() -> list[Row]:
    p = pipeline("prune24-qat-int8")
    e, c = evaluated(p), p.convert().record.to_dict()
    pruned = p.optimize().record.stages[0]["pruned_layers"]
    per4 = {name: c["weights"][name]["max_nonzeros_per_4"] for name in pruned}
    return [
        ("prune24-qat-int8", "float / int8 accuracy", f"{pts(e['float'])} / {pts(e['tflite'])}", None),
        (
            "prune24-qat-int8",
            "max non-zeros per block of 4, every pruned kernel <= 2",
            ", ".join(f"{k} {v}" for k, v in per4.items()),
            all(v is not None and v <= 2 for v in per4.values()),
        ),
    ]


def cluster() -> list[Row]:
    p = pipeline("cluster-qat-int8")
    e = evaluated(p)
    clustered = list(p.optimize().record.stages[0]["unique_values"])
    stage = load_recipe("cluster-qat-int8").recipe.optimize[0]
    f32 = pipeline("cluster-qat-int8", optimize=[stage], convert=ConvertSettings(mode="float32"))
    unique = {name: f32.convert().record.to_dict()["weights"][name]["unique_values"] for name in clustered}
    return [
        ("cluster-qat-int8", "float / int8 accuracy", f"{pts(e['float'])} / {pts(e['tflite'])}", None),
        (
            "cluster-qat-int8",
            "int8 >= float - 2 pts",
            f"{100 * (e['tflite'] - e['float']):+.2f} pts",
            e["tflite"] >= e["float"] - 0.02,
        ),
        (
            "cluster-qat-int8",
            "distinct values per clustered kernel, float32 export <= 16",
            ", ".join(f"{k} {v}" for k, v in unique.items()),
            max(unique.values()) <= 16,
        ),
    ]


def distill() -> list[Row]:
    recipe = load_recipe("distill-prune-qat-int8").recipe
    stage = recipe.optimize[0].model_copy(update={"compare_scratch": True})
    runs = []
    for seed in SEEDS:
        record = pipeline("distill-prune-qat-int8", seed=seed, optimize=[stage]).optimize().record.stages[0]
        runs.append(record)
    ratio = runs[0]["param_ratio"]

    def spread(key: str) -> str:
        values = [100 * r[key] for r in runs]
        return f"{statistics.mean(values):.2f} % ± {statistics.stdev(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

    gain = statistics.mean(r["test_accuracy"] - r["scratch_accuracy"] for r in runs)
    return [
        (
            "distill",
            "student / teacher parameters <= 10 %",
            f"{runs[0]['student_params']:,} / {runs[0]['teacher_params']:,} = {ratio:.1%}",
            ratio <= 0.10,
        ),
        ("distill", f"teacher accuracy, seeds {SEEDS}", spread("teacher_accuracy"), None),
        ("distill", "student distilled (T=4, alpha=0.1)", spread("test_accuracy"), None),
        ("distill", "student from scratch, same init and budget", spread("scratch_accuracy"), None),
        ("distill", "mean gain of distillation", f"{100 * gain:+.2f} pts", None),
    ]


def mobilenet() -> list[Row]:
    p = pipeline("mobilenetv2-qat-int8")
    e, c = evaluated(p), p.convert().record.to_dict()
    f32 = pipeline("mobilenetv2-qat-int8", optimize=[], convert=ConvertSettings(mode="float32"))
    f32_size = f32.convert().record.to_dict()["size_bytes"]
    ratio = c["size_bytes"] / f32_size
    folded = len(p.optimize().record.stages[0]["folded_batchnorm"])
    # The same recipe with TFLite's default per-channel weights, for comparison (figures only).
    per_channel = pipeline("mobilenetv2-qat-int8", convert=p.recipe.convert.model_copy(update={"per_channel": True}))
    pe, pc = evaluated(per_channel), per_channel.convert().record.to_dict()
    name = "mobilenetv2-qat-int8"
    return [
        (
            name,
            "float / int8 accuracy (LiteRT), per-tensor weights",
            f"{pts(e['float'])} / {pts(e['tflite'])}",
            e["tflite"] > 0.5,
        ),
        (
            name,
            "int8 size vs float32 <= 0.30x",
            f"{c['size_bytes']:,} B / {f32_size:,} B = {ratio:.3f}x",
            ratio <= 0.30,
        ),
        (name, "BatchNormalization layers folded before QAT", str(folded), None),
        (
            name + " (per_channel = true)",
            "float / int8 accuracy (LiteRT)",
            f"{pts(pe['float'])} / {pts(pe['tflite'])}",
            None,
        ),
        (
            name + " (per_channel = true)",
            "int8 size vs float32",
            f"{pc['size_bytes']:,} B / {f32_size:,} B = {pc['size_bytes'] / f32_size:.3f}x",
            None,
        ),
    ]


CHECKS: dict[str, Callable[[], list[Row]]] = {
    "qat": qat,
    "prune": prune,
    "prune24": prune24,
    "cluster": cluster,
    "distill": distill,
    "mobilenet": mobilenet,
}


def report(rows: list[Row], seconds: dict[str, float]) -> str:
    lines = [
        "# bench/optimize.py: training-time recipes against the float model of the same recipe",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; tensorflow {version('tensorflow')}, "
        f"tensorflow-model-optimization {version('tensorflow-model-optimization')}, "
        f"ai-edge-litert {version('ai-edge-litert')}. Digits test split (450 images).",
        "",
        "| recipe | measure | value | check |",
        "|---|---|---|---|",
    ]
    for recipe, measure, value, ok in rows:
        lines.append(f"| {recipe} | {measure} | {value} | {'-' if ok is None else ('pass' if ok else 'FAIL')} |")
    lines += ["", "Wall time per check: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run only these checks")
    args = parser.parse_args()
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for name in args.only or CHECKS:
        start = time.perf_counter()
        rows += CHECKS[name]()
        seconds[name] = time.perf_counter() - start
        print(f"{name}: done in {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    text = report(rows, seconds)
    print(text)
    if not args.only:
        RESULTS.write_text(text)
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

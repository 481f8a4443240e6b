"""The smallest package that holds the criterion: every weights choice's size, metric and SQNR, side by side.

For the shipped digits CNN (post-training int8, no QAT: `ptq-int8`) and a 640-128x4-8-128x4-640 Dense
autoencoder with BatchNorm (the MLPerf Tiny anomaly model's shape, trained on synthetic frames of 8
latent factors), converts the same float model with Dense layers per channel (the converter's default),
per tensor (`dense_granularity = "per-tensor"`) and with 4-bit kernels (`weights = "int4"`), and reports
each file's size, the task's metric and the worst output SQNR against the float model. Then what
`dense_granularity = "auto"` costs: its wall time (both conversions and judging both on the test split)
against one plain conversion of the same model, both from a warm conversion worker. For the
autoencoder also: 16 clusters with TFLite Micro's look-up-table compression (`compression = "lut"`,
the flash a board needs against the int8 file), and the search over everything (`rank = "auto"`,
`dense_granularity = "auto"`, int8 and int4 in `[convert.search]`): its candidates, its pick and its
wall time, fine-tuning each rank included, against one plain conversion.

    python bench/granularity.py         # about 4 minutes; the training is cached in bench/.work-granularity
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "granularity.md"
WORK = BENCH / ".work-granularity"
JOINT_BUDGET = 0.1  # max_rmse_increase (relative: 10 %) of the searched autoencoder's tries and their conversions
JOINT_CRITERION = 0.1  # the search's max_relative_drop: a conversion against the try it came from
CHOICES = {  # label -> the [convert] fields that make it
    "int8, Dense per channel": {"dense_granularity": "per-channel"},
    "int8, Dense per tensor": {"dense_granularity": "per-tensor"},
    "int4 kernels (int8 activations)": {"weights": "int4"},
}

sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH.parent / "tests"))  # the autoencoder's builder: tests/models/dense_models.py
sys.path.insert(0, str(BENCH))

from pipeline import write_report  # noqa: E402  (bench/pipeline.py)

from edgepack.pipeline import Pipeline  # noqa: E402
from edgepack.recipe import load_recipe  # noqa: E402
from edgepack.recipe.schema import Recipe  # noqa: E402


def autoencoder_data(folder: Path) -> Path:
    """Synthetic frames: 8 latent factors through a fixed mixing, channels of varied scale (seeded)."""
    path = folder / "frames.npz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        latent = rng.normal(size=(2000, 8)).astype(np.float32)
        mixing = rng.normal(size=(8, 640)).astype(np.float32) * np.geomspace(0.05, 3.0, 640, dtype=np.float32)
        np.savez(path, x=np.tanh(latent @ mixing).astype(np.float32))
    return path


def recipes(work: Path) -> dict[str, dict[str, Any]]:
    """Each model's recipe as data (no budgets: the bench reports, the gate is not its business)."""
    digits = load_recipe("ptq-int8").recipe.model_dump(mode="json", by_alias=True)
    digits["budgets"] = {}
    autoencoder = {
        "name": "dense-autoencoder",
        "seed": 3,
        "task": {"kind": "regression"},
        "dataset": {"kind": "npz", "path": str(autoencoder_data(work)), "x_key": "x", "y_key": "x"},
        "model": {"kind": "builder", "builder": "models.dense_models:dense_bn_autoencoder", "args": {"spread": 8.0}},
        "train": {"epochs": 10, "batch_size": 32, "learning_rate": 0.002},
        "convert": {"mode": "int8", "io": "int8", "calibration_samples": 256},
    }
    return {"digits CNN (ptq-int8)": digits, "Dense autoencoder 640-128x4-8-128x4-640": autoencoder}


def pipeline(data: dict[str, Any], work: Path, **convert: Any) -> Pipeline:
    """The recipe with `convert` fields replaced, validated again, its validation cut to 20 runs."""
    base = load_recipe("digits")
    data = {**data, "convert": {**data["convert"], "error_report": False, **convert}}
    data["validate"] = {**data.get("validate", {}), "runs": 20, "warmup": 2}
    return Pipeline(replace(base, recipe=Recipe.model_validate(data)), work)


def measure(data: dict[str, Any], work: Path) -> list[dict[str, Any]]:
    """One row per weights choice: size, the task's metric, the worst SQNR."""
    rows = []
    for label, fields in CHOICES.items():
        if fields.get("weights") == "int4" and data["convert"].get("io") == "float32":
            continue
        p = pipeline(data, work, **fields)
        evaluated = p.evaluate().record
        rows.append(
            {
                "choice": label,
                "size": p.convert().record.size_bytes,
                "metric": evaluated.metric,
                "value": evaluated.tflite,
                "float": evaluated.float,
                "sqnr": evaluated.fidelity.get("worst_sqnr_db"),
            }
        )
    return rows


def auto_cost(data: dict[str, Any], work: Path) -> tuple[float, float, str]:
    """Seconds of one plain conversion and of `auto` (both conversions, both judged), cache off for them."""
    from edgepack.convert.pool import prewarm

    prewarm()
    p = pipeline(data, work, dense_granularity="per-channel")
    p.optimize()  # trained and exported before the clock starts (cached)
    p.cache.use_cache = False
    start = time.perf_counter()
    p.convert()
    plain = time.perf_counter() - start
    budget = {"min_sqnr_db": 10.0}
    q = pipeline({**data, "budgets": budget}, work, dense_granularity="auto")
    q.optimize()
    q.cache.use_cache = False
    start = time.perf_counter()
    q.convert()
    return plain, time.perf_counter() - start, q.dense_choice[1]["chosen"]


def lut_row(work: Path) -> dict[str, Any]:
    """16 clusters on a plain-Dense autoencoder (a BatchNorm folded into a kernel spreads its 16 values),
    Dense per tensor, LUT-compressed for TFLite Micro: the int8 file against the compressed one, TFLM's arena."""
    data = {
        "name": "dense-autoencoder-lut",
        "seed": 3,
        "task": {"kind": "regression"},
        "dataset": {"kind": "npz", "path": str(autoencoder_data(work)), "x_key": "x", "y_key": "x"},
        "model": {
            "kind": "builder",
            "builder": "edgepack.models.zoo:dense_autoencoder",
            "args": {"hidden": [128, 128, 128, 128], "bottleneck": 8},
        },
        "train": {"epochs": 10, "batch_size": 32, "learning_rate": 0.002},
        "optimize": [{"kind": "cluster", "clusters": 16, "epochs": 2, "learning_rate": 0.0005}],
        "convert": {"mode": "int8", "io": "int8", "dense_granularity": "per-tensor", "compression": "lut"},
        "validate": {"devices": ["tflm"]},
        "bundle": {"formats": ["c-array"]},
    }
    p = pipeline(data, work)
    evaluated = p.evaluate().record
    record = p.compression_report()
    return {
        "int8": record["size_before_bytes"],
        "lut": record["size_bytes"],
        "value": evaluated.tflite,
        "float": evaluated.float,
        "arena": record["arena"],
    }


def joint_search(data: dict[str, Any], work: Path) -> dict[str, Any]:
    """The search over ranks, Dense granularity and int4 (cache off: every rank fine-tuned, every candidate
    converted) against one plain conversion of the trained model."""
    from edgepack.convert.pool import prewarm

    prewarm()
    plain = pipeline(data, work)
    plain.optimize()
    plain.cache.use_cache = False
    start = time.perf_counter()
    base = plain.convert().record.size_bytes
    plain_seconds = time.perf_counter() - start
    searched = {
        **data,
        "optimize": [
            {"kind": "low-rank", "rank": "auto", "rank_grid": [48, 32, 16], "epochs": 2, "learning_rate": 0.001}
        ],
        "budgets": {"max_rmse_increase": JOINT_BUDGET},
    }
    search = {"modes": ["int8", "int4"], "max_relative_drop": JOINT_CRITERION, "minimize": "size"}
    q = pipeline(searched, work, dense_granularity="auto", search=search)
    q.train()
    q.cache.use_cache = False
    start = time.perf_counter()
    q.convert()
    seconds = time.perf_counter() - start
    return {
        "base": base,
        "plain": plain_seconds,
        "seconds": seconds,
        "search": q.search_report(),
        "tune": q.tuned.report,
    }


def report(
    tables: dict[str, list[dict[str, Any]]],
    costs: dict[str, tuple[float, float, str]],
    lut: dict[str, Any],
    joint: dict[str, Any],
) -> str:
    lines = [
        "# bench/granularity.py: size, metric and SQNR of every weights choice",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; tensorflow {version('tensorflow')}, ai-edge-litert "
        f"{version('ai-edge-litert')}, litert-quantizer {version('litert-quantizer')}. SQNR: the worst output "
        "against the float Keras model on the test split.",
        "",
    ]
    for model, rows in tables.items():
        base = rows[0]["size"]
        lines += [
            f"## {model}",
            "",
            "| weights | size | vs per channel | metric (float) | SQNR |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            metric = f"{r['metric']} {r['value']:.4f} ({r['float']:.4f})"
            sqnr = "identical" if r["sqnr"] is None else f"{r['sqnr']:.1f} dB"
            lines.append(f"| {r['choice']} | {r['size']:,} B | {r['size'] / base:.3f}x | {metric} | {sqnr} |")
        plain, auto, chosen = costs[model]
        lines += [
            "",
            f'`dense_granularity = "auto"` (min_sqnr_db = 10): {auto:.1f} s against {plain:.1f} s for one plain '
            f"conversion ({auto / plain:.2f}x); it kept {chosen}.",
            "",
        ]
    arena = lut["arena"]
    arena_text = (
        f"TFLM's measured arena {arena['bytes']:,} B (the uncompressed model's {arena['uncompressed_model_bytes']:,} B: "
        "TFLM decodes the tables into the arena)"
        if arena.get("how") == "measured"
        else f"arena not measured ({arena.get('why')})"
    )
    search = joint["search"]
    chosen = next(c for c in search["candidates"] if c["chosen"])
    lines += [
        "## 16 clusters, TFLite Micro look-up tables (plain-Dense autoencoder 640-128x4-8-128x4-640, Dense per tensor)",
        "",
        f"int8 file {lut['int8']:,} B; compressed {lut['lut']:,} B ({lut['lut'] / lut['int8']:.3f}x, the flash a "
        f"board needs for the model); rmse {lut['value']:.4f} (float {lut['float']:.4f}); {arena_text}.",
        "",
        "## The search over everything (autoencoder: rank auto x Dense granularity x int8/int4, minimize size)",
        "",
        f"Budget max_rmse_increase = {JOINT_BUDGET} (a fraction of the float RMSE) on every try and candidate; criterion: a conversion at most "
        f"{100 * JOINT_CRITERION:g} % worse than the try it came from. Rank tries (fine-tuned Keras model): "
        + "; ".join(
            f"{t['rank']} rmse {t['metrics']['rmse']:.4f} {'holds' if t['holds'] else 'breaks'}"
            for t in joint["tune"]["tries"]
        )
        + ".",
        "",
        "| candidate | size | vs plain int8 | p50 (ms) | arena | rmse | meets | Pareto |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in search["candidates"]:
        lines.append(
            f"| {c['mode']} | {c['size_bytes']:,} B | {c['size_bytes'] / joint['base']:.3f}x | "
            f"{c['latency_p50_ms']:.3f} | {c['arena_bytes']:,} B | {c['value']:.4f} | "
            f"{'yes' if c['meets'] else 'no'} | {'yes' if c['pareto'] else ''} |"
        )
    lines += [
        "",
        f"Kept **{chosen['mode']}** ({search['why']}): {chosen['size_bytes'] / joint['base']:.3f}x the plain int8 "
        f"file. The search took {joint['seconds']:.1f} s (every rank fine-tuned, {len(search['candidates'])} "
        f"conversions judged and timed) against {joint['plain']:.1f} s for one plain conversion.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=WORK, help="stage cache folder (default bench/.work-granularity)")
    args = parser.parse_args()
    tables, costs = {}, {}
    models = recipes(args.work)
    for model, data in models.items():
        tables[model] = measure(data, args.work)
        costs[model] = auto_cost(data, args.work)
    autoencoder = models["Dense autoencoder 640-128x4-8-128x4-640"]
    text = report(tables, costs, lut_row(args.work), joint_search(autoencoder, args.work))
    print(text)
    write_report(text, RESULTS)
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mode search on MobileNetV2 0.35/96: every TFLite mode's size, latency and accuracy, and the picks.

Runs the shipped `mobilenetv2-qat-int8` recipe without its QAT stage (the search compares
post-training modes of one float model) and with `[convert.search]` over float32, float16,
dynamic range, int8, int16x8 and int8 with fallback, criterion: at most 1 point below float on
the digits test split. Latency is the device runner's p50 on `host` (200 runs after 20 warm-up,
1 thread). Prints the table and the picks for each objective, and writes
`bench/results/convert.md`.

    python bench/convert.py             # trains the float model once (a few minutes), then cached
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

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "convert.md"
WORK = BENCH / ".work-convert"
MODES = ["float32", "float16", "dynamic", "int8", "int16x8", "int8-fallback"]

sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from pipeline import write_report  # noqa: E402  (bench/pipeline.py)

from edgepack.pipeline import Pipeline  # noqa: E402
from edgepack.recipe import load_recipe  # noqa: E402
from edgepack.recipe.schema import Recipe  # noqa: E402


def search_pipeline(work: Path) -> Pipeline:
    """The MobileNetV2 recipe, no QAT, with the search (fixed by re-validating the changed recipe)."""
    loaded = load_recipe("mobilenetv2-qat-int8")
    data = loaded.recipe.model_dump(mode="json", by_alias=True)
    data["name"] = "mobilenetv2-search"
    data["optimize"] = []
    data["convert"].update(per_channel=True, search={"modes": MODES, "minimize": "size", "max_drop": 0.01})
    data["validate"].update(runs=200, warmup=20, threads=1)
    data["budgets"] = {}
    return Pipeline(replace(loaded, recipe=Recipe.model_validate(data)), work)


def pick(candidates: list[dict[str, Any]], key: str) -> str:
    meeting = [c for c in candidates if c["meets"]]
    return min(meeting, key=lambda c: (c[key], -c["value"]))["mode"] if meeting else "none"


def report(search: dict[str, Any], seconds: float) -> str:
    candidates = search["candidates"]
    f32 = next(c for c in candidates if c["mode"] == "float32")
    smallest, fastest = pick(candidates, "size_bytes"), pick(candidates, "latency_p50_ms")
    lightest = pick(candidates, "arena_bytes")
    lines = [
        "# bench/convert.py: mode search on MobileNetV2 0.35/96 (digits, no QAT)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; tensorflow {version('tensorflow')}, ai-edge-litert {version('ai-edge-litert')}. "
        f"Float accuracy {100 * search['float_value']:.2f} % on the digits test split (450 images); criterion: "
        f"drop <= {100 * search['allowed_drop']:.2f} points. Latency: the runner's p50 on `{search['device']}`, "
        "200 runs after 20 warm-up, 1 thread.",
        "",
        "| mode | size | vs float32 | p50 (ms) | arena | accuracy | drop (points) | meets | Pareto |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in candidates:
        lines.append(
            f"| {c['mode']} | {c['size_bytes']:,} B | {c['size_bytes'] / f32['size_bytes']:.3f}x | "
            f"{c['latency_p50_ms']:.3f} | {c['arena_bytes']:,} B | {100 * c['value']:.2f} % | {100 * c['drop']:+.2f} | "
            f"{'yes' if c['meets'] else 'no'} | {'yes' if c['pareto'] else ''} |"
        )
    lines += [
        "",
        f"**Pick, minimize `size`: {smallest}.** **`latency`: {fastest}.** **`arena`: {lightest}.** "
        f"(edgepack picked `{search['chosen']}` for `{search['minimize']}`: {search['why']}.)",
        "",
    ]
    fallback = next((c for c in candidates if c["mode"] == "int8-fallback"), None)
    if fallback:
        lines.extend(
            [
                f"int8-fallback kept {fallback['float_ops']} op(s) in float. With none, it is int8 made by the "
                "quantization debugger's path (the calibrated model quantized by mlir_quantize) rather than "
                "the converter's, hence the small differences from the int8 row.",
                "",
            ]
        )
    dynamic = next((c for c in candidates if c["mode"] == "dynamic"), None)
    if dynamic:
        slower = dynamic["latency_p50_ms"] > f32["latency_p50_ms"]
        lines.append(
            f"Dynamic range is {'slower' if slower else 'faster'} than float32 here "
            f"({dynamic['latency_p50_ms']:.3f} vs {f32['latency_p50_ms']:.3f} ms): the choice has to be "
            "measured on the target, not assumed."
        )
    lines += [
        "",
        f"Wall time: {seconds:.0f} s (training and conversions come from the stage cache when an "
        "earlier run made them; the first run trains and converts: about 3 minutes here).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=WORK, help="stage cache folder (default bench/.work-convert)")
    args = parser.parse_args()
    start = time.perf_counter()
    p = search_pipeline(args.work)
    search = p.search_report()
    assert search is not None
    text = report(search, time.perf_counter() - start)
    print(text)
    write_report(text, RESULTS)
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of `edgepack run` on the regression, anomaly and Keras 3 recipes against the same steps
written by hand (bench/plain_tasks.py).

For each recipe both sides run as fresh subprocesses (so both pay the TensorFlow import), N times
each, in alternating order, each in its own temporary directory, after one untimed import warm-up.
The report gives, per recipe, each side's median and minimum wall time, the ratio edgepack /
plain of the medians against the target (1.15 by default) and both sides' headline figure of the
int8 model on the test split as a sanity check (RMSE for regression, ROC AUC for anomaly
detection, accuracy for classification). It is printed and written to `bench/results/tasks.md`.

    python bench/tasks.py                                   # 3 repeats, the three recipes
    python bench/tasks.py --repeats 1 --recipes digits-anomaly

`edgepack run` exits 3 when a budget is exceeded; that is not a crash here (only the timing
matters), so the exit code is recorded. Any other non-zero exit ends that recipe's runs: the
report shows the command, its exit code and the last lines it printed, and the other recipes go on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from pipeline import EDGEPACK, EDGEPACK_OK_EXITS, TARGET_RATIO, json_documents, machine, write_report  # noqa: E402

PLAIN_SCRIPT = BENCH / "plain_tasks.py"
RESULTS = BENCH / "results" / "tasks.md"
RECIPES = ("diabetes-regression", "digits-anomaly", "keras3-prune-qat-int8")
SIDES = ("edgepack", "plain")
WARM_IMPORTS = "import tensorflow, tf_keras, tensorflow_model_optimization, ai_edge_litert, keras"
METRIC_NAMES = {"rmse": "RMSE", "auc": "ROC AUC", "accuracy": "accuracy"}
TAIL_LINES = 20


@dataclass(frozen=True)
class Run:
    """One timed subprocess: recipe, side, wall seconds, exit code, the int8 model's headline figure
    (and its metric), and the output's last lines when it failed."""

    recipe: str
    side: str
    seconds: float
    exit_code: int
    metric: str | None
    headline: float | None
    error: str | None = None


def command(side: str, recipe: str, workdir: Path) -> list[str]:
    """`edgepack --json run RECIPE --no-cache --workdir DIR`, or the plain script writing into DIR."""
    if side == "edgepack":
        return [str(EDGEPACK), "--json", "run", recipe, "--no-cache", "--workdir", str(workdir)]
    return [sys.executable, str(PLAIN_SCRIPT), recipe, "--out", str(workdir)]


def shown_command(side: str, recipe: str) -> str:
    """The command as the report prints it."""
    if side == "edgepack":
        return f"edgepack --json run {recipe} --no-cache"
    return f"python bench/plain_tasks.py {recipe}"


def headline(side: str, stdout: str) -> tuple[str | None, float | None]:
    """(metric, value) of the int8 model from the edgepack report or the plain script's last JSON line."""
    docs = [d for d in json_documents(stdout) if isinstance(d, dict)]
    if side == "edgepack":
        reports = [d["stages"]["evaluate"] for d in docs if "evaluate" in d.get("stages", {})]
        return (reports[-1]["metric"], reports[-1]["tflite"]) if reports else (None, None)
    results = [d for d in docs if "headline" in d]
    return (results[-1]["metric"], results[-1]["headline"]) if results else (None, None)


def time_side(side: str, recipe: str) -> Run:
    """Run one side on one recipe once, in a fresh temporary directory, and time it."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-{recipe}-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run(command(side, recipe, Path(tmp)), cwd=tmp, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    ok = EDGEPACK_OK_EXITS if side == "edgepack" else {0}
    if proc.returncode not in ok:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-TAIL_LINES:])
        return Run(recipe, side, seconds, proc.returncode, None, None, tail)
    return Run(recipe, side, seconds, proc.returncode, *headline(side, proc.stdout))


def warm_up() -> None:
    """Import the toolchain (Keras 3 too) once, untimed, so no timed run pays a cold disk cache."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", WARM_IMPORTS], capture_output=True, check=True, env=env)


def run_recipe(recipe: str, repeats: int) -> list[Run]:
    """`repeats` runs of each side on `recipe`, alternating which goes first; stops at a failure."""
    runs: list[Run] = []
    for i in range(repeats):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            run = time_side(side, recipe)
            print(
                f"  {recipe} repeat {i + 1}/{repeats} {side:<8} {run.seconds:7.2f} s  exit {run.exit_code}  "
                f"{run.metric} {run.headline}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
            if run.error is not None:
                print(run.error, file=sys.stderr, flush=True)
                return runs
    return runs


def summarize(runs: list[Run], side: str) -> dict[str, Any] | None:
    """Median and min seconds, exit codes and distinct headline figures of one side's completed runs."""
    mine = [r for r in runs if r.side == side and r.error is None]
    if not mine:
        return None
    seconds = [r.seconds for r in mine]
    values = sorted({r.headline for r in mine}, key=lambda v: (v is None, v))
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "exits": sorted({r.exit_code for r in mine}),
        "metric": next((r.metric for r in mine if r.metric), None),
        "values": values,
    }


def fmt_figure(metric: str | None, values: list[float | None]) -> str:
    """Distinct headline figures of a side's runs (accuracy as a percentage)."""

    def one(value: float | None) -> str:
        if value is None:
            return "n/a"
        return f"{100 * value:.2f} %" if metric == "accuracy" else f"{value:.4f}"

    return ", ".join(one(v) for v in values) or "n/a"


def ratio_line(ep: dict[str, Any] | None, plain: dict[str, Any] | None, target: float) -> tuple[str, str]:
    """(the ratio of the medians, PASS/FAIL) or dashes when a side has no completed run."""
    if ep is None or plain is None:
        return "-", "no result"
    ratio = ep["median"] / plain["median"]
    return f"{ratio:.3f}x", "PASS" if ratio <= target else "FAIL"


def side_row(side: str, recipe: str, summary: dict[str, Any] | None, ran: bool) -> str:
    """One table row of a side (`ran`: it ran at least once, so no summary means it failed)."""
    if summary is None:
        return f"| {side} | `{shown_command(side, recipe)}` | - | - | - | {'failed' if ran else 'not run'} |"
    return (
        f"| {side} | `{shown_command(side, recipe)}` | {summary['median']:.2f} | {summary['min']:.2f} | "
        f"{', '.join(map(str, summary['exits']))} | {fmt_figure(summary['metric'], summary['values'])} |"
    )


def recipe_section(recipe: str, runs: list[Run], target: float) -> list[str]:
    """The markdown of one recipe: its table, the ratio and verdict, failures, the raw runs."""
    ep, plain = summarize(runs, "edgepack"), summarize(runs, "plain")
    ratio, verdict = ratio_line(ep, plain, target)
    metric = next((s["metric"] for s in (ep, plain) if s and s["metric"]), None)
    figure = METRIC_NAMES.get(metric or "", "figure")
    rows = [
        side_row(side, recipe, summary, any(r.side == side for r in runs))
        for side, summary in (("edgepack", ep), ("plain", plain))
    ]
    lines = [
        f"## {recipe}",
        "",
        f"| side | command | median (s) | min (s) | exit codes | int8 {figure} |",
        "|---|---|---:|---:|---|---|",
        *rows,
        "",
        f"**edgepack / plain (median): {ratio}** (target <= {target:.2f}x): **{verdict}**",
        "",
    ]
    for failed in (r for r in runs if r.error is not None):
        lines += [
            f"`{shown_command(failed.side, recipe)}` exited {failed.exit_code}; its last lines:",
            "",
            "```",
            failed.error or "",
            "```",
            "",
        ]
    lines += [
        "Runs (seconds, in the order they ran):",
        "",
        *(f"{i + 1}. {r.side}: {r.seconds:.2f} (exit {r.exit_code})" for i, r in enumerate(runs)),
        "",
    ]
    return lines


def summary_table(results: dict[str, list[Run]], target: float) -> list[str]:
    """One row per recipe: both medians, the ratio and the verdict."""
    lines = [
        "| recipe | edgepack median (s) | plain median (s) | edgepack / plain | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for recipe, runs in results.items():
        ep, plain = summarize(runs, "edgepack"), summarize(runs, "plain")
        ratio, verdict = ratio_line(ep, plain, target)
        medians = [f"{s['median']:.2f}" if s else "-" for s in (ep, plain)]
        lines.append(f"| {recipe} | {medians[0]} | {medians[1]} | {ratio} | {verdict} |")
    return lines + [""]


def report(results: dict[str, list[Run]], repeats: int, target: float) -> str:
    """The markdown report: how it was measured, the machine, the summary, one section per recipe."""
    lines = [
        "# edgepack run vs. plain TensorFlow scripts: regression, anomaly detection, Keras 3",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/tasks.py --repeats {repeats}`: "
        "wall time of a fresh subprocess per run, sides alternating, after one untimed import warm-up. "
        "The plain side is `bench/plain_tasks.py`: the same data, split, calibration draw, model, "
        "training, optimization, int8 conversion and LiteRT evaluation written directly against "
        "tf_keras, TFMOT and LiteRT (the Keras 3 recipe's CNN written in tf_keras: no bridge).",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        *summary_table(results, target),
    ]
    for recipe, runs in results.items():
        lines += recipe_section(recipe, runs, target)
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per recipe (default 3)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated (default: {','.join(RECIPES)})")
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="max edgepack/plain ratio")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the markdown report")
    args = parser.parse_args()
    args.recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = sorted(set(args.recipes) - set(RECIPES))
    if unknown:
        parser.error(f"--recipes: no plain script for {', '.join(unknown)} (known: {', '.join(RECIPES)})")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main() -> None:
    """Warm up, time both sides on each recipe, print the report and write it."""
    args = parse_args()
    if not EDGEPACK.exists():
        sys.exit(f"error: no edgepack console script next to {sys.executable}")
    print(
        f"warming up, then {args.repeats} run(s) of each side on {', '.join(args.recipes)}...",
        file=sys.stderr,
        flush=True,
    )
    warm_up()
    results = {recipe: run_recipe(recipe, args.repeats) for recipe in args.recipes}
    text = report(results, args.repeats, args.target)
    print(text)
    write_report(text, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Wall time of `edgepack run digits` against the same steps written by hand (bench/plain_digits.py).

Both sides run as fresh subprocesses (so both pay the TensorFlow import), N times each, in
alternating order, each in its own temporary directory. The report gives each side's median and
minimum wall time, the ratio edgepack / plain of the medians against the target (1.15 by default)
and both sides' int8 accuracy as a sanity check, then where the seconds go: each edgepack stage's own
time (the `seconds` of `edgepack --json run`) beside the plain script's same step, and what is left
outside the steps on each side (the interpreter's start and exit, edgepack's own modules). It is printed and
written to `bench/results/pipeline.md`.

    python bench/pipeline.py              # 3 repeats
    python bench/pipeline.py --repeats 1  # a quick check

`edgepack run` exits 3 when a budget is exceeded; that is not a crash here (only the timing
matters), so the exit code is recorded. Any other non-zero exit stops the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PLAIN_SCRIPT = BENCH / "plain_digits.py"
RESULTS = BENCH / "results" / "pipeline.md"
EDGEPACK = Path(sys.executable).parent / "edgepack"
EDGEPACK_OK_EXITS = {0, 3}  # 3: a budget was exceeded; the run itself completed
TARGET_RATIO = 1.15
PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy")
WARM_IMPORTS = "import tensorflow, tf_keras, tensorflow_model_optimization, ai_edge_litert"


@dataclass(frozen=True)
class Run:
    """One timed subprocess: which side, its wall seconds, exit code and int8 test accuracy."""

    side: str
    seconds: float
    exit_code: int
    int8_accuracy: float | None
    steps: dict[str, float]  # each step's own seconds, as the side reports them


@dataclass(frozen=True)
class Side:
    """How to launch one side in a scratch directory and read its int8 accuracy from stdout."""

    name: str
    command: Callable[[Path], list[str]]
    ok_exits: frozenset[int]
    accuracy: Callable[[str], float | None]
    steps: Callable[[str], dict[str, float]]


def edgepack_command(workdir: Path) -> list[str]:
    """`edgepack --json run digits --no-cache --workdir DIR` through the console script."""
    return [str(EDGEPACK), "--json", "run", "digits", "--no-cache", "--workdir", str(workdir)]


def plain_command(workdir: Path) -> list[str]:
    """The hand-written script, writing its `.tflite` into DIR."""
    return [sys.executable, str(PLAIN_SCRIPT), "--out", str(workdir / "model.tflite")]


def json_documents(text: str) -> list[Any]:
    """Every JSON document in `text`, in order (`edgepack --json` may add an error after the report)."""
    decoder, docs, index = json.JSONDecoder(), [], 0
    while True:
        start = min((i for i in (text.find("{", index), text.find("[", index)) if i >= 0), default=-1)
        if start < 0:
            return docs
        try:
            doc, index = decoder.raw_decode(text, start)
            docs.append(doc)
        except json.JSONDecodeError:
            index = start + 1


def edgepack_accuracy(stdout: str) -> float | None:
    """The `.tflite` test accuracy from the `edgepack --json run` report."""
    for doc in json_documents(stdout):
        if isinstance(doc, dict) and "stages" in doc:
            return doc["stages"]["evaluate"]["tflite"]
    return None


def plain_accuracy(stdout: str) -> float | None:
    """The int8 test accuracy from the plain script's last JSON line."""
    docs = [d for d in json_documents(stdout) if isinstance(d, dict) and "int8" in d]
    return docs[-1]["int8"] if docs else None


def edgepack_steps(stdout: str) -> dict[str, float]:
    """Each stage's own seconds from the `edgepack --json run` report (a search's `convert-MODE` stages
    counted as `convert`)."""
    seconds = next((d["seconds"] for d in json_documents(stdout) if isinstance(d, dict) and "stages" in d), {})
    steps: dict[str, float] = {}
    for name, value in seconds.items():
        key = "convert" if name.startswith("convert-") else name
        steps[key] = steps.get(key, 0.0) + value
    return steps


def plain_steps(stdout: str) -> dict[str, float]:
    """Each step's seconds from the plain script's last JSON line."""
    docs = [d for d in json_documents(stdout) if isinstance(d, dict) and "seconds" in d]
    return docs[-1]["seconds"] if docs else {}


SIDES = {
    "edgepack": Side("edgepack", edgepack_command, frozenset(EDGEPACK_OK_EXITS), edgepack_accuracy, edgepack_steps),
    "plain": Side("plain", plain_command, frozenset({0}), plain_accuracy, plain_steps),
}

# The breakdown's rows: a label, edgepack's stages in it, the plain script's steps in it
STEPS = (
    ("import TensorFlow, tf_keras, tfmot (plain: and LiteRT)", ("import",), ("import",)),
    ("data (load, normalize, split, fingerprint)", ("data",), ("data",)),
    ("train (and the float model's test metric)", ("train",), ("train",)),
    ("optimize (prune, QAT, their metrics)", ("optimize",), ("optimize",)),
    (
        "convert (calibrated int8; a [convert.search]: every mode, judged and timed)",
        ("convert", "search"),
        ("convert",),
    ),
    ("evaluate (the .tflite on the test split)", ("evaluate",), ("evaluate",)),
    ("validate (latency on the host)", ("validate",), ("validate",)),
    ("ship, gate, bundle (plain: write the file)", ("ship", "gate", "fits", "bundle"), ("bundle",)),
)


def time_side(side: Side) -> Run:
    """Run one side once in a fresh temporary directory and time it; a crash raises."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{side.name}-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run(side.command(Path(tmp)), cwd=tmp, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if proc.returncode not in side.ok_exits:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"{side.name} exited {proc.returncode}:\n{tail}")
    steps = side.steps(proc.stdout)
    if not steps:
        raise RuntimeError(f"{side.name} reported no step times:\n{proc.stdout[-2000:]}")
    placed = {s for row in STEPS for s in row[1 if side.name == "edgepack" else 2]}
    if set(steps) - placed:  # said after the first run, not once every repeat has run
        raise RuntimeError(f"{side.name} reported steps the breakdown does not place: {sorted(set(steps) - placed)}")
    return Run(side.name, seconds, proc.returncode, side.accuracy(proc.stdout), steps)


def warm_up() -> None:
    """Import the toolchain once, untimed, so the first timed run does not pay a cold disk cache."""
    subprocess.run([sys.executable, "-c", WARM_IMPORTS], capture_output=True, check=True)


def run_all(repeats: int) -> list[Run]:
    """`repeats` runs of each side, alternating which side goes first."""
    runs = []
    for i in range(repeats):
        order = ("edgepack", "plain") if i % 2 == 0 else ("plain", "edgepack")
        for name in order:
            run = time_side(SIDES[name])
            print(
                f"  repeat {i + 1}/{repeats} {name:<8} {run.seconds:6.2f} s  exit {run.exit_code}  "
                f"int8 accuracy {run.int8_accuracy}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
    return runs


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """CPU, Python and toolchain versions of this machine."""
    info = {
        "cpu": f"{cpu_model()} ({os.cpu_count()} logical CPUs)",
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    for package in PACKAGES:
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = "not installed"
    return info


def summarize(runs: list[Run], name: str) -> dict[str, Any]:
    """Median and min seconds, exit codes and accuracies of one side's runs."""
    mine = [r for r in runs if r.side == name]
    seconds = [r.seconds for r in mine]
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "runs": seconds,
        "exits": sorted({r.exit_code for r in mine}),
        "accuracy": sorted({r.int8_accuracy for r in mine}, key=lambda a: (a is None, a)),
    }


def breakdown(runs: list[Run]) -> list[str]:
    """Where the seconds go: median per row on each side, and what is outside the steps."""
    lines = [
        "| step | edgepack (s) | plain (s) | edgepack - plain (s) |",
        "|---|---:|---:|---:|",
    ]
    for label, ep_steps, plain_steps_ in STEPS:
        ep = statistics.median(sum(r.steps.get(s, 0.0) for s in ep_steps) for r in runs if r.side == "edgepack")
        pl = statistics.median(sum(r.steps.get(s, 0.0) for s in plain_steps_) for r in runs if r.side == "plain")
        lines.append(f"| {label} | {ep:.2f} | {pl:.2f} | {ep - pl:+.2f} |")
    outside = {
        name: statistics.median(r.seconds - sum(r.steps.values()) for r in runs if r.side == name)
        for name in ("edgepack", "plain")
    }
    lines.append(
        "| outside the steps (interpreter start, edgepack's own imports, exit) | "
        f"{outside['edgepack']:.2f} | {outside['plain']:.2f} | {outside['edgepack'] - outside['plain']:+.2f} |"
    )
    return lines


def fmt_accuracy(values: list[float | None]) -> str:
    """Distinct accuracies of a side's runs, as percentages."""
    return ", ".join("n/a" if a is None else f"{100 * a:.2f} %" for a in values)


def report(runs: list[Run], repeats: int, target: float) -> str:
    """The markdown report: machine, per-side table, ratio and verdict, raw runs."""
    ep, plain = summarize(runs, "edgepack"), summarize(runs, "plain")
    ratio = ep["median"] / plain["median"]
    verdict = "PASS" if ratio <= target else "FAIL"
    lines = [
        "# edgepack run vs. a plain TensorFlow script (default recipe: digits)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/pipeline.py --repeats {repeats}`: "
        "wall time of a fresh subprocess per run, sides alternating, after one untimed import warm-up.",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        "| side | command | median (s) | min (s) | exit codes | int8 accuracy |",
        "|---|---|---:|---:|---|---|",
        f"| edgepack | `edgepack --json run digits --no-cache` | {ep['median']:.2f} | {ep['min']:.2f} | "
        f"{', '.join(map(str, ep['exits']))} | {fmt_accuracy(ep['accuracy'])} |",
        f"| plain | `python bench/plain_digits.py` | {plain['median']:.2f} | {plain['min']:.2f} | "
        f"{', '.join(map(str, plain['exits']))} | {fmt_accuracy(plain['accuracy'])} |",
        "",
        f"**edgepack / plain (median): {ratio:.3f}x** (target <= {target:.2f}x): **{verdict}**",
        "",
        "Where the seconds go (medians; edgepack: each stage's own time from `--json run`, the stages it "
        "asked for not counted twice; plain: the script's own step timers):",
        "",
        *breakdown(runs),
        "",
        "Runs (seconds, in the order they ran):",
        "",
        *(f"{i + 1}. {r.side}: {r.seconds:.2f} (exit {r.exit_code})" for i, r in enumerate(runs)),
    ]
    return "\n".join(lines) + "\n"


def write_report(text: str, path: Path) -> None:
    """Write the report atomically (a `.tmp` beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="max edgepack/plain ratio")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the markdown report")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main() -> None:
    """Warm up, time both sides, print the report and write it."""
    args = parse_args()
    if not EDGEPACK.exists():
        sys.exit(f"error: no edgepack console script next to {sys.executable}")
    print(f"warming up, then {args.repeats} run(s) of each side...", file=sys.stderr, flush=True)
    warm_up()
    text = report(run_all(args.repeats), args.repeats, args.target)
    print(text)
    write_report(text, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

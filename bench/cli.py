"""Start-up time of every `edgepack ... --help` against `python -c "import typer, rich"`.

Each help command and the baseline run as fresh subprocesses, round-robin (baseline, then each
command once, repeated), so a slow patch of the machine hurts every row alike. The report gives
each row's median and minimum wall time, its ratio to the baseline's median against the target
(1.5x), how many modules it imported and which heavy ones (numpy, pydantic, rich, TensorFlow,
LiteRT, ...). It is printed and written to `bench/results/cli.md`.

    python bench/cli.py              # 15 rounds
    python bench/cli.py --repeats 5  # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from pipeline import machine, write_report  # noqa: E402

RESULTS = BENCH / "results" / "cli.md"
EDGEPACK = Path(sys.executable).parent / "edgepack"
BASELINE = [sys.executable, "-c", "import typer, rich"]
TARGET_RATIO = 1.5
HEAVY = (
    "numpy",
    "pydantic",
    "rich",
    "jsonschema",
    "tensorflow",
    "tf_keras",
    "tensorflow_model_optimization",
    "ai_edge_litert",
    "tflite_micro",
    "ethosu",
    "matplotlib",
)


@dataclass(frozen=True)
class Row:
    """One command's timings (seconds) and what it imported."""

    label: str
    seconds: list[float]
    modules: int
    heavy: list[str]


def help_commands() -> list[list[str]]:
    """`edgepack --help`, every command's `--help` and every group's subcommands' `--help`."""
    from edgepack.cli.app import command_paths

    return [["--help"]] + [[*path, "--help"] for path in command_paths()]


def wall(command: list[str]) -> float:
    """Seconds one run of `command` takes (it must exit 0)."""
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def imported(command: list[str]) -> tuple[int, list[str]]:
    """How many modules `command` (a Python program) imports, and which of HEAVY, from `-X importtime`."""
    python = [sys.executable, "-X", "importtime"]
    argv = python + (command[1:] if command[0] == sys.executable else [str(command[0]), *command[1:]])
    lines = subprocess.run(argv, capture_output=True, text=True, check=True).stderr.splitlines()
    names = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:") and "|" in line}
    names.discard("imported package")  # the header line
    return len(names), sorted(h for h in HEAVY if h in names or any(n.startswith(h + ".") for n in names))


def measure(commands: dict[str, list[str]], repeats: int) -> list[Row]:
    """`repeats` rounds over every command; then each one's imports."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(2):  # untimed: warm the disk cache
        for command in commands.values():
            wall(command)
    for i in range(repeats):
        for label, command in commands.items():
            times[label].append(wall(command))
        print(f"  round {i + 1}/{repeats}", file=sys.stderr, flush=True)
    return [Row(label, times[label], *imported(command)) for label, command in commands.items()]


def report(rows: list[Row], repeats: int, target: float) -> str:
    """The markdown report: machine, one row per command, the verdict."""
    base = statistics.median(rows[0].seconds)
    worst = max(statistics.median(r.seconds) / base for r in rows[1:])
    verdict = "PASS" if worst <= target else "FAIL"
    lines = [
        '# `edgepack ... --help` against `python -c "import typer, rich"`',
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/cli.py --repeats {repeats}`: wall time of a "
        "fresh subprocess, all rows round-robin, after two untimed rounds.",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        "| command | median (ms) | min (ms) | x baseline | modules imported | heavy modules imported |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        median = statistics.median(row.seconds)
        lines.append(
            f"| `{row.label}` | {1000 * median:.0f} | {1000 * min(row.seconds):.0f} | {median / base:.2f} | "
            f"{row.modules} | {', '.join(row.heavy) or 'none'} |"
        )
    lines += ["", f"**slowest help / baseline (medians): {worst:.2f}x** (target <= {target:.2f}x): **{verdict}**"]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Time every help and the baseline, print the report and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="max help/baseline ratio")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the markdown report")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if not EDGEPACK.exists():
        sys.exit(f"error: no edgepack console script next to {sys.executable}")
    commands = {'python -c "import typer, rich"': BASELINE}
    commands.update({"edgepack " + " ".join(argv): [str(EDGEPACK), *argv] for argv in help_commands()})
    print(f"{len(commands)} commands, {args.repeats} round(s)...", file=sys.stderr, flush=True)
    text = report(measure(commands, args.repeats), args.repeats, args.target)
    print(text)
    write_report(text, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Wall time of the default run (`edgepack run digits --no-cache`) on this tree against an earlier commit.

A refactoring must not make the default run slower. Both sides run the same command as fresh
subprocesses with the same interpreter and packages, N times each in alternating order, each in its
own temporary directory; the earlier commit is checked out into a temporary git worktree and put
first on PYTHONPATH. The table gives each side's median and minimum wall seconds, the ratio of the
medians and each stage's own median seconds (the `seconds` of `--json run`), both sides' int8
accuracy as a sanity check. It is printed and written to `bench/results/versus.md`.

    python bench/versus.py --ref 3cac50a            # 3 repeats each
    python bench/versus.py --ref main~5 --repeats 1
    python bench/versus.py --ref 3cac50a --suite    # the test suite instead, once each (minutes)

With `--suite`, each side runs its own test suite (`python -m pytest -q -p no:cacheprovider`, from its own
tree, its own tests) and the table gives the wall seconds and the tests passed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "versus.md"
RUN = [sys.executable, "-c", "from edgepack.cli.app import main; main()", "--json", "run", "digits", "--no-cache"]


def timed_run(tree: Path, workdir: Path) -> tuple[float, dict[str, Any]]:
    """One default run with `tree` first on the path: wall seconds and the `--json run` document."""
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run([*RUN, "--workdir", str(workdir)], cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 3):  # 3: a budget exceeded, the run itself completed
        raise SystemExit(f"{tree}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def timed_suite(tree: Path) -> tuple[float, str]:
    """The tree's own test suite, run from the tree: wall seconds and pytest's last line."""
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the suite failed: {last}\n{done.stdout[-3000:]}")
    return seconds, last


def suite_table(ref: str, trees: dict[str, Path]) -> str:
    """Each side's suite, once, the earlier commit first."""
    lines = ["| | wall s | pytest |", "|---|---:|---|"]
    seconds = {}
    for side, tree in trees.items():
        seconds[side], last = timed_suite(tree)
        lines.append(f"| {side} | {seconds[side]:.1f} | {last} |")
        print(f"{side}: {seconds[side]:.1f} s ({last})", file=sys.stderr)
    before, after = seconds.values()
    return "\n".join([*lines, "", f"this tree / before: **{after / before:.3f}**"])


def worktree(ref: str, into: Path) -> Path:
    """`ref` checked out (detached) at `into`."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(into), ref], check=True)
    return into


def stage_medians(docs: list[dict[str, Any]]) -> dict[str, float]:
    names = sorted({name for doc in docs for name in doc.get("seconds", {})})
    return {n: statistics.median(doc.get("seconds", {}).get(n, 0.0) for doc in docs) for n in names}


def table(ref: str, times: dict[str, list[float]], docs: dict[str, list[dict[str, Any]]]) -> str:
    sides = [f"{ref} (before)", "this tree"]
    med = {s: statistics.median(times[s]) for s in sides}
    acc = {s: docs[s][-1]["stages"]["evaluate"]["tflite"] for s in sides}
    lines = [
        f"| | {sides[0]} | {sides[1]} |",
        "|---|---:|---:|",
        f"| median wall s | {med[sides[0]]:.2f} | {med[sides[1]]:.2f} |",
        f"| min wall s | {min(times[sides[0]]):.2f} | {min(times[sides[1]]):.2f} |",
        f"| int8 accuracy | {acc[sides[0]]:.4f} | {acc[sides[1]]:.4f} |",
    ]
    stages = {s: stage_medians(docs[s]) for s in sides}
    for name in sorted(set(stages[sides[0]]) | set(stages[sides[1]])):
        a, b = stages[sides[0]].get(name), stages[sides[1]].get(name)
        lines.append(f"| stage {name}, s | {'-' if a is None else f'{a:.2f}'} | {'-' if b is None else f'{b:.2f}'} |")
    ratio = med[sides[1]] / med[sides[0]]
    runs = len(times[sides[0]])
    return "\n".join([*lines, "", f"this tree / before (medians of {runs}): **{ratio:.3f}**"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suite", action="store_true", help="time each side's test suite instead")
    args = parser.parse_args()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref], capture_output=True, text=True)
    ref = rev.stdout.strip() or args.ref
    sides = [f"{ref} (before)", "this tree"]
    times: dict[str, list[float]] = {s: [] for s in sides}
    docs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="edgepack-versus-") as scratch:
        before = worktree(args.ref, Path(scratch) / "before")
        trees = {sides[0]: before, sides[1]: ROOT}
        try:
            if args.suite:
                text = f"# Test suite: this tree against {ref}\n\n{suite_table(ref, trees)}\n"
                print(text)
                (RESULTS.parent / "versus-suite.md").write_text(text, encoding="utf-8")
                return
            for repeat in range(args.repeats):
                for side in sides if repeat % 2 == 0 else sides[::-1]:
                    seconds, doc = timed_run(trees[side], Path(tempfile.mkdtemp(dir=scratch)))
                    times[side].append(seconds)
                    docs[side].append(doc)
                    print(f"{side}: {seconds:.2f} s", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    text = f"# Default run: this tree against {ref}\n\n{table(ref, times, docs)}\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

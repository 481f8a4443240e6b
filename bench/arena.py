"""The tensor arena of each shipped recipe's int8 model: what TensorFlow Lite Micro measures, what the
c-array header now declares, and the static estimate (the header's figure before the measurement);
and what the `tflm` validation costs next to a hand-written TFLM bisection.

The arena depends on the converted graph (its tensors, ops and their scratch buffers), not on the
weights' values, so each recipe runs with one epoch per stage (as the tests' tiny copies do) unless
`--full`. For each model the report gives:

- measured: the smallest arena (to 16 B) with which TFLM allocates and invokes it, split into
  planned buffers and persistent structures (edgepack's tflm runner);
- header: `kModelDataArenaSize` as the c-array writes it now (measured + the 1 KiB default margin);
- estimate: the static figure (peak activations + 25 % + 4 KiB + per-tensor and per-channel terms),
  which was the header's figure up to 0.3.0, and its ratio to the measured need;
- the time of `edgepack validate --device tflm` (a subprocess: its imports, the op check, the
  runner) next to a plain script that bisects the arena with tflite-micro directly, median of N.

    python bench/arena.py                          # every shipped int8 recipe, 3 timing repeats
    python bench/arena.py --recipes digits mobilenetv2-qat-int8 --repeats 5

Printed and written to `bench/results/arena.md`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from pipeline import EDGEPACK, machine, write_report  # noqa: E402

RESULTS = BENCH / "results" / "arena.md"
RECIPES = (
    "digits",
    "ptq-int8",
    "qat-int8",
    "prune-qat-int8",
    "prune24-qat-int8",
    "cluster-qat-int8",
    "distill-prune-qat-int8",
    "mobilenetv2-qat-int8",
    "diabetes-regression",
    "digits-anomaly",
    "keras3-prune-qat-int8",
)
MARGIN = 1024
PLAIN = textwrap.dedent("""
    import sys, numpy as np
    from tflite_micro.python.tflite_micro import runtime
    model = open(sys.argv[1], "rb").read()
    def works(size):
        try:
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=size)
            d = interpreter.get_input_details(0)
            interpreter.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            interpreter.invoke()
            return True
        except Exception:
            return False
    low, high = 0, 64 * 1024
    while not works(high):
        low, high = high, high * 4
    while high - low > 16:
        middle = (low + high) // 2 // 16 * 16
        low, high = (low, middle) if works(middle) else (middle, high)
    print(high)
""")


def tiny(name: str, folder: Path) -> Path:
    """The shipped recipe with one epoch per stage (the graph, and so the arena, is the recipe's own)."""
    text = (REPO / "recipes" / f"{name}.toml").read_text()
    text = re.sub(r"(?m)^epochs = \d+", "epochs = 1", text)
    text = re.sub(r"(?m)^\[budgets\][^\[]*", "", text)
    here = REPO / "recipes"  # the copy lives elsewhere: its relative data paths become absolute
    text = re.sub(r'(?m)^(path = )"(?!/)([^"]+)"', lambda m: f'{m.group(1)}"{(here / m.group(2)).resolve()}"', text)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def converted(name: str, work: Path, folder: Path, full: bool) -> Path:
    """The recipe's converted model (edgepack convert: trains what it must)."""
    recipe = REPO / "recipes" / f"{name}.toml" if full else tiny(name, folder)
    proc = subprocess.run(
        [str(EDGEPACK), "convert", str(recipe), "--workdir", str(work)], capture_output=True, text=True, cwd=folder
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name}: edgepack convert failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return work / name / "convert" / "model.tflite"


def timed(cmd: list[str], cwd: Path, may_fail: bool = False) -> tuple[float, str, int]:
    """Wall seconds, stdout and exit status of a subprocess (a failure ends the bench unless `may_fail`)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 and not may_fail:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout, proc.returncode


def measure(name: str, model: Path, folder: Path, repeats: int) -> dict[str, object]:
    from edgepack.analyze.tflm_ops import missing_ops, model_ops
    from edgepack.bundle.c_array import c_sources

    row: dict[str, object] = {
        "recipe": name,
        "size": model.stat().st_size,
        "estimate": c_sources(model.read_bytes()).arena_estimate,
    }
    missing = missing_ops(*model_ops(model.read_bytes()))
    if missing:
        row["missing"] = ", ".join(missing)
        return row
    ours, plain = [], []
    for _ in range(repeats):  # alternating, each a fresh process
        seconds, out, _ = timed(
            [
                str(EDGEPACK),
                "--json",
                "validate",
                "--model",
                str(model),
                "--device",
                "tflm",
                "--workdir",
                str(folder / "validate"),
            ],
            folder,
        )
        ours.append(seconds)
        row["arena"] = json.loads(out)["tflm"]["arena"]
        seconds, out, code = timed([sys.executable, "-c", PLAIN, str(model)], folder, may_fail=True)
        if code != 0:  # TFLM crashes at some sizes short of the need instead of failing to allocate
            row["plain_need"] = f"crashed ({_signal(code)})"
            continue
        plain.append(seconds)
        row["plain_need"] = f"{int(out.split()[-1]):,} B"
    row["edgepack_s"] = statistics.median(ours)
    row["plain_s"] = f"{statistics.median(plain):.2f} s" if plain else "-"
    return row


def report(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    info = machine()
    lines = [
        f"# TFLite Micro arena, measured ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python bench/arena.py{' --full' if args.full else ''} --repeats {args.repeats}`; "
        f"{'the recipes as shipped' if args.full else 'one epoch per stage (the same graphs)'}. "
        f"Machine: {info['cpu']}, Python {info['python']}.",
        "",
        "| recipe | model | measured need (planned + persistent) | header now (+1 KiB) | static estimate "
        "(header up to 0.3.0) | estimate / need | plain bisection | edgepack validate tflm | plain script |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "missing" in r:
            lines.append(
                f"| {r['recipe']} | {r['size']:,} B | TFLM lacks {r['missing']} | - | {r['estimate']:,} B "
                "| - | - | - | - |"
            )
            continue
        a = r["arena"]
        assert isinstance(a, dict)
        need = int(a["bytes"])
        header = -(-(need + MARGIN) // 16) * 16
        lines.append(
            f"| {r['recipe']} | {r['size']:,} B | {need:,} B ({a['non_persistent']:,} + {a['persistent']:,}) "
            f"| {header:,} B | {r['estimate']:,} B | {int(r['estimate']) / need:.2f}x "  # type: ignore[call-overload]
            f"| {r['plain_need']} | {r['edgepack_s']:.2f} s | {r['plain_s']} |"
        )
    lines += [
        "",
        "Measured need and the plain bisection agree when the two columns are equal. The edgepack "
        "time is a whole `edgepack validate` subprocess (its imports, the op check against TFLM's op "
        "table, the runner's bisection with each probe in a forked child, five invokes); the plain "
        "script is only the bisection, in one process: where TFLM crashes at a size just short of "
        "the need instead of failing, the plain script dies and edgepack counts the crash as a "
        "failed size. "
        f"tflite-micro {package_version('tflite-micro')}, ai-edge-litert {info.get('ai-edge-litert', '?')}.",
    ]
    return "\n".join(lines) + "\n"


def _signal(code: int) -> str:
    import signal

    try:
        return signal.Signals(-code).name if code < 0 else f"exit {code}"
    except ValueError:
        return f"signal {-code}"


def package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the recipes as shipped (full training)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, help="keep the work folder here (a rerun reuses its stages)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.work.resolve() if args.work else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.recipes:
            model = converted(name, folder / "work", folder, args.full)
            rows.append(measure(name, model, folder, args.repeats))
            print(f"{name}: done", file=sys.stderr)
    text = report(rows, args)
    print(text)
    write_report(text, args.out)


if __name__ == "__main__":
    main()

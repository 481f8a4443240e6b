"""What the microcontroller validations add to a run: `tflm` (TFLM's arena and outputs) and `ethos-u55-128`
(Vela's estimate), next to the direct alternatives (a hand-written TFLM bisection, the `vela` CLI).

Each recipe is trained and converted once (one epoch per stage: the graphs are the recipe's own), then
inside one process, with every stage cached, the validate stage is timed on `host` alone, on `host` +
`tflm` and on `host` + `ethos-u55-128`: the difference is what the device adds to a run (its runner or
Vela in a child process, the op check, parsing, parity). The direct alternatives are timed as their
own processes on the same model, as a user would run them. Median of N, alternating.

    python bench/mcu_validate.py                              # digits and MobileNetV2 0.35 (96 px)
    python bench/mcu_validate.py --recipes digits --repeats 5 --work /tmp/mcu

Printed and written to `bench/results/mcu_validate.md`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from arena import PLAIN, converted, package_version
from pipeline import machine, write_report  # noqa: E402

RESULTS = BENCH / "results" / "mcu_validate.md"
RECIPES = ("digits", "mobilenetv2-qat-int8")
ETHOS = "ethos-u55-128"
SETS = {"host": ["host"], "tflm": ["host", "tflm"], "ethos-u": ["host", ETHOS]}


def pipeline(recipe: Path, work: Path) -> object:
    from edgepack.pipeline.run import Pipeline
    from edgepack.recipe import load_recipe

    return Pipeline(load_recipe(str(recipe)), work)


def inside(recipe: Path, work: Path, repeats: int) -> dict[str, float]:
    """Median seconds of the validate stage on each device set, in this process, stages cached."""
    p = pipeline(recipe, work)
    p.validate(["host"])  # warm: the stages are loaded, LiteRT imported, the shipped model made
    times: dict[str, list[float]] = {name: [] for name in SETS}
    for _ in range(repeats):
        for name, devices in SETS.items():
            start = time.perf_counter()
            p.validate(devices)  # type: ignore[attr-defined]
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def direct(model: Path, folder: Path, repeats: int) -> dict[str, float | None]:
    """Median seconds of the plain TFLM bisection and of the `vela` CLI on the model (None: it crashed)."""
    vela = shutil.which("vela") or str(Path(sys.executable).with_name("vela"))
    plain, compiled = [], []
    for index in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PLAIN, str(model)], capture_output=True, cwd=folder)
        if proc.returncode == 0:
            plain.append(time.perf_counter() - start)
        out = folder / f"vela-{index}"
        start = time.perf_counter()
        subprocess.run(
            [
                vela,
                str(model),
                "--accelerator-config",
                ETHOS,
                "--system-config",
                "Ethos_U55_High_End_Embedded",
                "--memory-mode",
                "Shared_Sram",
                "--output-dir",
                str(out),
            ],
            capture_output=True,
            check=True,
            cwd=folder,
        )
        compiled.append(time.perf_counter() - start)
    return {"plain_tflm": statistics.median(plain) if plain else None, "vela": statistics.median(compiled)}


def report(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    info = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# What the microcontroller validations add to a run ({when})",
        "",
        f"`python bench/mcu_validate.py --repeats {args.repeats}`; one epoch per stage. Machine: {info['cpu']}, "
        f"Python {info['python']}.",
        "",
        "| recipe | model | validate on host | + tflm | tflm adds | plain TFLM bisection | + ethos-u55-128 "
        "| ethos-u adds | plain `vela` CLI |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t, d = row["inside"], row["direct"]
        plain = "crashed" if d["plain_tflm"] is None else f"{d['plain_tflm']:.2f} s"  # type: ignore[index]
        lines.append(
            f"| {row['recipe']} | {row['size']:,} B | {t['host']:.2f} s | {t['tflm']:.2f} s | "  # type: ignore[index]
            f"{t['tflm'] - t['host']:+.2f} s | {plain} | {t['ethos-u']:.2f} s | "  # type: ignore[index]
            f"{t['ethos-u'] - t['host']:+.2f} s | {d['vela']:.2f} s |"
        )  # type: ignore[index]
    lines += [
        "",
        "The validate columns are the whole validate stage inside one process with every stage cached "
        "(the host run, then each device in its child process: the TFLM runner with its forked bisection "
        "probes and five invokes, or Vela compiling the model); 'adds' is the difference from host "
        "alone. The plain columns are separate processes doing only the measurement (their imports "
        "included): a TFLM bisection in one process (it dies where TFLM crashes at a size just short "
        "of the need), and `vela` with the profile's accelerator, system configuration and memory mode. "
        f"tflite-micro {package_version('tflite-micro')}, ethos-u-vela {package_version('ethos-u-vela')}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, help="keep the work folder here (a rerun reuses its stages)")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.work.resolve() if args.work else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.recipes:
            model = converted(name, folder / "work", folder, False)
            rows.append(
                {
                    "recipe": name,
                    "size": model.stat().st_size,
                    "inside": inside(folder / f"{name}.toml", folder / "work", args.repeats),
                    "direct": direct(model, folder, args.repeats),
                }
            )
            print(f"{name}: done", file=sys.stderr)
    text = report(rows, args)
    print(text)
    write_report(text, args.out)


if __name__ == "__main__":
    main()

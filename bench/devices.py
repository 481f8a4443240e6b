"""edgepack's device runner against `litert-benchmark`, pinned vs unpinned variation, SSH overhead.

Three measurements, printed as one markdown report and written to `bench/results/devices.md`:

1. **Runner vs litert-benchmark.** On the same model, thread count, warm-up and run count, the
   median invoke latency that edgepack's runner reports (`edgepack/devices/runners/runner.py` in a
   subprocess, as `validate` runs it on `host`) beside the median of `litert-benchmark` (the
   benchmark tool shipped with ai-edge-litert; it runs the CompiledModel API), each repeated,
   alternating. Target: within 5 %.
2. **Run-to-run variation, pinned vs unpinned.** The runner's p50 over repeated runs with the
   `host` profile (unpinned) and pinned to one core (`cpus = [0]`, as `host-1core` does): the
   coefficient of variation (std / mean) of the p50s.
3. **SSH round trip.** Wall time of one run through the ssh driver (a real sshd on 127.0.0.1,
   started here as in the tests) beside the same run through the local driver, and a bare
   `ssh HOST true`: what pushing runner + model over one connection costs.

The models are MobileNetV2 (alpha 1.0, 224x224, 1000 classes, random weights: latency does not
depend on the weights), converted to int8 (calibrated on seeded random data) and float32, built
once with TensorFlow into bench/.work-devices/. A model this size keeps litert-benchmark's
0.01 ms rounding below 0.5 % of its figures.

    python bench/devices.py               # 5 repeats
    python bench/devices.py --repeats 3   # quicker
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work-devices"
RESULTS = BENCH / "results" / "devices.md"
LITERT_BENCHMARK = Path(sys.executable).with_name("litert-benchmark")
TARGET = 0.05
RUNS, WARMUP = 100, 10

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(BENCH))

from datetime import UTC

from pipeline import machine, write_report  # noqa: E402  (bench/pipeline.py)

from edgepack.devices.base import RunRequest  # noqa: E402
from edgepack.devices.drivers import run_device  # noqa: E402
from edgepack.devices.profiles import LocalDevice, SshDevice  # noqa: E402
from edgepack.fsutil import atomic_write_bytes  # noqa: E402
from edgepack.progress import NullReporter  # noqa: E402


def build_models() -> dict[str, Path]:
    """MobileNetV2 1.0/224 as int8 and float32 .tflite files (built once, then reused)."""
    paths = {"int8": WORK / "mobilenetv2_224_int8.tflite", "float32": WORK / "mobilenetv2_224_float32.tflite"}
    if all(p.is_file() for p in paths.values()):
        return paths
    import numpy as np
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None)
    rng = np.random.default_rng(0)
    samples = rng.random((16, 224, 224, 3), dtype=np.float32)
    WORK.mkdir(parents=True, exist_ok=True)
    for mode, path in paths.items():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([s[None]] for s in samples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        atomic_write_bytes(path, converter.convert())
    return paths


def runner_p50(model: Path, threads: int, device: Any = None) -> tuple[float, float]:
    """(p50 ms the runner reports, wall seconds of the whole run) through `device`'s driver."""
    device = device or LocalDevice(name="host", kind="local")
    req = RunRequest(model, None, RUNS, WARMUP, threads)
    start = time.perf_counter()
    record = run_device(device, req, NullReporter(), f"bench {device.name}")
    return record["latency_ms"]["p50"], time.perf_counter() - start


def litert_benchmark_median(model: Path, threads: int) -> float:
    """The median ms `litert-benchmark` reports (its JSON rounds to 0.01 ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run(
            [
                str(LITERT_BENCHMARK),
                "--model",
                str(model),
                "--num_threads",
                str(threads),
                "--num_runs",
                str(RUNS),
                "--warmup_runs",
                str(WARMUP),
                "--result_json",
                str(out),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return float(json.loads(out.read_text())["latency"]["median_ms"])


def compare_with_litert_benchmark(models: dict[str, Path], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for mode, model in models.items():
        for threads in (1, 2):
            ours, theirs = [], []
            for i in range(repeats):
                first_ours = i % 2 == 0
                for side in ("ours", "theirs") if first_ours else ("theirs", "ours"):
                    if side == "ours":
                        ours.append(runner_p50(model, threads)[0])
                    else:
                        theirs.append(litert_benchmark_median(model, threads))
            a, b = statistics.median(ours), statistics.median(theirs)
            rows.append(
                {
                    "model": mode,
                    "threads": threads,
                    "runner": a,
                    "litert": b,
                    "diff": a / b - 1,
                    "runner_all": ours,
                    "litert_all": theirs,
                }
            )
            print(f"  {mode} x{threads}: runner {a:.3f} ms, litert-benchmark {b:.3f} ms", file=sys.stderr, flush=True)
    return rows


def variation(model: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Coefficient of variation of the runner's p50 over `repeats` runs, unpinned vs pinned to CPU 0,
    on an idle machine and beside one busy process (as on a shared CI runner)."""
    profiles = {
        "unpinned (host)": LocalDevice(name="host", kind="local"),
        "pinned to CPU 0 (cpus = [0])": LocalDevice(name="host-pinned", kind="local", cpus=[0]),
    }
    result = {}
    for load in ("idle", "one busy process beside it"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "idle" else None
        try:
            p50s: dict[str, list[float]] = {name: [] for name in profiles}
            for i in range(repeats):
                for name in list(profiles) if i % 2 == 0 else list(reversed(profiles)):
                    p50s[name].append(runner_p50(model, 1, profiles[name])[0])
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        for name, values in p50s.items():
            result[f"{name}, {load}"] = {
                "p50s": values,
                "mean": statistics.mean(values),
                "cv": statistics.pstdev(values) / statistics.mean(values),
            }
    return result


def ssh_overhead(model: Path, repeats: int) -> dict[str, Any] | None:
    """Wall seconds of a run through ssh (127.0.0.1) vs the local driver, and of a bare `ssh true`."""
    from sshd import sshd_binary, start_sshd

    if sshd_binary() is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-sshd-") as tmp:
        server = start_sshd(Path(tmp) / "sshd")
        try:
            board = SshDevice(
                name="ssh-localhost",
                kind="ssh",
                host="127.0.0.1",
                port=server.port,
                user=server.user,
                identity_file=str(server.client_key),
                known_hosts=str(server.known_hosts),
                python=sys.executable,
                remote_dir=str(Path(tmp) / "remote"),
            )
            from edgepack.devices.drivers.ssh import ssh_command

            walls: dict[str, list[float]] = {"local": [], "ssh": [], "ssh true": []}
            p50s: dict[str, list[float]] = {"local": [], "ssh": []}
            for _ in range(repeats):
                for name, device in (("local", None), ("ssh", board)):
                    p50, wall = runner_p50(model, 1, device)
                    walls[name].append(wall)
                    p50s[name].append(p50)
                start = time.perf_counter()
                subprocess.run([*ssh_command(board), "true"], check=True, capture_output=True, timeout=60)
                walls["ssh true"].append(time.perf_counter() - start)
        finally:
            server.stop()
    median = {name: statistics.median(values) for name, values in walls.items()}
    return {
        "wall": median,
        "p50": {name: statistics.median(v) for name, v in p50s.items()},
        "overhead": median["ssh"] - median["local"],
        "model_bytes": model.stat().st_size,
    }


def report(rows: list[dict[str, Any]], var: dict[str, dict[str, Any]], ssh: dict[str, Any] | None, repeats: int) -> str:
    from datetime import datetime

    worst = max(abs(r["diff"]) for r in rows)
    lines = [
        "# edgepack's device runner vs litert-benchmark; pinned vs unpinned; SSH round trip",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/devices.py --repeats {repeats}` on "
        f"MobileNetV2 (alpha 1.0, 224x224, random weights), {RUNS} timed invokes after {WARMUP} warm-up, "
        "seeded random inputs.",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        "## 1. The runner's p50 beside litert-benchmark's median (same model, threads, runs)",
        "",
        f"Median over {repeats} runs of each side, alternating. The runner uses the Interpreter API in a "
        "subprocess (as `validate` on `host`); litert-benchmark uses the CompiledModel API. Its JSON "
        "rounds to 0.01 ms.",
        "",
        "| model | threads | runner p50 (ms) | litert-benchmark median (ms) | difference |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['model']} | {r['threads']} | {r['runner']:.3f} | {r['litert']:.2f} | {100 * r['diff']:+.1f} % |"
            for r in rows
        ),
        "",
        f"**Largest difference: {100 * worst:.1f} %** (target within {100 * TARGET:.0f} %): "
        f"**{'PASS' if worst <= TARGET else 'FAIL'}**",
        "",
        "## 2. Run-to-run variation of the p50, unpinned vs pinned (int8, 1 thread)",
        "",
        f"The runner's p50 over {len(next(iter(var.values()))['p50s'])} runs per row, the two profiles alternating. "
        "Pinning fixes the core a run uses (as on a one-core board); whether it also lowers the variation "
        "depends on the machine's scheduler and, on a VM, its hypervisor.",
        "",
        "| profile, machine | mean p50 (ms) | variation (std / mean) | p50 of each run (ms) |",
        "|---|---:|---:|---|",
        *(
            f"| {name} | {v['mean']:.3f} | {100 * v['cv']:.2f} % | {', '.join(f'{x:.3f}' for x in v['p50s'])} |"
            for name, v in var.items()
        ),
        "",
        "## 3. SSH round trip (int8, 1 thread; a real sshd on 127.0.0.1)",
        "",
    ]
    if ssh is None:
        lines.append("Skipped: sshd is not installed (Debian: openssh-server).")
    else:
        lines += [
            "| what | median wall (s) | runner p50 (ms) |",
            "|---|---:|---:|",
            f"| local driver (subprocess) | {ssh['wall']['local']:.3f} | {ssh['p50']['local']:.3f} |",
            f"| ssh driver (push {ssh['model_bytes']:,} B model + runner, run, clean up; one connection) | "
            f"{ssh['wall']['ssh']:.3f} | {ssh['p50']['ssh']:.3f} |",
            f"| bare `ssh 127.0.0.1 true` | {ssh['wall']['ssh true']:.3f} | |",
            "",
            f"**SSH overhead per validate run: {ssh['overhead']:.3f} s** (ssh driver minus local driver). "
            "On a real board add the network's transfer time for the model.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side per row (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be >= 2 (a variation needs two runs)")
    if not LITERT_BENCHMARK.exists():
        sys.exit(f"error: no litert-benchmark next to {sys.executable} (it comes with ai-edge-litert)")
    print("building the models (once)...", file=sys.stderr, flush=True)
    models = build_models()
    print("runner vs litert-benchmark...", file=sys.stderr, flush=True)
    rows = compare_with_litert_benchmark(models, args.repeats)
    print("pinned vs unpinned...", file=sys.stderr, flush=True)
    var = variation(models["int8"], max(args.repeats * 2, 6))
    print("ssh round trip...", file=sys.stderr, flush=True)
    ssh = ssh_overhead(models["int8"], args.repeats)
    text = report(rows, var, ssh, args.repeats)
    print(text)
    write_report(text, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading what TFLite's `benchmark_model` binary prints: the adb driver's alternative to the runner.

A phone without Python can still be measured with the prebuilt Android `benchmark_model`
(`android_aarch64_benchmark_model`): the profile names it (`benchmark = "PATH"`), the adb driver
pushes it with the model and parses its log. It prints per-run statistics in microseconds, not
the runs themselves: min, max, mean, std and, since TF 2.13 or so, p5 / median / p95, but no p90
or p99, and no outputs (so no parity check). Lines such as:

    INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 median=1239807 p95=1247415
    INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, Inference (avg): 1.24027e+06
    INFO: Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832
"""

from __future__ import annotations

import re
from typing import Any

from edgepack.devices.base import tail
from edgepack.errors import StageError

_PAIR = re.compile(r"\b([a-z0-9]+)=([-+0-9.eE]+)")
_HEADER = re.compile(r"Running benchmark for at least (\d+) iterations")
_TIMINGS = re.compile(r"Inference timings in us: Init: ([-+0-9.eE]+), First inference: ([-+0-9.eE]+)")
_PEAK = re.compile(
    r"(?:Overall peak memory footprint \(MB\) via periodic monitoring: ([0-9.eE+]+))|"
    r"(?:Peak memory footprint \(MB\): init=[-0-9.eE+]+ overall=([0-9.eE+]+))"
)
_DELTA = re.compile(
    r"Memory footprint delta from the start of the tool \(MB\): init=[-0-9.eE+]+ "
    r"overall=([-0-9.eE+]+)"
)


def benchmark_args(runs: int, warmup: int, threads: int, max_secs: float, extra: list[str]) -> list[str]:
    """Flags that make benchmark_model run `warmup` + `runs` invokes: no time-based minimum, and a
    time limit (its default is 150 s) no shorter than the device's own."""
    return [
        "--graph=model.tflite",
        f"--num_threads={threads}",
        f"--num_runs={runs}",
        f"--warmup_runs={warmup}",
        "--min_secs=0",
        "--warmup_min_secs=0",
        f"--max_secs={max(1, round(max_secs))}",
        *extra,
    ]


def parse(text: str, runs: int, label: str) -> dict[str, Any]:
    """A runner-like record (latency in ms, init, memory) from benchmark_model's log.

    The measured statistics are the `count=` line after the last "Running benchmark for at least
    N iterations" line (the one before it is the warm-up); op-profiling summaries printed later
    ("Timings (microseconds): count=...") are not latencies.
    """
    lines = text.replace("\r\n", "\n").splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.search(line)]
    start = headers[-1] + 1 if headers else 0
    measured = next(
        (
            dict(_PAIR.findall(line))
            for line in lines[start:]
            if "count=" in line and "Timings" not in line and "Memory" not in line
        ),
        None,
    )
    if not measured or "count" not in measured:
        raise StageError(
            f"{label}: benchmark_model printed no timings",
            context=tail(text) or "(no output)",
            hint="run it by hand with the same flags (`adb shell`) to see why",
            code="runner-output",
        )

    def ms(key: str) -> float | None:
        return float(measured[key]) / 1000.0 if key in measured else None

    single = ms("curr")  # "count=1 curr=..." when every run took the same time
    latency = {
        "p50": ms("median"),
        "p90": None,
        "p95": ms("p95"),
        "p99": None,
        "p5": ms("p5"),
        "mean": ms("avg") or single,
        "std": ms("std") or 0.0,
        "min": ms("min") or single,
        "max": ms("max") or single,
        "runs": int(float(measured["count"])),
        "source": "benchmark_model",
    }
    if latency["runs"] != runs:
        latency["note"] = f"benchmark_model ran {latency['runs']} of the {runs} runs asked for"
    timings = _TIMINGS.search(text)
    peak = _PEAK.search(text)
    delta = _DELTA.search(text)
    peak_mb = float(next(g for g in peak.groups() if g)) if peak else None
    return {
        "latency_ms": latency,
        "init_ms": float(timings.group(1)) / 1000.0 if timings else None,
        "peak_rss_kb": round(peak_mb * 1024) if peak_mb is not None else None,
        "memory_delta_kb": round(float(delta.group(1)) * 1024) if delta else None,
        "runtime": {"name": "benchmark_model", "version": "unknown"},
        "outputs": None,
    }

#!/usr/bin/env python3
"""edgepack's on-device runner: one standalone file, needing Python 3, numpy and a LiteRT runtime.

It is copied to the device as is, so it imports nothing from edgepack and never TensorFlow.
It loads a `.tflite` model, feeds the inputs it is given (an `.npz`, one array per input, in
input order) or seeded random inputs in each input's range, warms up, times N invokes and prints
one JSON object on stdout. With `--progress`, it writes `progress DONE TOTAL` lines on stderr. With
`--grid 1x1,2x8,...` (threads x batch), it also times each cell of the throughput grid: a fresh interpreter
with that many threads, every input resized to the batch and filled with copies of the sample, each copy's
outputs checked equal to the batch-1 outputs (a graph that fixes its batch is named, not timed wrong).
"""

import argparse
import hashlib
import json
import os
import platform
import resource
import sys
import time

import numpy as np

RUNTIMES = {"ai-edge-litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime"}
EXIT_NO_RUNTIME = 3
EXIT_MEMORY = 5
EXIT_BAD_MODEL = 6


def import_runtime(preference="auto"):
    """The LiteRT interpreter class, runtime name and version: ai_edge_litert, else tflite_runtime."""
    names = list(RUNTIMES) if preference == "auto" else [preference]
    for name in names:
        try:
            module = __import__(RUNTIMES[name] + ".interpreter", fromlist=["Interpreter"])
        except ImportError:
            continue
        return module.Interpreter, name, _version(name, module)
    sys.stderr.write(
        "error: no LiteRT runtime (%s) on this device: pip install %s\n"
        % (" or ".join(names), "tflite-runtime" if preference == "tflite-runtime" else "ai-edge-litert")
    )
    sys.exit(EXIT_NO_RUNTIME)


def probe():
    """What `edgepack devices check` reports: Python, numpy, the runtime found (or null), CPU."""
    found = None
    for name, module_name in RUNTIMES.items():
        try:
            module = __import__(module_name + ".interpreter", fromlist=["Interpreter"])
        except ImportError:
            continue
        found = {"name": name, "version": _version(name, module)}
        break
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "runtime": found,
        "cpu": cpu_description(),
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
    }


def limit_process(cpus, memory_limit):
    """Pin this process to `cpus` and cap its address space (after the imports: numpy needs room)."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))


def _version(dist, module):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # metadata may be absent on a device image
        return getattr(module, "__version__", "unknown")


ARM_PARTS = {  # "CPU part" of Arm Ltd. cores (implementer 0x41) in /proc/cpuinfo
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD40: "Neoverse-V1",
    0xD41: "Cortex-A78",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2",
    0xD4D: "Cortex-A715",
    0xD4E: "Cortex-X3",
}


def cpu_description(path="/proc/cpuinfo"):
    """A one-line CPU description from /proc/cpuinfo, falling back to the platform module.

    x86 kernels write "model name"; Arm kernels write "CPU implementer" / "CPU part" (and a
    Raspberry Pi's "Model" line), from which the core's name is looked up.
    """
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        text = ""
    return describe_cpu(text) or platform.processor() or platform.machine()


def describe_cpu(cpuinfo_text):
    """The CPU named by the text of a /proc/cpuinfo, or "" when it names none."""
    fields, parts = {}, []
    for line in cpuinfo_text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in fields:
            fields[key] = value.strip()
        if sep and key == "cpu part" and value.strip() not in parts:
            parts.append(value.strip())  # big.LITTLE: one per kind of core
    for key in ("model name", "cpu model"):
        if fields.get(key):
            return fields[key]
    core = None
    try:
        if int(fields.get("cpu implementer", ""), 16) == 0x41:
            core = " + ".join(ARM_PARTS.get(int(part, 16), "Arm part %s" % part) for part in parts)
    except ValueError:
        pass
    board = fields.get("model") or fields.get("hardware")
    if board and core:
        return "%s, %s" % (board, core)
    return board or core or ""


def make_inputs(details, seed, given):
    """The arrays to feed: the given ones (checked), or seeded random values within each dtype's range
    (zeros for an integer input that is not quantized: indices such as token ids)."""
    if given is not None:
        arrays = [given[key] for key in sorted(given.files, key=_key_order)]
        if len(arrays) != len(details):
            raise SystemExit(f"error: {len(arrays)} input array(s) given, the model has {len(details)}")
        return [np.asarray(a, dtype=d["dtype"]).reshape(d["shape"]) for a, d in zip(arrays, details)]
    rng = np.random.default_rng(seed)
    arrays = []
    for d in details:
        if np.issubdtype(d["dtype"], np.integer) and not d["quantization"][0]:
            arrays.append(np.zeros(d["shape"], dtype=d["dtype"]))  # indices (token ids): 0 is always valid
        elif np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            arrays.append(rng.integers(info.min, info.max, size=d["shape"], endpoint=True).astype(d["dtype"]))
        else:
            arrays.append(rng.random(size=d["shape"]).astype(d["dtype"]))
    return arrays


def _key_order(name):
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 0, name)


def peak_rss_kb():
    """Peak resident memory of this process in KiB (VmHWM: ru_maxrss keeps the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def percentile_summary(times_ms):
    """p50/p90/p99, mean, std, min and max of a list of latencies (ms)."""
    arr = np.asarray(times_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "runs": int(arr.size),
    }


def run(args):
    """Load, feed, warm up, time; return the result record."""
    interpreter_class, runtime, version = import_runtime(args.runtime)
    limit_process(args.cpus, args.memory_limit)
    start = time.perf_counter()
    try:
        interpreter = interpreter_class(model_path=args.model, num_threads=args.threads)
        interpreter.allocate_tensors()
    except (MemoryError, ValueError, RuntimeError) as exc:
        if args.memory_limit:  # LiteRT reports ENOMEM as "... failed with error '12'"
            sys.stderr.write(
                "error: the model does not load under the memory cap of %d MiB: %s\n"
                % (args.memory_limit // 2**20, str(exc).strip() or type(exc).__name__)
            )
            sys.exit(EXIT_MEMORY)
        sys.stderr.write("error: LiteRT cannot load the model: %s\n" % str(exc).strip())
        sys.exit(EXIT_BAD_MODEL)
    init_ms = (time.perf_counter() - start) * 1000.0
    inputs = interpreter.get_input_details()
    given = np.load(args.inputs, allow_pickle=False) if args.inputs else None
    arrays = make_inputs(inputs, args.seed, given)
    for detail, array in zip(inputs, arrays):
        interpreter.set_tensor(detail["index"], array)
    extra = [cell for cell in args.grid if cell != (args.threads, 1)]  # the (threads, 1) cell is the run's own
    progress = Progress(args.progress, (args.warmup + args.runs) * (1 + len(extra)))
    times = timed_invokes(interpreter, args.warmup, args.runs, progress)
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    throughput = None
    if args.grid:
        own = throughput_cell(args.threads, 1, times)
        cells = [
            own if cell == (args.threads, 1) else grid_cell(interpreter_class, args, cell, arrays, outputs, progress)
            for cell in args.grid
        ]
        throughput = {"cells": cells, "why": None}
    return {
        "latency_ms": percentile_summary(times),
        "init_ms": init_ms,
        "warmup": args.warmup,
        "threads": args.threads,
        "cpus": sorted(os.sched_getaffinity(0)),
        "memory_limit": args.memory_limit,
        "peak_rss_kb": peak_rss_kb(),
        "runtime": {"name": runtime, "version": version},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": cpu_description(),
        "machine": platform.machine(),
        "outputs": [
            {
                "shape": list(o.shape),
                "dtype": str(o.dtype),
                "values": o.ravel().tolist(),
                "sha256": hashlib.sha256(o.tobytes()).hexdigest(),
            }
            for o in outputs
        ],
        **({"throughput": throughput} if throughput is not None else {}),
    }


class Progress:
    """`progress DONE TOTAL` lines on stderr (about 50 of them), when asked for."""

    def __init__(self, enabled, total):
        self.enabled, self.total, self.done = enabled, total, 0

    def step(self):
        self.done += 1
        if self.enabled and (self.done % max(1, self.total // 50) == 0 or self.done == self.total):
            sys.stderr.write(f"progress {self.done} {self.total}\n")
            sys.stderr.flush()


def timed_invokes(interpreter, warmup, runs, progress):
    """`warmup` untimed invokes, then `runs` timed ones: their latencies (ms)."""
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        interpreter.invoke()
        elapsed = (time.perf_counter() - t0) * 1000.0
        if i >= warmup:
            times.append(elapsed)
        progress.step()
    return times


def throughput_cell(threads, batch, times):
    """One measured cell: the latency of an invoke (the whole batch), per inference, and inferences per second."""
    summary = percentile_summary(times)
    if not summary["mean"] > 0:  # a clock too coarse for the invoke: no rate to give, and it says so
        return {
            "threads": threads,
            "batch": batch,
            "latency_ms": summary,
            "per_inference_ms": None,
            "ips": None,
            "error": "the timer resolved no time per invoke (raise runs, or batch)",
        }
    return {
        "threads": threads,
        "batch": batch,
        "latency_ms": summary,
        "per_inference_ms": summary["mean"] / batch,
        "ips": batch * 1000.0 / summary["mean"],
        "error": None,
    }


def grid_cell(interpreter_class, args, cell, arrays, reference, progress):
    """The cell `(threads, batch)` timed on a fresh interpreter, or why it cannot run (its invokes counted
    either way, so progress reaches its total)."""
    threads, batch = cell
    done = progress.done + args.warmup + args.runs  # where progress stands after this cell, however it ends
    try:
        interpreter = interpreter_class(model_path=args.model, num_threads=threads)
        details = interpreter.get_input_details()
        if batch != 1:
            flat = [d["name"] for d in details if len(d["shape"]) == 0 or d["shape"][0] != 1]
            if flat:
                raise CellError(f"input {flat[0]} has no batch axis of 1 to repeat")
            for d in details:
                interpreter.resize_tensor_input(d["index"], [batch, *d["shape"][1:]], strict=False)
        interpreter.allocate_tensors()
        for detail, array in zip(interpreter.get_input_details(), arrays):
            interpreter.set_tensor(detail["index"], np.repeat(array, batch, axis=0))
        times = timed_invokes(interpreter, args.warmup, args.runs, progress)
        got = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        problem = batch_problem(got, reference, batch)
        if problem:
            raise CellError(problem)
    except Exception as exc:  # any failure is this cell's: the others and the latency run's record still count
        while progress.done < done:  # the invokes it never made
            progress.step()
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, CellError):
            why = f"LiteRT cannot run batch {batch} with {threads} thread(s): {why}"
        return {
            "threads": threads,
            "batch": batch,
            "latency_ms": None,
            "per_inference_ms": None,
            "ips": None,
            "error": why,
        }
    return throughput_cell(threads, batch, times)


class CellError(Exception):
    """A grid cell that cannot be measured (its message says why)."""


def batch_problem(got, reference, batch):
    """Why the outputs of `batch` copies of the sample are not each the batch-1 outputs `reference`, or None.

    Integer outputs may differ by one step (another thread split's rounding), float ones by 1e-3 relative."""
    if len(got) != len(reference):
        return f"the model gives {len(got)} outputs at batch {batch}, {len(reference)} at batch 1"
    for index, (out, ref) in enumerate(zip(got, reference)):
        batched = batch == 1 or (ref.shape[:1] == (1,) and out.shape[1:] == ref.shape[1:])
        if not batched or out.shape[:1] != ((batch,) if batch != 1 else ref.shape[:1]):
            return (
                f"output {index} is shaped {list(out.shape)} at batch {batch} (batch 1: {list(ref.shape)}): "
                "the graph does not keep the batch axis"
            )
        expected = np.repeat(ref, batch, axis=0) if batch != 1 else ref
        if np.issubdtype(ref.dtype, np.integer):
            worst = int(np.max(np.abs(out.astype(np.int64) - expected.astype(np.int64)), initial=0))
            ok = worst <= 1
        else:
            scale = float(np.max(np.abs(ref), initial=0.0))
            ok = bool(np.allclose(out, expected, rtol=1e-3, atol=1e-5 + 1e-3 * scale, equal_nan=False))
        if not ok:
            return (
                f"at batch {batch}, output {index} of the copies of the sample is not the batch-1 output "
                "(the graph mixes the batch axis, e.g. a reshape or a reduction across it)"
            )
    return None


def parse_grid(text):
    """`--grid 1x1,2x1,1x8` as [(threads, batch), ...]."""
    cells = []
    for part in text.split(","):
        threads, _, batch = part.partition("x")
        cells.append((int(threads), int(batch)))
    return cells


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--probe", action="store_true", help="report the runtime and platform, run nothing")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inputs", default=None, help=".npz with one array per model input")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--runtime", choices=["auto", *RUNTIMES], default="auto")
    parser.add_argument(
        "--cpus",
        type=lambda text: [int(c) for c in text.split(",")],
        default=None,
        help="pin to these CPUs, e.g. 0 or 0,1",
    )
    parser.add_argument("--memory-limit", type=int, default=None, help="address-space cap in bytes")
    parser.add_argument("--grid", type=parse_grid, default=[], help="throughput cells THREADSxBATCH, e.g. 1x1,4x8")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--runs and --threads must be >= 1, --warmup >= 0")
    if any(threads < 1 or batch < 1 for threads, batch in args.grid):
        parser.error("--grid cells must have threads >= 1 and batch >= 1")
    if not args.probe and not args.model:
        parser.error("give a model, or --probe")
    if args.probe:
        limit_process(args.cpus, None)
    json.dump(probe() if args.probe else run(args), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

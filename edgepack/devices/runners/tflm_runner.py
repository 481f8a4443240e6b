"""The TensorFlow Lite Micro runner: a script (Python, numpy, `tflite-micro` and runner.py beside it).

    python tflm_runner.py MODEL.tflite [--inputs INPUTS.npz] [--seed S] [--runs N] [--max-arena BYTES]
    python tflm_runner.py --probe

It runs in a child process of edgepack (TFLM's Python interpreter can abort its whole process) and
prints one JSON object on stdout:

- `arena`: the smallest tensor arena (to ALIGN bytes) with which the model allocates and invokes,
  found by bisection between a size that fails and one that works, and at that size the split
  TFLM's recording allocator reports (`head`: the planned non-persistent buffers, activations and
  scratch; `tail`: what persists, tensor structs, quantization data, kernels' buffers);
- `outputs`: each output after one invoke on the given inputs, or on the LiteRT runner's seeded
  random ones (the same arrays: its `make_inputs` is used), as the LiteRT runner writes them;
- `host_invoke_ms`: the wall time of `--runs` invokes here, with TFLM's reference kernels: a host
  figure, never a board's latency.

Exit codes: 0 ok, 2 bad arguments, 3 no tflite-micro, 6 the model does not allocate or invoke.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time

EXIT_NO_RUNTIME = 3
EXIT_BAD_MODEL = 6
ALIGN = 16
FIRST_TRY = 64 * 1024


def import_runtime():
    """The TFLM Python runtime and its version; exit 3 when it is not installed."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        sys.stderr.write(
            "error: tflite-micro is not installed (%s): pip install tflite-micro (wheels for Linux x86-64)\n" % exc
        )
        sys.exit(EXIT_NO_RUNTIME)
    try:
        from importlib.metadata import version

        found = version("tflite-micro")
    except Exception:  # noqa: BLE001 - a version is only a label here
        found = "unknown"
    return runtime, found


def probe():
    """What the host offers: Python, numpy, tflite-micro."""
    import numpy as np

    _, version = import_runtime()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "runtime": {"name": "tflite-micro", "version": version},
    }


def cpu_name(path="/proc/cpuinfo"):
    """This host's CPU model (TFLM runs here, whatever board the model is for)."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Quiet:
    """Collects what TFLM writes on fd 2 (its allocation failures, its allocation report)."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        self.file = tempfile.TemporaryFile()
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode(errors="replace")
        self.file.close()
        return False


def make_inputs(details, given, seed):
    """The arrays to feed, exactly as the LiteRT runner makes them (the given ones, or the same seeded
    random values), so that both runs see the same inputs and their outputs can be compared."""
    from runner import make_inputs as litert_inputs  # runner.py, beside this file

    described = []
    for d in details:
        scales = d["quantization_parameters"]["scales"]
        described.append(
            {"dtype": d["dtype"], "shape": d["shape"], "quantization": (float(scales[0]) if len(scales) else 0.0, 0)}
        )
    return litert_inputs(described, seed, given)


def io_counts(runtime, model):
    """(inputs, outputs) of the main subgraph (the TFLM API has no count; an index past the end aborts)."""
    graph = runtime.convert_bytearray_to_object(bytearray(model)).subgraphs[0]
    return len(graph.inputs if graph.inputs is not None else []), len(
        graph.outputs if graph.outputs is not None else []
    )


def attempt(runtime, model, size, given, inputs, seed):
    """An interpreter that allocated in `size` bytes and invoked once with the inputs, or None."""
    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=size)
        details = [interpreter.get_input_details(i) for i in range(inputs)]
        for index, array in enumerate(make_inputs(details, given, seed)):
            interpreter.set_input(array, index)
        interpreter.invoke()
    except (RuntimeError, ValueError, MemoryError):
        return None
    return interpreter


def works(runtime, model, size, given, inputs, seed):
    """Whether the model allocates and invokes in `size` bytes, tried in a forked child: at some sizes
    just short of the need TFLM crashes (SIGSEGV) instead of failing, and a crash is a failure."""
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        ok = attempt(runtime, model, size, given, inputs, seed) is not None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def smallest_arena(runtime, model, given, inputs, seed, cap):
    """(bytes, the stderr of the tries): the smallest multiple of ALIGN up to `cap` with which the model
    allocates and invokes (None when even `cap` fails); every size below it that was tried failed."""
    cap = cap // ALIGN * ALIGN
    with Quiet() as noise:
        bad, good = 0, min(FIRST_TRY, cap)
        while good is not None and not works(runtime, model, good, given, inputs, seed):
            bad, good = good, (min(cap, good * 4) if good < cap else None)
        while good is not None and good - bad > ALIGN:
            middle = (bad + good) // 2 // ALIGN * ALIGN
            if works(runtime, model, middle, given, inputs, seed):
                good = middle
            else:
                bad = middle
    return good, noise.text


def allocations(report):
    """The recording allocator's report: total, head, tail, and bytes per kind."""
    kinds: dict[str, int] = {}  # a local annotation: never evaluated, the script runs on older Pythons too
    found: dict[str, object] = {"kinds": kinds}
    for line in report.splitlines():
        if "Arena allocation" in line:
            words = line.split()
            try:
                found[words[-3]] = int(words[-2])  # "... Arena allocation head 1536 bytes"
            except (ValueError, IndexError):
                continue
        elif "' used " in line:
            name = line.split("'")[1]
            try:
                kinds[name] = int(line.split("' used ")[1].split()[0])
            except (ValueError, IndexError):
                continue
    return found


def run(args):
    import numpy as np

    runtime, version = import_runtime()
    with open(args.model, "rb") as handle:
        model = handle.read()
    given = np.load(args.inputs, allow_pickle=False) if args.inputs else None
    inputs, outputs_count = io_counts(runtime, model)
    arena, failure = smallest_arena(runtime, model, given, inputs, args.seed, args.max_arena)
    if arena is None:
        lines = [line for line in failure.splitlines() if line.strip()]
        sys.stderr.write(
            "error: the model does not allocate and invoke in TFLM with %d bytes of arena\n%s\n"
            % (args.max_arena, "\n".join(lines[-12:]))
        )
        sys.exit(EXIT_BAD_MODEL)
    with Quiet() as report:
        interpreter = attempt(runtime, model, arena, given, inputs, args.seed)
        if interpreter is not None:
            interpreter.print_allocations()
    if interpreter is None:  # allocates at the bisection's end but not again: not expected
        sys.stderr.write("error: TFLM allocated %d bytes once and not again\n%s\n" % (arena, report.text))
        sys.exit(EXIT_BAD_MODEL)
    outputs = [interpreter.get_output(i) for i in range(outputs_count)]
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000.0)
    counted = allocations(report.text)
    return {
        "arena": {
            "bytes": arena,
            "align": ALIGN,
            "fails_below": arena - ALIGN,
            "non_persistent": counted.get("head"),
            "persistent": counted.get("tail"),
            "recorded_total": counted.get("total"),
            "kinds": counted["kinds"],
        },
        "host_invoke_ms": {"p50": float(np.percentile(times, 50)), "mean": float(np.mean(times)), "runs": len(times)}
        if times
        else None,
        "runtime": {"name": "tflite-micro", "version": version},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "outputs": [
            {
                "shape": list(o.shape),
                "dtype": str(o.dtype),
                "values": o.ravel().tolist(),
                "sha256": hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest(),
            }
            for o in outputs
        ],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run a .tflite in TensorFlow Lite Micro; print one JSON object.")
    parser.add_argument("model", nargs="?")
    parser.add_argument("--inputs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-arena", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe()))
        return
    if not args.model:
        parser.error("MODEL is required")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()

"""A stand-in for TFLite's Android `benchmark_model` binary, for the adb tests (no phone here).

It takes the flags edgepack passes (--graph, --num_threads, --num_runs, --warmup_runs, --min_secs,
--warmup_min_secs), times the model with LiteRT on this machine, and prints its log on stderr in
the layout of newer benchmark_model releases (see benchmark_model_transcripts/). The test writes
it out with this interpreter's path as its #! line.
"""

import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def stats(us):
    arr = np.asarray(us)
    return (f"count={arr.size} first={int(arr[0])} curr={int(arr[-1])} min={int(arr.min())} max={int(arr.max())} "
            f"avg={arr.mean():g} std={int(arr.std())} p5={int(np.percentile(arr, 5))} "
            f"median={int(np.percentile(arr, 50))} p95={int(np.percentile(arr, 95))}")


def main(argv):
    flags = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    if "graph" not in flags:
        sys.stderr.write("ERROR: Please specify the name of your TF Lite input file with --graph\n")
        return 1
    runs, warmup, threads = int(flags.get("num_runs", 50)), int(flags.get("warmup_runs", 1)), int(flags["num_threads"])
    log = sys.stderr.write
    log(f"INFO: STARTING!\nINFO: Min num runs: [{runs}]\nINFO: Num threads: [{threads}]\n"
        f"INFO: Graph: [{flags['graph']}]\n")
    start = time.perf_counter()
    interpreter = Interpreter(model_path=flags["graph"], num_threads=threads)
    interpreter.allocate_tensors()
    init_us = (time.perf_counter() - start) * 1e6
    log(f"INFO: Initialized session in {init_us / 1000:.3f}ms.\n")

    def timed(n):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            interpreter.invoke()
            out.append((time.perf_counter() - t0) * 1e6)
        return out

    log(f"INFO: Running benchmark for at least {warmup} iterations and at least 0 seconds but terminate if "
        "exceeding 150 seconds.\n")
    warm = timed(warmup)
    log(f"INFO: {stats(warm)}\n\n")
    log(f"INFO: Running benchmark for at least {runs} iterations and at least 0 seconds but terminate if "
        "exceeding 150 seconds.\n")
    timed_runs = timed(runs)
    log(f"INFO: {stats(timed_runs)}\n\n")
    log(f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
        f"Warmup (avg): {np.mean(warm):g}, Inference (avg): {np.mean(timed_runs):g}\n")
    log("INFO: Memory footprint delta from the start of the tool (MB): init=1.5 overall=3.25\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

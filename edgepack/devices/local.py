"""The local driver: run the standalone runner in a subprocess of this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgepack.errors import StageError
from edgepack.reporting import Reporter

RUNNER = Path(__file__).with_name("runner.py")


def run_local(model: Path, *, runs: int, warmup: int, threads: int, reporter: Reporter,
              label: str, timeout_s: float = 600.0) -> dict[str, Any]:
    """Benchmark `model` with the runner in a child process; return its JSON record."""
    cmd = [sys.executable, str(RUNNER), str(model), "--runs", str(runs), "--warmup", str(warmup),
           "--threads", str(threads), "--progress"]
    with reporter.task(f"{label}: {runs} runs", warmup + runs) as task:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stderr_lines = _follow_progress(proc, task)
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            raise StageError(f"{label}: the runner did not finish in {timeout_s:.0f} s", code="device-timeout") from exc
    if proc.returncode != 0:
        tail = "\n".join(stderr_lines[-12:]) or "(no output)"
        raise StageError(f"{label}: the runner failed (exit {proc.returncode})", context=tail,
                         hint="run `edgepack validate --debug` to see the whole log", code="runner-failed")
    return json.loads(stdout)


def _follow_progress(proc: subprocess.Popen[str], task: Any) -> list[str]:
    done, other = 0, []
    for line in proc.stderr or ():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "progress":
            task.advance(int(parts[1]) - done)
            done = int(parts[1])
        else:
            other.append(line.rstrip())
    return other

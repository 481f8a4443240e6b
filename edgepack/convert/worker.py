"""The conversion worker: `python -m edgepack.convert.worker REQUEST.json`, or `--serve` (one
request path per stdin line, each answered and ended by a `done STATUS` line: the warm worker
of `edgepack.convert.pool`).

The request names the SavedModel, the convert settings, the calibration `.npz` (one array per model input), the judge of a fallback search and the output
path. Progress goes to stdout as `progress N` lines; the last stdout line is a JSON report,
`{"ok": true}` or `{"error": "..."}`. A native crash shows as the process dying by a signal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def main(request_path: str) -> int:
    """Run one conversion; exit 0 when the model was written, 1 when the converter refused."""
    request = json.loads(Path(request_path).read_text())
    from edgepack.convert.tflite import convert
    from edgepack.fsutil import atomic_write_bytes
    from edgepack.recipe.convert import ConvertSettings

    settings = ConvertSettings.model_validate(request["settings"])
    calibration = _calibration(request.get("calibration"))
    names = request.get("input_names")

    def progress(done: int) -> None:
        print(f"progress {done}", flush=True)

    def first(n: int) -> Any:
        return [a[:n] for a in calibration] if isinstance(calibration, list) else calibration[:n]

    selective = request.get("selective")
    try:
        if selective:  # keep_float / fallback: int8 with some ops in float
            from edgepack.convert.tflite import selective as convert_selective
            from edgepack.evaluate.judge import Judge

            progress(_count(calibration))
            judge = Judge.load(Path(selective["judge"]))
            flatbuffer, rows, fallback = convert_selective(
                Path(request["saved_model"]),
                settings,
                calibration,
                first(int(request.get("error_samples", 32))),
                judge,
                list(selective["layers"]),
                log=lambda line: print(f"log {line}", flush=True),
                input_names=names,
            )
            atomic_write_bytes(Path(selective["report_out"]), json.dumps(fallback).encode())
            if request.get("error_out"):
                atomic_write_bytes(Path(request["error_out"]), json.dumps(rows).encode())
        else:
            flatbuffer = convert(Path(request["saved_model"]), settings, calibration, progress, names)
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        text = str(exc).strip()
        print(json.dumps({"error": text.splitlines()[0] if text else type(exc).__name__, "detail": text[-4000:]}))
        return 1
    atomic_write_bytes(Path(request["out"]), flatbuffer)
    report: dict[str, object] = {"ok": True}
    if request.get("error_out") and not selective:
        print(json.dumps({"ok": True, "model_written": True}), flush=True)  # a debugger crash spares the model
        from edgepack.convert.tflite import quantization_error

        try:
            rows = quantization_error(
                Path(request["saved_model"]),
                settings,
                calibration,
                first(int(request.get("error_samples", 32))),
                input_names=names,
            )
            atomic_write_bytes(Path(request["error_out"]), json.dumps(rows).encode())
        except Exception as exc:  # the report is extra: the model is written; say why it is missing
            report["error_report"] = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
    print(json.dumps(report))
    return 0


def _calibration(path: str | None) -> Any:
    """The calibration sample: one array, or a list of one per model input."""
    if not path:
        return np.zeros((0,))
    with np.load(path, allow_pickle=False) as data:
        arrays = [data[f"input_{i}"] for i in range(len(data.files))]
    return arrays[0] if len(arrays) == 1 else arrays


def _count(calibration: Any) -> int:
    return len(calibration[0]) if isinstance(calibration, list) else len(calibration)


def die_with_parent(parent: int) -> None:
    """In the worker: ask the kernel to kill it when its parent dies (Linux), and leave at once if the
    parent is already gone. Called by the worker itself, so no code runs between fork and exec."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass  # not Linux: the worker still exits at the end of its stdin
    import os

    if os.getppid() != parent:
        os._exit(0)


def serve(parent: int) -> int:
    """Import the converter now, then answer one request per stdin line until its end (or its parent's)."""
    from edgepack.models.tf import load

    die_with_parent(parent)
    load()
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            status = main(path)
        except Exception as exc:  # a request the worker cannot read: said, and the worker stays up
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            status = 1
        print(f"done {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[2])) if sys.argv[1] == "--serve" else main(sys.argv[1]))

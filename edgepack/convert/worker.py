"""The conversion worker: `python -m edgepack.convert.worker REQUEST.json`.

The request names the SavedModel, the convert settings, the calibration `.npy` and the output
path. Progress goes to stdout as `progress N` lines; the last stdout line is a JSON report,
`{"ok": true}` or `{"error": "..."}`. A native crash shows as the process dying by a signal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(request_path: str) -> int:
    """Run one conversion; exit 0 when the model was written, 1 when the converter refused."""
    request = json.loads(Path(request_path).read_text())
    from edgepack.convert.tflite import convert
    from edgepack.fsutil import atomic_write_bytes
    from edgepack.recipe.schema import ConvertSettings

    settings = ConvertSettings.model_validate(request["settings"])
    calibration = np.load(request["calibration"]) if request.get("calibration") else np.zeros((0,))

    def progress(done: int) -> None:
        print(f"progress {done}", flush=True)

    selective = request.get("selective")
    try:
        if selective:  # keep_float / fallback: int8 with some ops in float
            from edgepack.convert.tflite import selective as convert_selective

            progress(len(calibration))
            samples = calibration[: int(request.get("error_samples", 32))]
            test = (np.load(selective["x_test"]), np.load(selective["y_test"]))
            flatbuffer, rows, fallback = convert_selective(
                Path(request["saved_model"]), settings, calibration, samples, test, float(selective["float_accuracy"]),
                list(selective["layers"]), log=lambda line: print(f"log {line}", flush=True))
            atomic_write_bytes(Path(selective["report_out"]), json.dumps(fallback).encode())
            if request.get("error_out"):
                atomic_write_bytes(Path(request["error_out"]), json.dumps(rows).encode())
        else:
            flatbuffer = convert(Path(request["saved_model"]), settings, calibration, progress)
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        text = str(exc).strip()
        print(json.dumps({"error": text.splitlines()[0] if text else type(exc).__name__, "detail": text[-4000:]}))
        return 1
    atomic_write_bytes(Path(request["out"]), flatbuffer)
    report: dict[str, object] = {"ok": True}
    if request.get("error_out") and not selective:
        print(json.dumps({"ok": True, "model_written": True}), flush=True)  # a debugger crash spares the model
        from edgepack.convert.tflite import quantization_error

        samples = calibration[: int(request.get("error_samples", 32))]
        try:
            rows = quantization_error(Path(request["saved_model"]), settings, calibration, samples)
            atomic_write_bytes(Path(request["error_out"]), json.dumps(rows).encode())
        except Exception as exc:  # the report is extra: the model is written; say why it is missing
            report["error_report"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Run a conversion in a worker process, so that a converter crash becomes a clear error.

TensorFlow's converter can die natively (full-int8 conversion of a GRU graph segfaults it). In a
child process that ends as a signal, reported with the tail of the converter's log, and
edgepack (and its temporary files) survive. The worker is kept warm between conversions
(`convert.pool`).
"""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.convert.tflite import CALIBRATED_MODES
from edgepack.errors import StageError
from edgepack.progress import Reporter
from edgepack.recipe.convert import ConvertSettings

TIMEOUT_S = 3600.0


def convert_isolated(
    saved_model: Path,
    settings: ConvertSettings,
    calibration: Any,
    out: Path,
    reporter: Reporter,
    timeout_s: float = TIMEOUT_S,
    error_out: Path | None = None,
    selective: dict[str, Any] | None = None,
    input_names: list[str] | None = None,
) -> str | None:
    """Convert the SavedModel in a worker process and write the `.tflite` to `out`.

    `calibration` is one array, or a list of one per model input (`input_names` in the Keras order).
    With `error_out`, the worker also writes the per-layer quantization error there (a JSON list);
    returns why it could not, or None. With `selective` (a `tasks.judge.Judge`, the Keras layer names
    and `report_out`), it keeps ops in float per `keep_float` / `fallback` and writes its report to
    `report_out`.
    """
    calibrated = settings.mode in CALIBRATED_MODES
    arrays = calibration if isinstance(calibration, list) else [calibration]
    with tempfile.TemporaryDirectory(prefix="edgepack-convert-") as tmp:
        # absolute paths: the warm worker keeps the working directory it was started in
        request: dict[str, Any] = {
            "saved_model": str(saved_model.resolve()),
            "out": str(out.resolve()),
            "settings": settings.model_dump(mode="json"),
            "calibration": None,
            "error_out": str(error_out.resolve()) if error_out else None,
            "error_samples": settings.error_samples,
            "selective": None,
            "input_names": input_names,
        }
        if selective is not None:
            judge_path = Path(tmp) / "judge.npz"
            selective["judge"].save(judge_path)
            request["selective"] = {
                "judge": str(judge_path),
                "layers": selective["layers"],
                "report_out": str(Path(selective["report_out"]).resolve()),
            }
        if calibrated:
            request["calibration"] = str(Path(tmp) / "calibration.npz")
            with open(request["calibration"], "wb") as handle:
                np.savez(handle, **{f"input_{i}": a for i, a in enumerate(arrays)})
        (Path(tmp) / "request.json").write_text(json.dumps(request))
        label = f"convert {settings.mode}" + (": calibrate" if calibrated else "")
        with reporter.task(label, len(arrays[0]) if calibrated else None) as task:
            code, report, log = _run_worker(Path(tmp) / "request.json", task, timeout_s)
    if code != 0 and report.get("model_written") and out.is_file():  # the optional debugger died, natively
        return f"the quantization debugger crashed (exit {code}); the model was written"
    _check(code, report, log, settings.mode)
    return report.get("error_report")


def _run_worker(request: Path, task: Any, timeout_s: float) -> tuple[int, dict[str, Any], str]:
    """One request to the warm worker (`convert.pool`): its status, report and log lines."""
    from edgepack.convert.pool import WORKER

    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        if line.startswith("progress "):
            task.advance(int(line.split()[1]) - done)
            done = int(line.split()[1])
        elif line.startswith("log "):  # the fallback search says where it is
            task.advance(0, description=line[4:].strip())

    try:
        return WORKER.convert(str(request), on_line, timeout_s)
    except StageError as exc:
        raise StageError(
            f"the TFLite converter did not finish in {timeout_s:.0f} s", code=exc.code, hint=exc.hint
        ) from exc
    except BaseException:
        WORKER.stop()  # an interrupt mid-conversion: the next conversion starts clean
        raise


def _check(code: int, report: dict[str, Any], log: str, mode: str) -> None:
    tail = "\n".join(log.strip().splitlines()[-12:]) or "(no output)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        raise StageError(
            f"the TFLite converter crashed ({name}) converting to {mode}",
            context=tail,
            hint=(
                "the worker was killed (SIGKILL): out of memory is the usual cause; a smaller "
                "convert.calibration_samples helps, or more memory"
                if name == "SIGKILL"
                else "some layers (GRU, LSTM in full int8) crash the converter: try convert.mode = 'dynamic' "
                "or 'float16', or replace the layer"
            ),
            code="converter-crashed",
        )
    if code != 0 or "ok" not in report:
        first = report.get("error") or f"the conversion worker exited with status {code}"
        raise StageError(
            f"TFLite conversion to {mode} failed: {first}",
            context=f"convert.mode = '{mode}'" if report.get("error") else tail,
            hint="an op without an integer kernel needs convert.mode = 'dynamic' or 'float16'",
            code="convert-failed",
        )

"""Golden vectors: a few test inputs with the outputs host LiteRT gave for the shipped model, and how far a
device's outputs may be from them; run again on a device (`edgepack verify BUNDLE --on DEVICE`).

`golden.npz` holds `input_I` (GOLDEN_SAMPLES invokes' worth, stacked on the batch axis, in the tensor's type),
`output_J` (each invoke's output J, stacked), `atol` and `rtol` (one per output), `output_names` and
`invokes` (how many samples). The tolerance rule, from the output's quantization step: a quantized integer
output may differ by GOLDEN_STEPS (4 LSB, in its integer units: TFLM's reference kernels differ by up to 3);
a float output dequantized from an int8 tensor by GOLDEN_STEPS x that tensor's scale (plus float rounding); a float model's outputs within rtol 1e-4 / atol 1e-5 (another CPU's
kernels round differently); a plain integer output exactly. A value is within when |got - expected| <=
atol + rtol x |expected|. The zip is written with fixed entry dates, so the same model gives the same bytes.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import BadInputError
from edgepack.progress import Reporter

GOLDEN_FILE = "golden.npz"
GOLDEN_SAMPLES = 4
GOLDEN_STEPS = 4  # steps a device may differ from LiteRT (TFLM: up to 3 LSB on the tiny digits model)
FLOAT_RTOL = 1e-4
FLOAT_ATOL = 1e-5
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def golden_tolerances(model: Path) -> tuple[list[float], list[float]]:
    """Per output of `model`: the absolute and relative tolerance of the rule above."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.devices.drivers.tflm import output_tolerances

    info = read_model(model.read_bytes())
    atol, rtol = [], []
    for index, steps in zip(info.outputs, output_tolerances(model, GOLDEN_STEPS)):
        dtype = info.tensors[index].dtype
        if dtype.startswith(("int", "uint")):
            atol.append(steps)  # GOLDEN_STEPS LSB for a quantized output, 0 (exact) for a plain integer one
            rtol.append(0.0)
        elif steps:  # float I/O of an int8 model: the step of the tensor it is dequantized from
            atol.append(steps * (1 + 1e-6) + 1e-7)
            rtol.append(0.0)
        else:
            atol.append(FLOAT_ATOL)
            rtol.append(FLOAT_RTOL)
    return atol, rtol


def golden_arrays(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """golden.npz's arrays: `inputs` (`ordered_samples`) run on `model` by host LiteRT, one invoke per sample,
    the outputs in the model's output order (the device runners' order), the tolerances per output."""
    from edgepack.litert import interpreter

    interp = interpreter(model)
    details = interp.get_input_details()
    batches = [max(1, int(d["shape"][0])) for d in details]  # each input's own batch
    count = min(len(inputs[f"input_{i}"]) // b for i, b in enumerate(batches))
    if count == 0:
        return {}  # fewer test samples than one batch: no golden vectors
    outputs: list[list[np.ndarray]] = [[] for _ in interp.get_output_details()]
    for k in range(count):
        for i, (d, b) in enumerate(zip(details, batches)):
            interp.set_tensor(d["index"], inputs[f"input_{i}"][k * b : (k + 1) * b])
        interp.invoke()
        for j, d in enumerate(interp.get_output_details()):
            outputs[j].append(np.array(interp.get_tensor(d["index"])))
    atol, rtol = golden_tolerances(model)
    names = [str(d["name"]) for d in interp.get_output_details()]
    return {
        **{f"input_{i}": inputs[f"input_{i}"][: count * b] for i, b in enumerate(batches)},
        **{f"output_{j}": np.concatenate(o) for j, o in enumerate(outputs)},
        "atol": np.asarray(atol, dtype=np.float64),
        "rtol": np.asarray(rtol, dtype=np.float64),
        "output_names": np.asarray(names, dtype=np.str_),
        "invokes": np.asarray(count, dtype=np.int64),
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A `.npz` of `arrays` that np.load reads, written deterministically: entries sorted, dates fixed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            array = io.BytesIO()
            np.lib.format.write_array(array, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, array.getvalue())
    return buffer.getvalue()


def read_golden(data: bytes) -> dict[str, np.ndarray]:
    """golden.npz's arrays (no pickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def output_count(golden: dict[str, np.ndarray]) -> int:
    """How many outputs golden.npz holds."""
    return sum(1 for name in golden if name.startswith("output_") and name != "output_names")


def compare(golden: dict[str, np.ndarray], sample: int, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outputs of golden invoke `sample` a device gave (runner records) against golden's: one row per
    output (name, index, ok, max_abs_diff), the first element beyond the tolerance named where one is."""
    rows = []
    names = [str(n) for n in golden["output_names"]]
    count = output_count(golden)
    if len(outputs) != count:
        return [{"output": 0, "name": names[0] if names else "", "ok": False, "why": f"{len(outputs)} outputs"}]
    for j in range(count):
        stacked = golden[f"output_{j}"]
        rows_per = len(stacked) // int(golden["invokes"])
        expected = stacked[sample * rows_per : (sample + 1) * rows_per].astype(np.float64).ravel()
        got = np.asarray(outputs[j]["values"], dtype=np.float64).ravel()
        row: dict[str, Any] = {"output": j, "name": names[j], "sample": sample}
        if got.shape != expected.shape:
            rows.append({**row, "ok": False, "why": f"{got.size} values, golden has {expected.size}"})
            continue
        atol, rtol = float(golden["atol"][j]), float(golden["rtol"][j])
        diff = np.abs(got - expected)
        beyond = np.flatnonzero(~(diff <= atol + rtol * np.abs(expected)))  # a NaN or inf is beyond too
        finite = bool(np.isfinite(diff).all())
        largest = (float(diff.max()) if diff.size else 0.0) if finite else None  # None: a NaN/inf (JSON has none)
        row.update(ok=not beyond.size, max_abs_diff=largest, atol=atol, rtol=rtol)
        if beyond.size:
            k = int(beyond[0])
            row.update(index=k, expected=_number(expected[k]), got=_number(got[k]))
        rows.append(row)
    return rows


def run_golden(device: Any, model: bytes, golden: dict[str, np.ndarray], reporter: Reporter) -> dict[str, Any]:
    """golden's inputs run on `device` (its driver, as validation runs it: one invoke per sample) with `model`
    (the bundle's file); `ok`, each sample's rows (`compare`) and the first mismatch's line (`why`)."""
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers import run_device

    inputs = sorted((n for n in golden if n.startswith("input_")), key=lambda n: int(n.split("_")[1]))
    rows: list[dict[str, Any]] = []
    samples = int(golden["invokes"])
    with tempfile.TemporaryDirectory(prefix="edgepack-golden-") as tmp:
        folder = Path(tmp)
        (folder / "model.tflite").write_bytes(model)
        per = {n: len(golden[n]) // samples for n in inputs}
        for k in range(samples):
            path = folder / f"golden_{k}.npz"
            path.write_bytes(npz_bytes({n: golden[n][k * per[n] : (k + 1) * per[n]] for n in inputs}))
            req = RunRequest(folder / "model.tflite", path, 1, 0, 1, 0, work_dir=folder)
            record = run_device(device, req, reporter, f"verify golden {k + 1}/{samples} on {device.name}")
            if record.get("outputs") is None:  # a benchmark binary: timings only
                raise BadInputError(
                    f"device '{device.name}' ran the golden vectors but returned no outputs to compare",
                    context=f"verify --on {device.name}",
                    code="golden-not-comparable",
                    hint="use a profile whose runner returns outputs (the Python LiteRT runner, not benchmark_model)",
                )
            rows += compare(golden, k, record["outputs"])
    bad = next((r for r in rows if not r["ok"]), None)
    result: dict[str, Any] = {"ok": bad is None, "device": device.name, "samples": samples, "outputs": rows}
    if bad is not None:
        result["why"] = mismatch_line(bad)
    return result


def mismatch_line(row: dict[str, Any]) -> str:
    """One mismatch as a sentence: the output (index and name), the sample, the element, expected and got."""
    where = f"output {row['output']} ({row['name']}), golden sample {row.get('sample', 0)}"
    if "index" not in row:
        return f"{where}: {row.get('why', 'differs')}"
    return (
        f"{where}, element {row['index']}: expected {_text(row['expected'])}, got {_text(row['got'])} "
        f"(tolerance atol {row['atol']:g} + rtol {row['rtol']:g})"
    )


def _number(value: float) -> float | str:
    """A value for the report: a float, or "nan" / "inf" / "-inf" (JSON has no such numbers)."""
    return float(value) if np.isfinite(value) else str(float(value))


def _text(value: float | str) -> str:
    return f"{value:g}" if isinstance(value, float) else value

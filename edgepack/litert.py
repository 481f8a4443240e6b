"""In-process LiteRT helpers: tensor details, input quantization, accuracy of a `.tflite`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import BadInputError
from edgepack.reporting import Reporter


def interpreter(model: Path, threads: int = 1) -> Any:
    """A LiteRT interpreter for `model`, tensors allocated; a bad file is a clear error."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(model), num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise BadInputError(f"{model}: LiteRT cannot load this model: {exc}",
                            hint="is it a .tflite file?", code="model-invalid") from exc
    return interp


def interpreter_from_bytes(model: bytes, threads: int = 1) -> Any:
    """A LiteRT interpreter for a model held in memory, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=model, num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise BadInputError(f"LiteRT cannot load this model: {exc}", code="model-invalid") from exc
    return interp


def tensor_records(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Name, shape, dtype and per-tensor quantization (scale, zero point) of each tensor."""
    records = []
    for d in details:
        scale, zero_point = d["quantization"]
        quantized = scale != 0.0
        records.append({
            "name": d["name"], "index": int(d["index"]), "shape": [int(s) for s in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(scale) if quantized else None,
            "zero_point": int(zero_point) if quantized else None,
        })
    return records


def model_tensors(model: Path) -> dict[str, list[dict[str, Any]]]:
    """The model's input and output tensor records, as LiteRT reports them."""
    interp = interpreter(model)
    return {"inputs": tensor_records(interp.get_input_details()),
            "outputs": tensor_records(interp.get_output_details())}


def to_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Quantize normalized float inputs for an integer input tensor (identity for float inputs)."""
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def from_output(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Dequantize an integer output tensor to float (identity for float outputs)."""
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def tflite_accuracy(model: Path, x: np.ndarray, y: np.ndarray, reporter: Reporter, label: str) -> float:
    """Top-1 accuracy of a single-input classifier `.tflite` on (x, y), one sample per invoke."""
    interp = interpreter(model)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    correct = 0
    with reporter.task(label, len(x)) as task:
        for sample, label_id in zip(x, y):
            interp.set_tensor(inp["index"], to_input(sample[None, ...], inp))
            interp.invoke()
            correct += int(np.argmax(from_output(interp.get_tensor(out["index"]), out)) == label_id)
            task.advance(1)
    return correct / len(x)


_PARTITIONS = """
import json, sys
from ai_edge_litert.interpreter import Interpreter
interp = Interpreter(model_path=sys.argv[1], num_threads=1)
interp.allocate_tensors()
ops = interp._get_ops_details()
print(json.dumps({"partitions": sum(1 for op in ops if op["op_name"] == "DELEGATE")}))
"""


def xnnpack_partitions(model: Path, timeout_s: float = 120.0) -> dict[str, Any]:
    """How many XNNPACK partitions LiteRT forms for `model` on this machine (its default delegate).

    Each partition is one delegate node in the execution plan; ops between partitions run on the
    reference kernels. Measured in a child process: a model that crashes the native runtime must
    not take edgepack down. {"partitions": N} or {"partitions": None, "error": why}.
    """
    import subprocess
    import sys

    try:
        proc = subprocess.run([sys.executable, "-c", _PARTITIONS, str(model)], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"partitions": None, "error": f"LiteRT did not load it in {timeout_s:g} s"}
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
        why = lines[-1] if lines else f"exit {proc.returncode}"
        return {"partitions": None, "error": f"LiteRT cannot load it here: {why}"}
    return {"partitions": int(json.loads(proc.stdout.strip().splitlines()[-1])["partitions"])}

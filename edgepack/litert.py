"""In-process LiteRT helpers: tensor details, input quantization, accuracy of a `.tflite`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import BadInputError
from edgepack.progress import Reporter


def interpreter(model: Path, threads: int = 1) -> Any:
    """A LiteRT interpreter for `model`, tensors allocated; a bad file is a clear error."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(model), num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise BadInputError(
            f"{model}: LiteRT cannot load this model: {exc}", hint="is it a .tflite file?", code="model-invalid"
        ) from exc
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
        records.append(
            {
                "name": d["name"],
                "index": int(d["index"]),
                "shape": [int(s) for s in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name,
                "scale": float(scale) if quantized else None,
                "zero_point": int(zero_point) if quantized else None,
            }
        )
    return records


def model_tensors(model: Path) -> dict[str, list[dict[str, Any]]]:
    """The model's input and output tensor records, as LiteRT reports them."""
    interp = interpreter(model)
    return {
        "inputs": tensor_records(interp.get_input_details()),
        "outputs": tensor_records(interp.get_output_details()),
    }


def to_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Quantize normalized float inputs for a quantized integer input tensor; a plain integer tensor
    (token ids: no scale) takes the values as they are; a float tensor, cast."""
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    if not scale:
        return np.clip(np.round(x), info.min, info.max).astype(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def from_output(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Dequantize an integer output tensor to float (identity for float outputs)."""
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def io_order(
    interp: Any, input_names: Sequence[str] | None = None, input_shapes: Sequence[Sequence[int]] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The interpreter's input and output details in the Keras model's order."""
    return input_order(interp, input_names, input_shapes), output_order(interp)


def _signature(interp: Any) -> dict[str, Any]:
    try:
        signatures = interp._get_full_signature_list()
    except (AttributeError, RuntimeError, ValueError):
        signatures = {}
    return next(iter(signatures.values())) if len(signatures) == 1 else {}


def input_order(
    interp: Any, names: Sequence[str] | None = None, shapes: Sequence[Sequence[int]] | None = None
) -> list[dict[str, Any]]:
    """The input details in the Keras model's order. The converter orders a SavedModel's tensors by its
    own rules, so the one serving signature is read (inputs by the Keras input names); without names
    that match, by shape when each shape is one input's; a model with several inputs that neither
    tells apart is a `BadInputError` (feeding them in the file's order could feed the wrong ones)."""
    inputs = interp.get_input_details()
    if len(inputs) < 2:
        return inputs
    signature = _signature(interp).get("inputs", {})
    by_index = {d["index"]: d for d in inputs}
    if names and len(names) == len(inputs) and set(names) <= set(signature):
        return [by_index[signature[name]] for name in names]
    if shapes and len(shapes) == len(inputs):
        wanted = [tuple(int(v) for v in shape) for shape in shapes]
        found = [[d for d in inputs if tuple(int(v) for v in d["shape"][1:]) == want] for want in wanted]
        if all(len(f) == 1 for f in found) and len({f[0]["index"] for f in found}) == len(inputs):
            return [f[0] for f in found]
    raise BadInputError(
        f"cannot tell which of the model's {len(inputs)} inputs takes which array: its signature "
        f"names {sorted(signature) or 'none'}, the data's inputs are {list(names or [])}",
        hint="give the inputs distinct shapes, or convert from a SavedModel whose signature names the Keras inputs",
        code="model-mismatch",
    )


def output_order(interp: Any) -> list[dict[str, Any]]:
    """The output details in the Keras model's order: by the export's `output_N` signature names (several
    outputs come out of the converter shuffled); one without them is a `BadInputError`."""
    outputs = interp.get_output_details()
    if len(outputs) < 2:
        return outputs
    by_index = {d["index"]: d for d in outputs}
    numbered = {
        int(m.group(1)): index
        for name, index in _signature(interp).get("outputs", {}).items()
        if (m := re.fullmatch(r"output_(\d+)", name))
    }
    if len(numbered) == len(outputs) and sorted(numbered) == list(range(len(outputs))):
        return [by_index[numbered[i]] for i in range(len(outputs))]
    raise BadInputError(
        f"cannot tell the order of the model's {len(outputs)} outputs: its signature does not name "
        "them output_0..output_N",
        code="model-mismatch",
        hint="convert from the SavedModel Keras exports (model.export), whose signature names them",
    )


def tflite_predict(
    model: Path | bytes, x: Any, reporter: Reporter, label: str, input_names: Sequence[str] | None = None
) -> list[np.ndarray]:
    """A `.tflite`'s outputs (dequantized to float) on x (one array, or one per input in the Keras
    model's input order), one sample per invoke; one array per output, in the Keras model's order."""
    interp = interpreter(model) if isinstance(model, Path) else interpreter_from_bytes(model)
    arrays = x if isinstance(x, (list, tuple)) else [x]
    inputs, outputs = io_order(interp, input_names, [a.shape[1:] for a in arrays])
    if len(arrays) != len(inputs):
        raise BadInputError(
            f"the model has {len(inputs)} input(s), the data {len(arrays)}",
            code="model-mismatch",
            hint="give one dataset.x_key per model input",
        )
    results: list[list[np.ndarray]] = [[] for _ in outputs]
    with reporter.task(label, len(arrays[0])) as task:
        for i in range(len(arrays[0])):
            for detail, array in zip(inputs, arrays):
                interp.set_tensor(detail["index"], to_input(array[i : i + 1], detail))
            interp.invoke()
            for out, detail in zip(results, outputs):
                out.append(from_output(interp.get_tensor(detail["index"]), detail))
            task.advance(1)
    return [np.concatenate(out) for out in results]


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
        proc = subprocess.run(
            [sys.executable, "-c", _PARTITIONS, str(model)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"partitions": None, "error": f"LiteRT did not load it in {timeout_s:g} s"}
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
        why = lines[-1] if lines else f"exit {proc.returncode}"
        return {"partitions": None, "error": f"LiteRT cannot load it here: {why}"}
    return {"partitions": int(json.loads(proc.stdout.strip().splitlines()[-1])["partitions"])}

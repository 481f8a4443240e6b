"""What a `.tflite` holds and computes, read without TensorFlow: its tensors, op histogram, per-op MACs and
parameters, peak activation memory, float ops, which ops the GPU delegate takes, and (in a child process) how LiteRT's XNNPACK partitions it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tflite_report(path: Path, runtime: bool = True) -> dict[str, Any]:
    """The inspection report of the `.tflite` at `path` as plain data; a bad file is a `ModelError`."""
    from edgepack.analyze.flatbuffer import read_model_file
    from edgepack.analyze.gpu_ops import gpu_compatibility
    from edgepack.analyze.graph import analyze, tensor_bytes

    data, model = read_model_file(path)
    graph = analyze(model)

    def tensor(index: int) -> dict[str, Any]:
        t = model.tensors[index]
        quant = None
        if t.quantized:
            quant = (
                {"scale": t.scales[0], "zero_point": t.zero_points[0] if t.zero_points else 0}
                if len(t.scales) == 1
                else {"scales": len(t.scales), "axis": t.quantized_dimension}
            )
        return {
            "index": index,
            "name": t.name,
            "shape": list(t.shape),
            "dtype": t.dtype,
            "quantization": quant,
            "bytes": tensor_bytes(t),
        }

    peak_op = graph.activation_peak_op
    report: dict[str, Any] = {
        "model": str(path),
        "size_bytes": len(data),
        "inputs": [tensor(i) for i in model.inputs],
        "outputs": [tensor(i) for i in model.outputs],
        "ops": len(graph.ops),
        "histogram": graph.histogram,
        "macs": graph.total_macs,
        "params": graph.total_params,
        "weight_bytes": graph.weight_bytes,
        "activation_memory": {
            "peak_bytes": graph.activation_peak_bytes,
            "at_op": peak_op,
            "at": graph.ops[peak_op].op if peak_op is not None else None,
        },
        "compute": graph.compute,
        "float_ops": [{"index": i, "op": graph.ops[i].op} for i in graph.float_ops],
        "gpu_delegate": gpu_compatibility(model).to_dict(),
        "operators": [op.to_dict(model.tensors) for op in graph.ops],
    }
    if runtime:
        from edgepack.litert import xnnpack_partitions

        report["xnnpack"] = xnnpack_partitions(path)
    return report

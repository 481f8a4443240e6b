"""What a `.tflite` computes, from the flatbuffer alone (no TensorFlow, no interpreter).

Per operator: its type, input and output tensors, parameters (constant elements), options, and
multiply-accumulates (MACs: convolutions, depthwise and transposed convolutions, fully-connected
and batch matmul layers; elementwise ops, pooling and the rest count 0, as MAC figures usually
do). For the model: the op histogram, totals, the float ops in an otherwise integer model, and the
peak activation memory from tensor lifetimes: an activation (a graph input or an op's output)
lives from the op that writes it (or the start) to the last op that reads it (or the end, for a
graph output); the peak is the largest sum of live activation bytes at any op. That is the least
tensor arena a microcontroller build needs for activations (TFLite Micro's planner reports the
same figure when it packs without gaps).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.analyze.flatbuffer import ModelInfo, OperatorInfo, TensorInfo

_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_QUANT_OPS = {"QUANTIZE", "DEQUANTIZE"}
_MAC_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}
_INTEGER = {"int8", "uint8", "int16", "int4"}
_FLOAT = {"float32", "float16", "float64"}


@dataclass(frozen=True)
class OpReport:
    """One operator: what it is, what it reads and writes, its weights and work."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: int
    macs: int
    options: dict[str, Any]
    float_compute: bool

    def to_dict(self, tensors: tuple[TensorInfo, ...]) -> dict[str, Any]:
        """Plain data for `--json`, with the tensors' names, shapes and types."""

        def describe(indices: tuple[int, ...]) -> list[dict[str, Any]]:
            return [
                {
                    "index": i,
                    "name": tensors[i].name,
                    "shape": list(tensors[i].shape),
                    "dtype": tensors[i].dtype,
                    "constant": tensors[i].data is not None,
                }
                for i in indices
                if i >= 0
            ]

        return {
            "index": self.index,
            "op": self.op,
            "inputs": describe(self.inputs),
            "outputs": describe(self.outputs),
            "params": self.params,
            "macs": self.macs,
            "options": self.options,
            "float": self.float_compute,
        }


@dataclass(frozen=True)
class GraphReport:
    """The whole main subgraph."""

    ops: tuple[OpReport, ...]
    histogram: dict[str, int]
    total_macs: int
    total_params: int
    weight_bytes: int
    activation_peak_bytes: int
    activation_peak_op: int | None
    integer_model: bool
    compute: str  # "integer", "dynamic range", "float16 weights" or "float"
    float_ops: tuple[int, ...]  # float compute in an integer model (QUANTIZE/DEQUANTIZE excluded)


def analyze(model: ModelInfo) -> GraphReport:
    """Ops, MACs, parameters, the activation peak and the float islands of `model`."""
    integer = _is_integer_model(model)
    ops = tuple(_op_report(model, op) for op in model.operators)
    peak, at = activation_peak(model)
    return GraphReport(
        ops=ops,
        histogram=dict(Counter(op.op for op in ops).most_common()),
        total_macs=sum(op.macs for op in ops),
        total_params=sum(op.params for op in ops),
        weight_bytes=sum(tensor_bytes(t) for t in model.tensors if t.data is not None),
        activation_peak_bytes=peak,
        activation_peak_op=at,
        integer_model=integer,
        compute=_compute(model, integer),
        float_ops=tuple(op.index for op in ops if integer and op.float_compute and op.op not in _QUANT_OPS),
    )


def tensor_bytes(tensor: TensorInfo) -> int:
    """Bytes the tensor takes (int4: two values a byte; strings and resources: 0, unknown)."""
    if tensor.dtype == "int4":
        return (tensor.size + 1) // 2
    try:
        return tensor.size * np.dtype(tensor.dtype).itemsize
    except TypeError:
        return 0


def lifetimes(model: ModelInfo) -> dict[int, tuple[int, int]]:
    """Per activation tensor: (first op index it is live at, last op index), by tensor index."""
    last = len(model.operators) - 1
    spans: dict[int, list[int]] = {i: [0, 0] for i in model.inputs}
    for op in model.operators:
        for i in op.outputs:
            if i >= 0 and model.tensors[i].data is None:
                spans.setdefault(i, [op.index, op.index])
    for op in model.operators:
        for i in op.inputs:
            if i in spans:
                spans[i][1] = max(spans[i][1], op.index)
    for i in model.outputs:
        if i in spans:
            spans[i][1] = last
    return {i: (start, end) for i, (start, end) in spans.items()}


def activation_peak(model: ModelInfo) -> tuple[int, int | None]:
    """The largest sum of live activation bytes over the ops, and the op where it is reached."""
    if not model.operators:
        return sum(tensor_bytes(model.tensors[i]) for i in model.inputs), None
    live = np.zeros(len(model.operators), dtype=np.int64)
    for i, (start, end) in lifetimes(model).items():
        live[start : end + 1] += tensor_bytes(model.tensors[i])
    at = int(np.argmax(live))
    return int(live[at]), at


@dataclass(frozen=True)
class LiveTensor:
    """An activation live at the peak: its size and the op that writes it (None: a graph input)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    bytes: int
    producer: int | None
    producer_op: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "bytes": self.bytes,
            "layer": layer_of(self.name),
            "producer": self.producer,
            "producer_op": self.producer_op,
        }


@dataclass(frozen=True)
class PeakMemory:
    """Where activation memory peaks: the op, its layer (the name of the tensor it writes, which carries
    the Keras layer's), and every activation live there, largest first (their bytes add up to the peak)."""

    bytes: int
    op_index: int | None
    op: str | None
    layer: str | None
    live: tuple[LiveTensor, ...]

    def to_dict(self, largest: int = 5) -> dict[str, Any]:
        """Plain data for the manifest: the peak, its op and layer, the `largest` tensors live there."""
        return {
            "activation_peak_bytes": self.bytes,
            "peak_op": self.op,
            "peak_op_index": self.op_index,
            "peak_layer": self.layer,
            "live_tensors": len(self.live),
            "largest_tensors": [t.to_dict() for t in self.live[:largest]],
        }


def layer_of(tensor_name: str) -> str:
    """The Keras layer a converter's tensor name comes from: its first fused name without the op
    ("model/conv2/Relu;model/conv2/BiasAdd" -> "model/conv2")."""
    first = tensor_name.split(";")[0]
    return first.rsplit("/", 1)[0] if "/" in first else first


def peak_memory(model: ModelInfo) -> PeakMemory:
    """The activation peak of `model`, the op it is reached at (and its layer) and the tensors live there."""
    peak, at = activation_peak(model)
    producer = {out: op for op in model.operators for out in op.outputs}
    spans = lifetimes(model)
    if at is None:
        live_at = [i for i in model.inputs]
    else:
        live_at = [i for i, (start, end) in spans.items() if start <= at <= end]
    live = []
    for i in live_at:
        tensor, op = model.tensors[i], producer.get(i)
        live.append(
            LiveTensor(
                i,
                tensor.name,
                tensor.shape,
                tensor.dtype,
                tensor_bytes(tensor),
                None if op is None else op.index,
                None if op is None else op.op_name,
            )
        )
    live.sort(key=lambda t: (-t.bytes, t.index))
    peak_op = None if at is None else model.operators[at]
    layer = None
    if peak_op is not None:
        written = [i for i in peak_op.outputs if i >= 0]
        layer = layer_of(model.tensors[written[0]].name) if written else None
    return PeakMemory(peak, at, None if peak_op is None else peak_op.op_name, layer, tuple(live))


def macs(model: ModelInfo, op: OperatorInfo) -> int:
    """Multiply-accumulates of one operator (0 for the ops that do none)."""
    t = model.tensors

    def shape(position: int) -> tuple[int, ...]:
        index = op.inputs[position] if position < len(op.inputs) else -1
        return t[index].shape if index >= 0 else ()

    out = t[op.outputs[0]].size if op.outputs and op.outputs[0] >= 0 else 0
    name = op.op_name
    if name == "CONV_2D" and len(shape(1)) == 4:
        _, kh, kw, cin = shape(1)
        return out * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D" and len(shape(1)) == 4:
        return out * shape(1)[1] * shape(1)[2]
    if name == "CONV_3D" and len(shape(1)) == 5:
        kd, kh, kw, cin, _ = shape(1)
        return out * kd * kh * kw * cin
    if name == "FULLY_CONNECTED" and len(shape(1)) == 2:
        return out * shape(1)[1]
    if name == "TRANSPOSE_CONV" and len(shape(1)) == 4:
        cout, kh, kw, _ = shape(1)
        return math.prod(shape(2)) * kh * kw * cout
    if name == "BATCH_MATMUL" and len(shape(0)) >= 2:
        a = shape(0)
        return out * (a[-2] if op.options.get("adjX") else a[-1])
    return 0


def _op_report(model: ModelInfo, op: OperatorInfo) -> OpReport:
    constants = [model.tensors[i] for i in op.inputs if i >= 0 and model.tensors[i].data is not None]
    moving = [model.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0 and model.tensors[i].data is None]
    return OpReport(
        index=op.index,
        op=(op.custom_code or "CUSTOM") if op.op_name == "CUSTOM" else op.op_name,
        inputs=op.inputs,
        outputs=op.outputs,
        params=sum(c.size for c in constants),
        macs=macs(model, op),
        options=_options(op),
        float_compute=any(t.dtype in _FLOAT for t in moving),
    )


def _options(op: OperatorInfo) -> dict[str, Any]:
    """The options that say what an op does, readable: stride, padding, dilation, activation..."""
    o = op.options
    shown: dict[str, Any] = {}
    if "strideH" in o or "strideW" in o:
        shown["stride"] = f"{o.get('strideH', 1)}x{o.get('strideW', 1)}"
    if "filterHeight" in o:
        shown["filter"] = f"{o['filterHeight']}x{o['filterWidth']}"
    if "padding" in o:
        shown["padding"] = _PADDING.get(o["padding"], o["padding"])
    if o.get("dilationHFactor", 1) != 1 or o.get("dilationWFactor", 1) != 1:
        shown["dilation"] = f"{o['dilationHFactor']}x{o['dilationWFactor']}"
    if o.get("depthMultiplier", 1) not in (0, 1):
        shown["depth_multiplier"] = o["depthMultiplier"]
    activation = _ACTIVATION.get(o.get("fusedActivationFunction", 0), o.get("fusedActivationFunction"))
    if activation:
        shown["activation"] = activation
    for key in ("axis", "beta", "alpha", "keepDims", "adjX", "adjY", "alignCorners"):
        if key in o and o[key] is not None and o[key] is not False:
            shown[key] = o[key]
    return shown


def _compute(model: ModelInfo, integer: bool) -> str:
    """What the arithmetic is: integer, float with int8 weights (dynamic range), float16 weights, float."""
    if integer:
        moving = {
            t.dtype
            for op in model.operators
            if op.op_name in _MAC_OPS
            for t in (model.tensors[i] for i in op.inputs if i >= 0)
            if t.data is None
        }
        return "integer (int16 activations)" if "int16" in moving else "integer"
    weights = {
        model.tensors[i].dtype
        for op in model.operators
        if op.op_name not in _QUANT_OPS
        for i in op.inputs
        if i >= 0 and model.tensors[i].data is not None and model.tensors[i].size > 1
    }
    if weights & {"int8", "int4"}:
        return "dynamic range"
    dequantized = {
        model.tensors[op.inputs[0]].dtype
        for op in model.operators
        if op.op_name == "DEQUANTIZE" and op.inputs and model.tensors[op.inputs[0]].data is not None
    }
    return "float16 weights" if "float16" in dequantized else "float"


def _is_integer_model(model: ModelInfo) -> bool:
    """True when the compute is integer: the ops that multiply-accumulate (or, without any, the ops
    other than (de)quantization and casts) run on integer activations."""
    mac_ops = [op for op in model.operators if op.op_name in _MAC_OPS]
    for op in mac_ops or model.operators:
        if op.op_name in _QUANT_OPS or op.op_name == "CAST":
            continue
        moving = [model.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0 and model.tensors[i].data is None]
        if any(t.dtype in _INTEGER for t in moving):
            return True
    return False

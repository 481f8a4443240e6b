"""What training-time optimization left in the weights of a `.tflite` model.

For each kernel (the weight operand of a convolution, fully-connected or batch-matmul op) it
measures the fraction of zeros (pruning), the distinct values over the tensor and per output
channel (clustering, quantization) and the densest group of 4 along the input channels (2:4
structured sparsity), and maps the kernel back to the Keras layer it came from by tensor name.
Also `gzip_size`, the compressed size that sparsity and clustering shrink.
"""

from __future__ import annotations

import gzip
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgepack.analyze.flatbuffer import ModelInfo, OperatorInfo, TensorInfo, read_model

WRAPPER_PREFIXES = ("quant_", "prune_low_magnitude_", "cluster_")
"""Prefixes TFMOT gives the layers it wraps (QAT, pruning, clustering)."""

# op -> (weight input, output-channel axis, input-channel axis) in TFLite's weight layout
_LAYOUTS = {
    "CONV_2D": (1, 0, -1),  # [out, h, w, in]
    "DEPTHWISE_CONV_2D": (1, -1, -1),  # [1, h, w, out]: its only channel axis is the last
    "FULLY_CONNECTED": (1, 0, -1),  # [out, in]
    "TRANSPOSE_CONV": (1, 0, -1),  # [out, h, w, in]; input 0 is the output shape
    "CONV_3D": (1, -1, -2),  # [d, h, w, in, out]
    "CONV_3D_TRANSPOSE": (1, -2, -1),  # [d, h, w, out, in]; input 0 is the output shape
}
WEIGHT_OPS = (*_LAYOUTS, "BATCH_MATMUL")
"""The ops whose constant operand `weight_stats` reports."""


@dataclass(frozen=True)
class WeightStat:
    """Statistics of one kernel, as stored in the `.tflite` (quantized values for int8 kernels).

    `sparsity`: fraction of elements equal to zero (to the zero point of their channel when
    quantized). `unique_values`: distinct values in the tensor; `unique_per_channel_max`: the most
    distinct values in one output channel. `max_nonzeros_per_4`: the most non-zeros in a group of 4
    consecutive input channels (2 for a 2:4 sparse kernel), None when their count is not a multiple
    of 4; input channels are the last axis for CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV (for
    DEPTHWISE_CONV_2D, its channel axis), the contracted axis for CONV_3D and BATCH_MATMUL. `layer`
    is the Keras layer the kernel belongs to, None when no layer name matches.
    """

    tensor: str
    layer: str | None
    op: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    sparsity: float
    unique_values: int
    unique_per_channel_max: int
    max_nonzeros_per_4: int | None

    def to_dict(self) -> dict[str, object]:
        """The statistics as plain, JSON-ready data."""
        return {**asdict(self), "shape": list(self.shape)}


def weight_stats(data: bytes, layer_names: Sequence[str] = ()) -> list[WeightStat]:
    """Statistics of every kernel of the `.tflite` model `data`, in execution order.

    A kernel fed through a DEQUANTIZE op (float16 models) is measured at the constant that feeds
    it; kernels without constant data (computed at run time) are skipped. Each kernel is mapped to
    one of `layer_names` by its tensor name, else by its op's output name (the converter renames a
    kernel that several layers share, "arith.constant"). Raises `ModelError` if `data` is not a
    TFLite model.
    """
    model = read_model(data)
    names = frozenset(layer_names)
    stats: dict[tuple[int, str | None], WeightStat] = {}
    for op, tensor, values, axes in _kernels(model):
        layer = match_layer(tensor.name, names) or _output_layer(model, op, names)
        if (tensor.index, layer) not in stats:  # a layer called twice reuses its kernel
            stats[tensor.index, layer] = _stat(tensor, values, op.op_name, layer, axes)
    return list(stats.values())


def match_layer(tensor_name: str, layer_names: Collection[str]) -> str | None:
    """The longest of `layer_names` that is a "/"-separated component of `tensor_name`.

    The converter names kernels after the Keras graph ("model/conv1/Conv2D"), joins fused names
    with ";" and keeps TFMOT's wrapper prefixes ("quant_conv1"), which are stripped here; of two
    names of equal length, the later one in the tensor name wins.
    """
    best: str | None = None
    for part in tensor_name.split(";"):
        for component in part.split("/"):
            for candidate in _unwrapped(component):
                if candidate in layer_names and (best is None or len(candidate) >= len(best)):
                    best = candidate
    return best


def gzip_size(data: bytes) -> int:
    """Size of `data` compressed with gzip at level 9 (deterministic: mtime 0, no file name)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _unwrapped(component: str) -> Iterator[str]:
    """`component`, then what is left as each TFMOT wrapper prefix is stripped in turn."""
    yield component
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if component.startswith(prefix) and len(component) > len(prefix):
                component = component[len(prefix) :]
                stripped = True
                yield component


def _weight_inputs(op: OperatorInfo) -> list[tuple[int, int, int]]:
    """(input position, output-channel axis, input-channel axis) of each possible weight of `op`."""
    if op.op_name == "BATCH_MATMUL":  # lhs [..., M, K] and rhs [..., K, N] unless adjoint
        adj_x, adj_y = bool(op.options.get("adjX")), bool(op.options.get("adjY"))
        candidates = [(0, -1, -2) if adj_x else (0, -2, -1), (1, -2, -1) if adj_y else (1, -1, -2)]
    elif op.op_name in _LAYOUTS:
        candidates = [_LAYOUTS[op.op_name]]
    else:
        return []
    return [c for c in candidates if c[0] < len(op.inputs)]


def _kernels(model: ModelInfo) -> Iterator[tuple[OperatorInfo, TensorInfo, np.ndarray, tuple[int, int]]]:
    """Each weight op with its constant kernel, the kernel's data and (output, input) channel axes."""
    producers = model.producers()
    for op in model.operators:
        for position, out_axis, in_axis in _weight_inputs(op):
            found = _constant(model, producers, op.inputs[position])
            if found is not None:
                yield op, found[0], found[1], (out_axis, in_axis)


def _constant(
    model: ModelInfo,
    producers: Mapping[int, OperatorInfo],
    index: int,
) -> tuple[TensorInfo, np.ndarray] | None:
    """The constant behind input tensor `index` and its data, looking through one DEQUANTIZE."""
    if index < 0:
        return None
    tensor = model.tensors[index]
    producer = producers.get(index)
    if tensor.data is None and producer is not None and producer.op_name == "DEQUANTIZE":
        source = producer.inputs[0] if producer.inputs else -1
        tensor = model.tensors[source] if source >= 0 else tensor
    return None if tensor.data is None else (tensor, tensor.data)


def _output_layer(model: ModelInfo, op: OperatorInfo, names: Collection[str]) -> str | None:
    """The layer named by `op`'s output, for kernels the converter renamed ("arith.constant")."""
    for out in op.outputs:
        layer = match_layer(model.tensors[out].name, names) if out >= 0 else None
        if layer is not None:
            return layer
    return None


def _stat(tensor: TensorInfo, values: np.ndarray, op: str, layer: str | None, axes: tuple[int, int]) -> WeightStat:
    out_axis, in_axis = axes
    nonzero = values != _zero_points(tensor)
    size = int(values.size)
    return WeightStat(
        tensor=tensor.name,
        layer=layer,
        op=op,
        shape=tensor.shape,
        dtype=tensor.dtype,
        size=size,
        sparsity=1.0 - int(np.count_nonzero(nonzero)) / size if size else 0.0,
        unique_values=int(np.unique(values).size),
        unique_per_channel_max=_unique_per_channel_max(values, out_axis),
        max_nonzeros_per_4=_max_nonzeros_per_4(nonzero, in_axis),
    )


def _zero_points(tensor: TensorInfo) -> np.ndarray | int:
    """The stored value that means 0.0: the zero point of each channel, broadcastable to the data."""
    points = tensor.zero_points
    if len(points) <= 1:
        return points[0] if points else 0
    shape = [1] * len(tensor.shape)
    shape[tensor.quantized_dimension] = len(points)
    return np.asarray(points).reshape(shape)


def _channels_first(values: np.ndarray, axis: int) -> np.ndarray:
    """`values` as a 2-D array, one row per index along `axis` (the last axis if out of range)."""
    if values.ndim == 0:
        return values.reshape(1, 1)
    axis = axis if -values.ndim <= axis < values.ndim else -1
    rows = values.shape[axis]
    return np.moveaxis(values, axis, 0).reshape(rows, values.size // rows if rows else 0)


def _unique_per_channel_max(values: np.ndarray, out_axis: int) -> int:
    rows = np.sort(_channels_first(values, out_axis), axis=1)
    if rows.size == 0:
        return 0
    changes = np.count_nonzero(rows[:, 1:] != rows[:, :-1], axis=1)  # no arithmetic: inf, nan
    return int((1 + changes).max())


def _max_nonzeros_per_4(nonzero: np.ndarray, in_axis: int) -> int | None:
    groups = _channels_first(nonzero, in_axis).T  # one row per position, input channels along it
    if groups.size == 0 or groups.shape[1] % 4:
        return None
    return int(groups.reshape(-1, 4).sum(axis=1).max())

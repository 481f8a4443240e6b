"""Parse a `.tflite` flatbuffer into frozen dataclasses, without TensorFlow.

`read_model` reads the main subgraph (subgraph 0): every tensor (name, shape, dtype, constant
data, quantization) and every operator (op name, input and output tensor indices), with the TFLite
schema that `ai_edge_litert` ships. Anything that is not a well-formed TFLite model raises
`ModelError`, whatever went wrong inside the flatbuffer reader.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from flatbuffers import encode, number_types

from edgepack.errors import ModelError

IDENTIFIER = b"TFL3"
"""The file identifier a TFLite flatbuffer carries at bytes 4..8."""

_UOFFSET = number_types.UOffsetTFlags.packer_type
_TENSOR_NAME_SLOT = 10  # vtable slot of Tensor.name in the TFLite schema
_OPCODE_CUSTOM_SLOT = 6  # vtable slot of OperatorCode.custom_code
_INT4 = schema.TensorType.INT4
_NUMPY_TYPES = {
    schema.TensorType.FLOAT32: "float32",
    schema.TensorType.FLOAT16: "float16",
    schema.TensorType.FLOAT64: "float64",
    schema.TensorType.INT8: "int8",
    schema.TensorType.INT16: "int16",
    schema.TensorType.INT32: "int32",
    schema.TensorType.INT64: "int64",
    schema.TensorType.UINT8: "uint8",
    schema.TensorType.UINT16: "uint16",
    schema.TensorType.UINT32: "uint32",
    schema.TensorType.UINT64: "uint64",
    schema.TensorType.BOOL: "bool",
    schema.TensorType.COMPLEX64: "complex64",
    schema.TensorType.COMPLEX128: "complex128",
}


def _enum_names(enum: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if name.isupper() and isinstance(value, int)}


_TYPE_NAMES = _enum_names(schema.TensorType)
_OP_NAMES = _enum_names(schema.BuiltinOperator)


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the subgraph.

    `dtype` is the numpy dtype name ("float32", "int8"...), or the lowercase TFLite type name where
    numpy has none ("int4", "string", "resource"...). `data` is the constant content, read-only and
    shaped like the tensor, or None for activations, for types without a numpy dtype and for
    sparse-encoded constants. INT4 data is unpacked to one int8 per element. `scales` and
    `zero_points` are empty for float tensors; with several scales, `quantized_dimension` is the
    axis they run along.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = field(repr=False, compare=False)
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0

    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def quantized(self) -> bool:
        """True when the tensor carries quantization scales."""
        return bool(self.scales)


@dataclass(frozen=True)
class OperatorInfo:
    """One operator of the subgraph; an input index of -1 is an omitted optional input.

    `options` holds its builtin options under the schema's field names ("strideW", "padding",
    "adjY"...), empty for ops without options; `custom_code` names a CUSTOM op.
    """

    index: int
    op_name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    custom_code: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """The main subgraph of a model: tensors, operators (in execution order), inputs, outputs."""

    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def producers(self) -> dict[int, OperatorInfo]:
        """The operator that writes each tensor, by tensor index (constants and inputs have none)."""
        return {out: op for op in self.operators for out in op.outputs if out >= 0}


def read_model(data: bytes) -> ModelInfo:
    """The main subgraph of the `.tflite` flatbuffer `data`; `ModelError` if it is not one."""
    buf = bytes(data)
    _check_header(buf)
    try:
        return _parse(buf)
    except ModelError:
        raise
    except Exception as exc:  # the flatbuffer reader fails with struct.error, IndexError, TypeError...
        raise _invalid(f"it is truncated or corrupt ({type(exc).__name__}: {exc})") from exc


def operator_codes(data: bytes) -> list[tuple[str, str | None]]:
    """Every op the model declares (all subgraphs: WHILE/IF bodies included): (op name, custom code)."""
    buf = bytes(data)
    _check_header(buf)
    try:
        model = schema.Model.GetRootAs(buf, 0)
        return [_opcode(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - as read_model: a corrupt table is a clear error
        raise _invalid(f"its operator table is truncated or corrupt ({type(exc).__name__}: {exc})") from exc


def read_model_file(path: Path) -> tuple[bytes, ModelInfo]:
    """The bytes and main subgraph of the `.tflite` file at `path`; a `ModelError` naming the file
    when it cannot be read or is not a TFLite model."""
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise ModelError(f"{path} is a directory, not a .tflite file", code="model-invalid") from exc
    except OSError as exc:
        raise ModelError(
            f"{path}: cannot read it: {exc.strerror or exc}", hint="check the path", code="model-invalid"
        ) from exc
    try:
        return data, read_model(data)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc.message}", context=exc.context, hint=exc.hint, code="model-invalid") from exc


def _invalid(why: str) -> ModelError:
    return ModelError(f"not a valid TFLite model: {why}", hint="pass a .tflite file written by the TFLite converter")


def _check_header(buf: bytes) -> None:
    if len(buf) < 8:
        raise _invalid(f"{len(buf)} bytes is too short for a flatbuffer")
    if buf[4:8] != IDENTIFIER:
        raise _invalid(f"the file identifier is {buf[4:8]!r}, not {IDENTIFIER!r}")
    if encode.Get(_UOFFSET, buf, 0) >= len(buf):
        raise _invalid("the root table lies past the end of the file")


def _parse(buf: bytes) -> ModelInfo:
    model = schema.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() < 1:
        raise _invalid("it has no subgraph")
    graph = model.Subgraphs(0)
    opcodes = [_opcode(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    tensors = tuple(_tensor(graph.Tensors(i), i, model, buf) for i in range(graph.TensorsLength()))
    operators = tuple(_operator(graph.Operators(i), i, opcodes) for i in range(graph.OperatorsLength()))
    info = ModelInfo(tensors, operators, _ints(graph.InputsAsNumpy()), _ints(graph.OutputsAsNumpy()))
    _check_references(info)
    return info


def _ints(values: Any) -> tuple[int, ...]:
    """A flatbuffer vector as a tuple (the generated `...AsNumpy` returns 0 for an absent vector)."""
    return () if isinstance(values, int) else tuple(int(v) for v in values)


def _string(table: Any, slot: int) -> str | None:
    """A string field, bounds-checked (the generated reader silently cuts a truncated string)."""
    relative = table.Offset(slot)
    if relative == 0:
        return None
    start = table.Pos + relative
    start += encode.Get(_UOFFSET, table.Bytes, start)
    length = encode.Get(_UOFFSET, table.Bytes, start)
    start += number_types.UOffsetTFlags.bytewidth
    if start + length > len(table.Bytes):
        raise _invalid("a string runs past the end of the file")
    return bytes(table.Bytes[start : start + length]).decode("utf-8", errors="replace")


def _opcode(code: Any) -> tuple[str, str | None]:
    number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    return _OP_NAMES.get(number, f"BUILTIN_{number}"), _string(code._tab, _OPCODE_CUSTOM_SLOT)


def _operator(op: Any, index: int, opcodes: Sequence[tuple[str, str | None]]) -> OperatorInfo:
    code = op.OpcodeIndex()
    if code >= len(opcodes):
        raise _invalid(f"operator {index} uses opcode {code}, the model has {len(opcodes)}")
    name, custom = opcodes[code]
    return OperatorInfo(
        index,
        name,
        _ints(op.InputsAsNumpy()),
        _ints(op.OutputsAsNumpy()),
        _options(op),
        custom if name == "CUSTOM" else None,
    )


def _options(op: Any) -> Mapping[str, Any]:
    """The builtin options table of `op` as a read-only mapping (vectors become tuples)."""
    unpacked = schema.BuiltinOptionsCreator(op.BuiltinOptionsType(), op.BuiltinOptions())
    values = {} if unpacked is None else vars(unpacked)
    return MappingProxyType({key: _plain(value) for key, value in values.items()})


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    return tuple(value) if isinstance(value, list) else value


def _tensor(tensor: Any, index: int, model: Any, buf: bytes) -> TensorInfo:
    name = _string(tensor._tab, _TENSOR_NAME_SLOT) or ""
    shape = _ints(tensor.ShapeAsNumpy())
    type_id = tensor.Type()
    dtype = _NUMPY_TYPES.get(type_id, _TYPE_NAMES.get(type_id, f"type_{type_id}").lower())
    scales, zero_points, axis = _quantization(tensor.Quantization(), shape, name)
    data = None
    if tensor.Sparsity() is None:
        raw = _buffer_bytes(model, tensor.Buffer(), buf, name)
        data = None if raw is None else _decode(raw, type_id, shape, name)
    return TensorInfo(index, name, shape, dtype, data, scales, zero_points, axis)


def _quantization(
    quant: Any,
    shape: tuple[int, ...],
    name: str,
) -> tuple[tuple[float, ...], tuple[int, ...], int]:
    if quant is None:
        return (), (), 0
    scales = tuple(float(s) for s in np.atleast_1d(quant.ScaleAsNumpy())) if quant.ScaleLength() else ()
    zero_points = _ints(quant.ZeroPointAsNumpy())
    axis = quant.QuantizedDimension()
    if len(scales) > 1 and not (0 <= axis < len(shape) and shape[axis] == len(scales)):
        raise _invalid(f"tensor '{name}' has {len(scales)} scales along axis {axis} of shape {shape}")
    if len(zero_points) not in (0, 1, len(scales)):
        raise _invalid(f"tensor '{name}' has {len(zero_points)} zero points for {len(scales)} scales")
    return scales, zero_points, axis


def _buffer_bytes(model: Any, index: int, buf: bytes, name: str) -> memoryview | None:
    """The bytes of buffer `index`: inline, or at offset/size past the flatbuffer (large models)."""
    if index >= model.BuffersLength():
        raise _invalid(f"tensor '{name}' uses buffer {index}, the model has {model.BuffersLength()}")
    buffer = model.Buffers(index)
    offset, size = buffer.Offset(), buffer.Size()
    if offset > 1:  # 0 and 1 mean "no external data" (1 is the converter's placeholder)
        if offset + size > len(buf):
            raise _invalid(f"the data of tensor '{name}' runs past the end of the file")
        return memoryview(buf)[offset : offset + size] if size else None
    if buffer.DataIsNone() or buffer.DataLength() == 0:
        return None
    return memoryview(buffer.DataAsNumpy())


def _decode(raw: memoryview, type_id: int, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    count = math.prod(shape)
    if type_id == _INT4:
        return _unpack_int4(raw, count, name).reshape(shape)
    if type_id not in _NUMPY_TYPES:
        return None
    dtype = np.dtype(_NUMPY_TYPES[type_id]).newbyteorder("<")
    if raw.nbytes != count * dtype.itemsize:
        raise _invalid(
            f"tensor '{name}' of shape {shape} and type {dtype.name} needs "
            f"{count * dtype.itemsize} bytes, its buffer holds {raw.nbytes}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _unpack_int4(raw: memoryview, count: int, name: str) -> np.ndarray:
    """INT4 constants hold two values a byte, low nibble first; also accept one value a byte."""
    packed = np.frombuffer(raw, dtype=np.uint8)
    if packed.size == count:
        values = packed.view(np.int8)
    elif packed.size == (count + 1) // 2:
        nibbles = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(-1)[:count]
        values = (nibbles.astype(np.int16) ^ 8) - 8
    else:
        raise _invalid(f"tensor '{name}' holds {count} int4 values, its buffer {packed.size} bytes")
    out = values.astype(np.int8)
    out.flags.writeable = False
    return out


def _check_references(info: ModelInfo) -> None:
    count = len(info.tensors)
    for op in info.operators:
        bad = [i for i in op.inputs + op.outputs if not -1 <= i < count]
        if bad:
            raise _invalid(f"operator {op.index} ({op.op_name}) refers to tensor {bad[0]}, the subgraph has {count}")
    bad = [i for i in info.inputs + info.outputs if not 0 <= i < count]
    if bad:
        raise _invalid(f"the subgraph's inputs or outputs refer to tensor {bad[0]} of {count}")

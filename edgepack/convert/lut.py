"""`[convert] compression = "lut"`: TensorFlow Lite Micro's look-up-table compression of an int8 model.

A constant int8 tensor with few distinct values (a clustered kernel: 16 clusters, 16 values) becomes
`bits`-wide indices into a table of its values (bits = ceil(log2(values))), decoded at run time by
TFLM's `TFLM_DECODE` custom op, which tflite-micro's compressor inserts before each use. Lossless:
the decoded weights are the int8 values, so TFLM's outputs are those of the uncompressed model.

The table's mode follows the tensor's quantization, as TFLM's decoder needs: a tensor with one scale
per channel gets one table per channel along its `quantized_dimension` (axis 0 or the last only;
another axis is left uncompressed), a per-tensor one a single table. A per-channel tensor compressed
with one table decodes to wrong values without any error (tests/integration/test_lut.py shows it).

Only LiteRT refuses the result (unknown custom op): it is for TFLM alone. The compression is pure
Python flatbuffer work plus tflite-micro's C++ re-alignment of a model edgepack has already read, so
it runs in process (about 0.3 s for a 240 KB model); its failures are Python exceptions, reported as
`StageError`s. tflite-micro (and the flatbuffer reader, which needs ai-edge-litert's schema) is imported
inside the functions: the pre-training check `check_lut` stays light.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepack.errors import DeviceUnreachable, StageError

if TYPE_CHECKING:
    from edgepack.analyze.flatbuffer import TensorInfo

DECODE_OP = "TFLM_DECODE"  # the custom op tflite-micro's compressor inserts
MAX_BITS = 7  # 8-bit indices would not be smaller than the int8 values themselves
ANCILLARY_HEADER = 16  # the bytes of the DECODE op's ancillary tensor before its value tables
CLUSTER_HINT = "cluster the kernels first ([[optimize]] kind = 'cluster', clusters = 16), or remove compression"
INSTALL_HINT = "pip install tflite-micro (wheels for Linux x86-64 only), or pip install 'edgepack[mcu]'"


@dataclass(frozen=True)
class TensorPlan:
    """One constant int8 tensor and what compression does with it (`skipped` says why not, else None)."""

    index: int
    name: str
    elements: int
    values: int  # distinct values: of the tensor, or the most of any one channel (per-channel)
    tables: int  # 1 (per tensor) or one per channel
    mode: str  # "per-tensor" or "per-channel"
    axis: int | None  # the channel axis of a per-channel table
    bits: int
    skipped: str | None = None

    @property
    def estimate(self) -> int:
        """The compressed bytes expected: packed indices, the value tables (each padded to 2**bits entries, as
        TFLM's decoder reads them) and the ancillary tensor's 16 B header."""
        return math.ceil(self.elements * self.bits / 8) + 2**self.bits * self.tables + ANCILLARY_HEADER


@dataclass(frozen=True)
class Compressed:
    """The compressed model and a plain record of what was compressed."""

    data: bytes
    size_before: int
    tensors: list[dict[str, Any]]  # per compressed tensor: name, index, bits, mode, axis, values, bytes
    skipped: list[dict[str, Any]]  # per constant int8 tensor left as it was: name, why

    def record(self) -> dict[str, Any]:
        """The manifest's `compression` entry."""
        before = sum(t["bytes_before"] for t in self.tensors)
        after = sum(t["bytes_after"] for t in self.tensors)
        return {
            "method": "lut",
            "runtime": "tflm",
            "decode_op": DECODE_OP,
            "size_before_bytes": self.size_before,
            "size_bytes": len(self.data),
            "ratio": round(len(self.data) / self.size_before, 4) if self.size_before else None,
            "tensor_bytes_before": before,
            "tensor_bytes_after": after,
            "tensors": self.tensors,
            "skipped": self.skipped,
        }


def plan(flatbuffer: bytes) -> list[TensorPlan]:
    """What each constant int8 tensor of the main subgraph would become (TFLM's rules, no tflite-micro)."""
    from edgepack.analyze.flatbuffer import read_model

    info = read_model(flatbuffer)
    return [_plan(t) for t in info.tensors if t.dtype == "int8" and t.data is not None and t.size > 0]


def _plan(tensor: TensorInfo) -> TensorPlan:
    assert tensor.data is not None  # plan() passes constants only
    values = np.asarray(tensor.data)
    skipped = None
    if len(tensor.scales) > 1:
        axis = tensor.quantized_dimension
        if axis not in (0, values.ndim - 1):
            return TensorPlan(tensor.index, tensor.name, values.size, 0, 0, "per-channel", axis, 0,
                              f"per-channel on axis {axis}: TFLM's decoder takes axis 0 or the last only")  # fmt: skip
        count = max(len(np.unique(channel)) for channel in np.moveaxis(values, axis, 0))
        tables, mode, where = values.shape[axis], "per-channel", axis
    else:
        count, tables, mode, where = len(np.unique(values)), 1, "per-tensor", None
    bits = max(1, math.ceil(math.log2(count)))
    result = TensorPlan(tensor.index, tensor.name, values.size, count, tables, mode, where, bits)
    if bits > MAX_BITS:
        skipped = f"{count} distinct values: {bits}-bit indices save nothing on int8"
    elif result.estimate >= values.size:
        skipped = f"{result.estimate} B of indices and tables would not be smaller than its {values.size} B"
    return result if skipped is None else TensorPlan(**{**asdict(result), "skipped": skipped})


def compress(flatbuffer: bytes, label: str = "convert.compression = 'lut'") -> Compressed:
    """The LUT-compressed model of `flatbuffer` (an int8 `.tflite`); a `StageError` when no tensor shrinks."""
    tc, spec, constant_inputs, model_editor = _modules(label)
    plans = plan(flatbuffer)
    graph = model_editor.read(flatbuffer).subgraphs[0]
    chosen, skipped = [], []
    for item in plans:
        why = item.skipped
        uses = constant_inputs.find_uses(graph, graph.tensors[item.index]) if why is None else []
        if uses:
            why = "must stay constant: " + "; ".join(use.describe() for use in uses)
        if why is None:
            chosen.append(item)
        else:
            skipped.append({"name": item.name, "why": why})
    if not chosen:
        raise _useless(
            f"{label}: no constant int8 tensor of the model gets smaller with look-up tables",
            "; ".join(f"{s['name']}: {s['why']}" for s in skipped) or "the model has no constant int8 tensor",
        )
    builder = tc.SpecBuilder()
    for item in chosen:
        mode = spec.PerTensor() if item.axis is None else spec.PerChannel(axis=item.axis)
        builder.add_tensor(subgraph=0, tensor=item.index).with_lut(index_bitwidth=item.bits, mode=mode)
    try:
        data = _without_encoded_quantization(bytes(tc.compress(flatbuffer, builder.build())))
    except Exception as exc:  # noqa: BLE001 - CompressionError and whatever the flatbuffer code raises
        raise StageError(
            f"{label}: tflite-micro's compressor failed: {type(exc).__name__}: {exc}",
            hint="report it with the model; remove convert.compression meanwhile",
            code="compression-failed",
        ) from exc
    if len(data) >= len(flatbuffer):  # the DECODE ops and their tensors outweigh what the tables saved
        raise _useless(
            f"{label}: the compressed model ({len(data):,} B) is not smaller than the int8 one "
            f"({len(flatbuffer):,} B): the model has no tensors with few enough distinct values",
            f"{len(chosen)} tensor(s) compressed: {', '.join(item.name for item in chosen)}",
        )
    records, left = _tensor_records(data, chosen)
    return Compressed(data, len(flatbuffer), records, skipped + left)


def _useless(message: str, context: str) -> StageError:
    return StageError(message, context=context, hint=CLUSTER_HINT, code="compression-useless")


def _without_encoded_quantization(data: bytes) -> bytes:
    """The compressed model without the quantization the compressor leaves on each encoded tensor.

    The encoded indices are a flat uint8 tensor that keeps the int8 tensor's scales and zero points (about
    12 B a channel, and a per-channel axis its flat shape does not have); TFLM reads the decoded tensor's
    quantization, not these. Dropped, then the flatbuffer re-aligned by tflite-micro's own tool (the
    Python flatbuffers writer ignores the schema's `force_align`); TFLM's outputs stay identical (tested)."""
    import os
    import tempfile

    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    decode = {i for i, code in enumerate(model.operatorCodes) if code.customCode == DECODE_OP.encode()}
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex in decode:
                for position in range(0, len(op.inputs), 2):  # (encoded, ancillary) pairs
                    graph.tensors[op.inputs[position]].quantization = None
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with tempfile.TemporaryDirectory(prefix="edgepack-lut-") as folder:
        source, target = os.path.join(folder, "in.tflite"), os.path.join(folder, "out.tflite")
        with open(source, "wb") as out:
            out.write(builder.Output())
        tflite_flatbuffer_align_wrapper.align_tflite_model(source, target)
        with open(target, "rb") as aligned:
            return aligned.read()


def _tensor_records(data: bytes, chosen: list[TensorPlan]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per chosen tensor the DECODE ops really read, its bytes after (the encoded indices and the value tables);
    and those the compressor left as they were. The encoded tensor keeps the original's index (its name too,
    but names are no key: `arith.constant1` is a prefix of `arith.constant11_decoded`)."""
    from edgepack.analyze.flatbuffer import read_model

    info = read_model(data)
    after: dict[int, int] = {}
    for op in info.operators:
        if op.custom_code == DECODE_OP:  # inputs are (encoded, ancillary) pairs, one per output
            for encoded, ancillary in zip(op.inputs[0::2], op.inputs[1::2]):
                after[encoded] = _bytes(info.tensors[encoded]) + _bytes(info.tensors[ancillary])
    records = [
        {
            "name": item.name,
            "index": item.index,
            "bits": item.bits,
            "mode": item.mode,
            "axis": item.axis,
            "values": item.values,
            "tables": item.tables,
            "bytes_before": item.elements,
            "bytes_after": after[item.index],
        }
        for item in chosen
        if item.index in after
    ]
    left = [
        {"name": i.name, "why": "tflite-micro's compressor left it as it was"} for i in chosen if i.index not in after
    ]
    return records, left


def _bytes(tensor: TensorInfo) -> int:
    return 0 if tensor.data is None else int(np.asarray(tensor.data).nbytes)


def is_compressed(flatbuffer: bytes) -> bool:
    """True when the model holds TFLM's DECODE op (LiteRT cannot run it)."""
    from edgepack.analyze.flatbuffer import operator_codes

    return any(name == "CUSTOM" and code == DECODE_OP for name, code in operator_codes(flatbuffer))


def _modules(label: str) -> tuple[Any, Any, Any, Any]:
    try:
        from tflite_micro.tensorflow.lite.micro import compression as tc
        from tflite_micro.tensorflow.lite.micro.compression import constant_inputs, model_editor, spec
    except ImportError as exc:
        raise DeviceUnreachable(
            f"{label} needs tflite-micro (its compressor), which is not installed",
            hint=INSTALL_HINT,
            code="device-no-runtime",
        ) from exc
    return tc, spec, constant_inputs, model_editor


def check_lut(recipe: str, devices: list[Any]) -> None:
    """Before training: tflite-micro is installed and every device is TFLite Micro (a profile of another
    kind under a name the schema does not know: LiteRT and Vela cannot run the compressed model)."""
    import importlib.util

    from edgepack.devices.drivers import driver_for
    from edgepack.errors import RecipeError
    from edgepack.recipe.schema import LUT_LITERT, LUT_VELA

    others = [d for d in devices if not driver_for(d.kind).runs_compressed]
    if others:
        names = [
            f"'{d.name}' (kind {d.kind}: {LUT_VELA if driver_for(d.kind).estimates else LUT_LITERT})" for d in others
        ]
        raise RecipeError(
            f"convert.compression = 'lut' with validate.devices {', '.join(names)}: only TensorFlow Lite Micro "
            "runs the compressed model",
            context=f"recipe '{recipe}'",
            hint='validate on "tflm" (or a profile of kind tflm), or remove convert.compression',
            code="recipe-invalid",
        )
    if importlib.util.find_spec("tflite_micro") is None:
        raise DeviceUnreachable(
            "convert.compression = 'lut' needs tflite-micro (its compressor), which is not installed",
            context=f"recipe '{recipe}'",
            hint=INSTALL_HINT,
            code="device-no-runtime",
        )

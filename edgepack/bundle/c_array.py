"""The model as C++ sources for TensorFlow Lite Micro: `model_data.h` and `model_data.cc`.

The `.cc` holds the flatbuffer as a 16-byte aligned `unsigned char` array and its length. The
header declares them, gives `kModelDataArenaSize` (an estimate: the peak activation memory from
tensor lifetimes plus stated terms for TFLM's own structures), and a template
that registers exactly the ops the model uses on a `tflite::MicroMutableOpResolver`, with the
resolver's size as `kModelDataOpCount`:

    static tflite::MicroMutableOpResolver<kModelDataOpCount> resolver;
    model_data_register_ops(resolver);
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from edgepack.analyze.flatbuffer import operator_codes, read_model
from edgepack.analyze.graph import activation_peak

ARENA_MARGIN = 0.25  # of the activation peak ...
ARENA_EXTRA = 4096  # ... plus this many bytes, plus per tensor and per quantized channel (below)
ARENA_PER_TENSOR = 32  # TfLiteEvalTensor and friends, per tensor of the graph
ARENA_PER_CHANNEL = 8  # per-channel multiplier and shift of conv / depthwise / fully-connected outputs
ALIGN = 16
# TFLM's MicroMutableOpResolver methods, by builtin op (tensorflow/tflite-micro, micro_mutable_op_resolver.h)
TFLM_METHODS = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast", "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D", "COS": "AddCos", "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv", "ELU": "AddElu", "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog",
    "LOG_SOFTMAX": "AddLogSoftmax", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D", "MAXIMUM": "AddMaximum",
    "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear", "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth", "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
_CUSTOM_METHODS = {"TFLite_Detection_PostProcess": "AddDetectionPostprocess", "ethos-u": "AddEthosU"}


@dataclass(frozen=True)
class CSources:
    """The two files and what they state."""

    header: str
    source: str
    resolver_calls: tuple[str, ...]
    arena_bytes: int
    activation_peak_bytes: int
    unsupported_ops: tuple[str, ...]  # ops (builtin or custom) with no resolver method: the user registers them


def resolver_method(op_name: str) -> str | None:
    """TFLM's `MicroMutableOpResolver` method for a builtin op (CONV_2D -> AddConv2D); None when TFLM has none."""
    return TFLM_METHODS.get(op_name)


def c_sources(flatbuffer: bytes, name: str = "model_data") -> CSources:
    """The header and source for `flatbuffer`, with symbols `g_<name>`, `g_<name>_len`."""
    model = read_model(flatbuffer)
    codes = operator_codes(flatbuffer)  # every subgraph's ops, not only the main one's
    builtin = sorted({name for name, _ in codes if name != "CUSTOM"})
    custom = sorted({code or "?" for name, code in codes if name == "CUSTOM"})
    calls = tuple(sorted({TFLM_METHODS[op] for op in builtin if op in TFLM_METHODS}
                         | {_CUSTOM_METHODS[c] for c in custom if c in _CUSTOM_METHODS}))
    unsupported = tuple([op for op in builtin if op not in TFLM_METHODS] +
                        [c for c in custom if c not in _CUSTOM_METHODS])
    peak, _ = activation_peak(model)
    channels = sum(model.tensors[op.outputs[0]].shape[-1] for op in model.operators
                   if op.op_name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and op.outputs
                   and op.outputs[0] >= 0 and model.tensors[op.outputs[0]].shape)
    arena = _round_up(math.ceil(peak * (1 + ARENA_MARGIN)) + ARENA_EXTRA + ARENA_PER_TENSOR * len(model.tensors)
                      + ARENA_PER_CHANNEL * channels, ALIGN)
    guard = f"{name.upper()}_H_"
    safe = [re.sub(r"[^\w.-]", "_", op) for op in unsupported]
    custom_note = "".join(f"// '{op}' has no MicroMutableOpResolver method: register it yourself (AddCustom) "
                          "or change the model.\n" for op in safe)
    header = (
        f"// Generated by edgepack: the model for TensorFlow Lite Micro. Do not edit.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char g_{name}[];  // the .tflite flatbuffer, 16-byte aligned\n"
        f"extern const unsigned int g_{name}_len;  // {len(flatbuffer)} bytes\n\n"
        f"// Tensor arena, an estimate: {peak} bytes of activations at their peak (tensor lifetimes), plus "
        f"{int(ARENA_MARGIN * 100)} %, {ARENA_EXTRA} bytes,\n"
        f"// {ARENA_PER_TENSOR} bytes per tensor and {ARENA_PER_CHANNEL} per quantized output channel for "
        f"TFLM's own structures.\n// interpreter.arena_used_bytes() on the board tells the real need.\n"
        f"constexpr int k{_camel(name)}ArenaSize = {arena};\n\n"
        f"// The {len(calls)} ops the model uses (the resolver's size; at least 1).\n"
        f"constexpr int k{_camel(name)}OpCount = {max(1, len(calls) + len(unsupported))};\n"
        f"{custom_note}"
        f"template <typename Resolver>\n"
        f"void {name}_register_ops(Resolver& resolver) {{\n"
        + ("  (void)resolver;\n" if not calls else "")
        + "".join(f"  resolver.{call}();\n" for call in calls)
        + "}\n\n"
        f"#endif  // {guard}\n"
    )
    rows = [", ".join(f"0x{b:02x}" for b in flatbuffer[i:i + 12]) for i in range(0, len(flatbuffer), 12)]
    source = (
        f"// Generated by edgepack: the model for TensorFlow Lite Micro. Do not edit.\n"
        f'#include "{name}.h"\n\n'
        f"alignas({ALIGN}) const unsigned char g_{name}[] = {{\n"
        + "".join(f"    {row},\n" for row in rows)
        + "};\n"
        f"const unsigned int g_{name}_len = {len(flatbuffer)};\n"
    )
    return CSources(header, source, calls, arena, peak, unsupported)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple

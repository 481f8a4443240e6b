"""Which ops of a `.tflite` TensorFlow Lite's GPU delegate takes, read offline from the flatbuffer (no TensorFlow).

TensorFlow's own analyzer (`tf.lite.experimental.Analyzer(gpu_compatibility=True)`) was measured to pass every
model (docs/ARCHITECTURE.md, Decisions), so these rules are edgepack's own table, written from the delegate's
source of truth:

- per op, `CheckGpuDelegateCompatibility` of tensorflow/lite/tools/versioning/gpu_compatibility.cc (read at
  commit 03a5e4e1): the builtin ops it lists with their conditions (runtime and constant input counts, strides,
  dilations, kernel sizes, fused activations, axes, broadcasting as its offline entry point checks it, with
  `kEnhancedBroadcast`), the four custom ops it knows, and "Not supported op NAME" for every other builtin.
  That file checks no op versions, so neither does this.
- per tensor, the delegate's `GetOpsToReplace`/`IsAllAllowedTensors` (tensorflow/lite/delegates/gpu/common/
  model_builder.cc): runtime (non-constant) tensors of float32 or float16 only, with int8 and uint8 while
  quantized ops are allowed (the delegate's default: it runs an int8 model by dequantizing, QUANTIZE and
  DEQUANTIZE included); that much is in the copy read (commit 9a5c3017, 2021). The later delegate also refuses
  any tensor of 5 or more dimensions and lets bool out of comparisons and the types CAST, ONE_HOT and SELECT_V2
  take; its message, "OP is supported, but tensor type/shape isn't compatible.", is quoted from its logs, the
  tensor named after it.

A reason is the source's own words (its `absl::Status` message). The delegate then runs, by default, only the
largest partition of the ops it accepts (`max_delegated_partitions` 1): `accepted` counts the ops it can take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the rules themselves need no flatbuffer reader (nor ai_edge_litert's schema)
    from edgepack.analyze.flatbuffer import ModelInfo, OperatorInfo

_NO_TYPE = "notype"  # an omitted optional input (index -1): gpu_compatibility.cc's kTfLiteNoType
_SIGN_BIT = 5  # ActivationFunctionType.SIGN_BIT, the one fused activation IsActivationSupported refuses
_FLOATS = ("float16", "float32")
_LOGICAL = {"EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "NOT_EQUAL", "LOGICAL_AND"}
TENSOR_REASON = "OP is supported, but tensor type/shape isn't compatible."
KNOWN_CUSTOM_OPS = ("Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler")


@dataclass(frozen=True)
class Spec:
    """One tensor as gpu_compatibility.cc's `OpSignatureTensorSpec` sees it: type, dimensions, constant."""

    dtype: str
    dims: tuple[int, ...]
    const: bool


@dataclass(frozen=True)
class Signature:
    """One op as the source's `OpSignature` holds it: name, options, input and output tensors."""

    op: str
    options: Mapping[str, Any]
    inputs: tuple[Spec, ...]
    outputs: tuple[Spec, ...]
    custom: str | None = None

    @property
    def runtime_inputs(self) -> int:
        """Inputs that are neither constant nor omitted (the source's `GetNumberOfRuntimeInputs`)."""
        return sum(1 for t in self.inputs if not t.const and t.dtype != _NO_TYPE)

    @property
    def const_inputs(self) -> int:
        return sum(1 for t in self.inputs if t.const)

    def option(self, name: str) -> Any:
        """A builtin option under the schema's name; 0 when absent (the parsed params start zeroed)."""
        return self.options.get(name, 0) or 0


@dataclass(frozen=True)
class RefusedOp:
    """One op the GPU delegate leaves to the CPU: where it is, the Keras layer it came from, why."""

    index: int
    op: str  # the builtin name; a custom op's code
    layer: str | None
    reason: str
    macs: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "op": self.op, "layer": self.layer, "reason": self.reason, "macs": self.macs}


@dataclass(frozen=True)
class GpuCompatibility:
    """The GPU delegate against one model: how many of its ops (and of its MACs) it takes, and the ops it refuses."""

    ops: int
    accepted: int
    macs: int
    accepted_macs: int
    refused: tuple[RefusedOp, ...]

    @property
    def compatible(self) -> bool:
        """True when the delegate takes every op."""
        return not self.refused

    @property
    def mac_share(self) -> float | None:
        """The share of the MACs in ops the delegate takes, 0..1; None for a model without MACs."""
        return self.accepted_macs / self.macs if self.macs else None

    def summary(self) -> str:
        """'63 of 65 ops, 97.5 % of MACs on the GPU'."""
        share = "no MACs" if self.mac_share is None else f"{100 * self.mac_share:.1f} % of MACs"
        return f"{self.accepted} of {self.ops} ops, {share} on the GPU"

    def to_dict(self) -> dict[str, Any]:
        """Plain data with stable keys (the manifest's and `inspect --json`'s form)."""
        return {
            "compatible": self.compatible,
            "ops": self.ops,
            "gpu_ops": self.accepted,
            "macs": self.macs,
            "gpu_macs": self.accepted_macs,
            "gpu_mac_share": self.mac_share,
            "summary": self.summary(),
            "refused": [r.to_dict() for r in self.refused],
        }


@dataclass(frozen=True)
class Node:
    """One op of a graph to judge: its index, name (a custom op's code), Keras layer, signature and MACs."""

    index: int
    op: str
    layer: str | None
    signature: Signature
    macs: int


def gpu_compatibility(model: ModelInfo) -> GpuCompatibility:
    """The GPU delegate's verdict on every op of the main subgraph of `model` (MACs as analyze/graph.py counts
    them, the layer from the op's first output's name)."""
    from edgepack.analyze.graph import layer_of, macs

    def node(op: OperatorInfo) -> Node:
        written = [i for i in op.outputs if i >= 0]
        layer = layer_of(model.tensors[written[0]].name) if written else None
        name = (op.custom_code or "?") if op.op_name == "CUSTOM" else op.op_name
        return Node(op.index, name, layer or None, signature(model, op), macs(model, op))

    return judge(node(op) for op in model.operators)


def judge(nodes: Iterable[Node]) -> GpuCompatibility:
    """The verdict on a graph's ops: each one's `refusal`, the ops and MACs the delegate takes."""
    refused, ops, total, taken = [], 0, 0, 0
    for node in nodes:
        ops += 1
        total += node.macs
        reason = refusal(node.signature)
        if reason is None:
            taken += node.macs
        else:
            refused.append(RefusedOp(node.index, node.op, node.layer, reason, node.macs))
    return GpuCompatibility(ops, ops - len(refused), total, taken, tuple(refused))


def signature(model: ModelInfo, op: OperatorInfo) -> Signature:
    """The op as the source sees it: constant means the tensor has a buffer with data."""

    def spec(index: int) -> Spec:
        if index < 0:
            return Spec(_NO_TYPE, (), False)
        t = model.tensors[index]
        return Spec(t.dtype, t.shape, t.data is not None)

    return Signature(
        op.op_name,
        op.options,
        tuple(spec(i) for i in op.inputs),
        tuple(spec(i) for i in op.outputs),
        op.custom_code,
    )


def refusal(sig: Signature) -> str | None:
    """Why the GPU delegate refuses the op `sig`, in the source's words; None when it takes it."""
    reason = op_refusal(sig)
    return reason if reason is not None else tensor_refusal(sig)


def op_refusal(sig: Signature) -> str | None:
    """gpu_compatibility.cc's `CheckGpuDelegateCompatibility` for one op."""
    if sig.op == "CUSTOM":
        return _custom(sig)
    rule = RULES.get(sig.op)
    if rule is None:
        return f"Not supported op {sig.op}"
    return rule(sig)


def tensor_refusal(sig: Signature) -> str | None:
    """model_builder.cc's tensor check: no tensor of rank 5 or more, runtime tensors of the allowed types."""
    allowed_in = {*_FLOATS, "int8", "uint8"}
    allowed_out = set(allowed_in)
    if sig.op in _LOGICAL:
        allowed_out.add("bool")
    if sig.op == "CAST":
        allowed_in |= {"bool", "int32"}
        allowed_out |= {"int32", "bool"}
    if sig.op == "ONE_HOT":
        allowed_in.add("int32")
    if sig.op in ("SELECT", "SELECT_V2"):
        allowed_in.add("bool")
    for kind, tensors, allowed in (("input", sig.inputs, allowed_in), ("output", sig.outputs, allowed_out)):
        for position, t in enumerate(tensors):
            if t.dtype == _NO_TYPE:
                continue
            if len(t.dims) >= 5:
                return f"{TENSOR_REASON} ({kind} {position} is {len(t.dims)}-D)"
            if not t.const and t.dtype not in allowed:
                return f"{TENSOR_REASON} ({kind} {position} is {t.dtype})"
    return None


# --- the source's helpers -------------------------------------------------------------------------------------


def _type_name(spec: Spec) -> str:
    return spec.dtype.upper()  # TfLiteTypeGetName: "FLOAT32", "INT32"...


def _activation(value: int) -> str | None:
    return "TfLiteFusedActivation.kTfLiteActSignBit" if value == _SIGN_BIT else None


def _inputs_outputs(sig: Signature, runtime: int, outputs: int) -> str | None:
    if sig.runtime_inputs != runtime:
        return f"Expected {runtime} runtime input tensor(s), but node has {sig.runtime_inputs} runtime input(s)."
    if len(sig.outputs) != outputs:
        return f"Expected {outputs} output tensor(s), but node has {len(sig.outputs)} output(s)."
    return None


def _inputs_consts_outputs(sig: Signature, runtime: int, const: int, outputs: int) -> str | None:
    if sig.const_inputs != const:
        return f"Expected {const} const input tensor(s), but node has {sig.const_inputs} const input(s)."
    return _inputs_outputs(sig, runtime, outputs)


def _available(sig: Signature, index: int) -> str | None:
    if index >= len(sig.inputs):
        return f"Requested index goes beyond array size: {index} vs {len(sig.inputs)}"
    return None


def _convolution_io(sig: Signature) -> str | None:
    if sig.runtime_inputs > 2:
        return f"Expected 1 or 2 input tensor(s), but node has {sig.runtime_inputs} runtime inputs."
    if len(sig.outputs) != 1:
        return f"Expected 1 output tensor(s), but node has {len(sig.outputs)} runtime outputs."
    return _available(sig, 1) if sig.runtime_inputs == 1 else None


def _strides(sig: Signature) -> str | None:
    h, w = sig.option("strideH"), sig.option("strideW")
    if h <= 0 or w <= 0:
        return f"Incorrect stride values: stride_height = {h}, stride_width = {w}"
    return None


def _dilation(sig: Signature) -> str | None:
    h, w = sig.option("dilationHFactor"), sig.option("dilationWFactor")
    if h <= 0 or w <= 0:
        return f"Incorrect dilation values: dilation_height = {h}, dilation_width = {w}"
    return None


def _kernels(sig: Signature) -> str | None:
    h, w = sig.option("filterHeight"), sig.option("filterWidth")
    if h <= 0 or w <= 0:
        return f"Incorrect kernel values: kernel_height = {h}, kernel_width = {w}"
    return None


def _axes_int32_const(sig: Signature, index: int) -> str | None:
    if index >= len(sig.inputs):
        return f"Requested index goes beyond array size: {index} vs {len(sig.inputs)}"
    axes = sig.inputs[index]
    if not axes.const:
        return f"{sig.op} is only supported with constant axes."
    if axes.dtype != "int32":
        return f"{sig.op} supports int32 tensor for axes. But node has {_type_name(axes)}"
    return None


def _first(*checks: Callable[[], str | None]) -> str | None:
    """The first failing check's message (the source's RETURN_IF_ERROR chain)."""
    for check in checks:
        reason = check()
        if reason is not None:
            return reason
    return None


def _broadcastable(longer: tuple[int, ...], shorter: tuple[int, ...]) -> bool:
    for i in range(1, max(len(longer), len(shorter)) + 1):
        a = longer[-i] if i <= len(longer) else 1
        b = shorter[-i] if i <= len(shorter) else 1
        if a != b and a != 1 and b != 1:
            return False
    return True


def _broadcast(a: Spec, b: Spec) -> str | None:
    """CheckAddMulBroadcastCompatibility with kEnhancedBroadcast, as the offline entry point uses it."""
    if len(a.dims) > 1 and len(b.dims) > 1 and len(a.dims) != len(b.dims):
        longer, shorter = (a.dims, b.dims) if len(a.dims) >= len(b.dims) else (b.dims, a.dims)
        if not _broadcastable(longer, shorter):
            return (
                f"Doesn't support broadcasting - input0: [{','.join(map(str, a.dims))}], "
                f"input1: [{','.join(map(str, b.dims))}]"
            )
    return None


# --- per op -----------------------------------------------------------------------------------------------------


def _ok(sig: Signature) -> str | None:
    return None


def _pooling(sig: Signature) -> str | None:
    return _first(
        lambda: _inputs_outputs(sig, 1, 1),
        lambda: _kernels(sig),
        lambda: _strides(sig),
        lambda: _activation(sig.option("fusedActivationFunction")),
    )


def _conv_2d(sig: Signature) -> str | None:
    return _first(
        lambda: _convolution_io(sig),
        lambda: _strides(sig),
        lambda: _dilation(sig),
        lambda: _activation(sig.option("fusedActivationFunction")),
    )


def _depthwise(sig: Signature) -> str | None:
    reason = _first(
        lambda: _convolution_io(sig),
        lambda: _strides(sig),
        lambda: _dilation(sig),
        lambda: _activation(sig.option("fusedActivationFunction")),
    )
    if reason is not None:
        return reason
    multiplier = sig.option("depthMultiplier")
    inp, weights, out = sig.inputs[0], sig.inputs[1], sig.outputs[0]
    bias = sig.inputs[2] if len(sig.inputs) > 2 else None
    if len(inp.dims) != 4:
        return "input.dims.size != 4"
    if len(weights.dims) != 4:
        return "filter.dims.size != 4"
    if len(out.dims) != 4:
        return "output.dims.size != 4"
    if inp.dims[0] != out.dims[0]:
        return "input.b != output.b"
    if weights.dims[3] != out.dims[3]:
        return "filter.i != output.c"
    if out.dims[3] != inp.dims[3] * multiplier:
        return "output.c != input.c * depth_multiplier"
    if bias is not None and _elements(bias.dims) != out.dims[3]:
        return "bias.size != output.c"
    if multiplier != 1 and inp.dims[3] != 1:
        return "depth_multiplier != 1 && input.c != 1"
    return None


def _elements(dims: tuple[int, ...]) -> int:
    count = 1
    for d in dims:
        count *= d
    return count


def _add(sig: Signature) -> str | None:
    if len(sig.inputs) != 2:
        return "ADD requires two input tensors."
    return _broadcast(sig.inputs[0], sig.inputs[1])


def _mul(sig: Signature) -> str | None:
    if len(sig.inputs) != 2:
        return "MUL requires two input tensors."
    a, b = sig.inputs
    if len(a.dims) == len(b.dims):
        a_smaller = any(x < y for x, y in zip(a.dims, b.dims, strict=True))
        b_smaller = any(y < x for x, y in zip(a.dims, b.dims, strict=True))
        if a_smaller and b_smaller:
            return "MUL requires one tensor that not less than second in all dimensions."
    else:
        reason = _broadcast(a, b)
        if reason is not None:
            return reason
    return _activation(sig.option("fusedActivationFunction"))


def _elementwise_one(sig: Signature) -> str | None:
    return _inputs_consts_outputs(sig, 1, 0, 1)


def _elementwise_two(sig: Signature) -> str | None:
    if _inputs_consts_outputs(sig, 2, 0, 1) is not None and _inputs_consts_outputs(sig, 1, 1, 1) is not None:
        return "Op can only handle 1 or 2 operand(s)."
    if sig.op in ("SUB", "DIV"):
        return _activation(sig.option("fusedActivationFunction"))
    return None


def _cast(sig: Signature) -> str | None:
    reason = _inputs_outputs(sig, 1, 1)
    if reason is not None:
        return reason
    src, dst = sig.inputs[0].dtype, sig.outputs[0].dtype
    if (src == "bool" and dst in _FLOATS) or (src in _FLOATS and dst == "bool"):
        return None
    if src in ("float32", "int32") and dst in ("float32", "int32"):
        return None
    return f"Not supported Cast case. Input type: {src.upper()} and output type: {dst.upper()}"


def _cumsum(sig: Signature) -> str | None:
    if len(sig.inputs) != 2:
        return "Expects 2 inputs and 1 output"
    data, axis, out = sig.inputs[0], sig.inputs[1], sig.outputs[0]
    if data.dtype not in _FLOATS or out.dtype != data.dtype or axis.dtype != "int32" or not axis.const:
        return "Input/output must be float type and indices must be constant int32 type"
    return None


def _depth_space(sig: Signature) -> str | None:
    reason = _inputs_outputs(sig, 1, 1)
    if reason is not None:
        return reason
    name = "DEPTH_TO_SPACE" if sig.op == "DEPTH_TO_SPACE" else "SPACE_TO_DEPTH"
    block = sig.option("blockSize")
    if block == 1:
        return f"{name} block_size = 1 is a no-op."
    if block < 1:
        return f"{name} block_size must be > 1."
    return None


def _dequantize(sig: Signature) -> str | None:
    if len(sig.inputs) != 1 or len(sig.outputs) != 1:
        # sic: the source passes printf placeholders to StrCat, which appends the counts after them
        return f"Expected 1 input & output each from Dequantize, got: %d, %d{len(sig.inputs)}{len(sig.outputs)}"
    if sig.inputs[0].dtype == "int16":
        return "Unsupported dequantization type."
    return None


def _fully_connected(sig: Signature) -> str | None:
    if sig.option("weightsFormat") != 0:
        return f"Unsupported FullyConnected weights format: {sig.option('weightsFormat')}"
    if sig.runtime_inputs > 2:
        return "FullyConnected doesn't support more than 2 runtime inputs."
    if sig.inputs[0].const:
        return "FullyConnected doesn't support constant input."
    if sig.option("keepNumDims") and len(sig.inputs[0].dims) != len(sig.outputs[0].dims):
        return "Input and output dimensions different and FullyConnected doesn't support keep_num_dims."
    return None


def _gather(sig: Signature) -> str | None:
    if _inputs_consts_outputs(sig, 2, 0, 1) is not None and _inputs_consts_outputs(sig, 1, 1, 1) is not None:
        return "Op can only handle 1 or 2 operand(s)."
    if sig.inputs[0].dtype == "int32":
        return "Does not accept INT32 input."
    if len(sig.inputs[1].dims) != 1:
        return "Only support 1D indices"
    return None if sig.inputs[1].dtype == "int32" else "Only accept INT32 indices"


def _mean(sig: Signature) -> str | None:
    return _inputs_consts_outputs(sig, 1, 1, 1) or _axes_int32_const(sig, 1)


def _reduce(sig: Signature) -> str | None:
    return _inputs_outputs(sig, 1, 1) or _axes_int32_const(sig, 1)


def _one_in_one_out(sig: Signature) -> str | None:
    return _inputs_outputs(sig, 1, 1)


def _slice(sig: Signature) -> str | None:
    if len(sig.inputs) < 3:
        return f"SLICE requires 3 inputs, but node has {len(sig.inputs)} inputs."
    rank = len(sig.inputs[0].dims)
    if rank not in (3, 4):
        return f"SLICE supports for 3 or 4 dimensional tensors only, but node has {rank} dimensional tensors."
    return None


def _strided_slice(sig: Signature) -> str | None:
    if sig.option("ellipsisMask"):
        return "Slice does not support ellipsis_mask."
    if sig.option("newAxisMask"):
        return "Slice does not support new_axis_mask."
    if sig.option("shrinkAxisMask"):
        return "Slice does not support shrink_axis_mask parameter. "
    if len(sig.inputs) < 4:
        return "STRIDED_SLICE requires 4 inputs."
    if len(sig.inputs[0].dims) not in (3, 4):
        return "STRIDED_SLICE supports for 3 or 4 dimensional tensors only."
    return None


def _softmax(sig: Signature) -> str | None:
    return None if sig.options.get("beta", 0) == 1 else "Softmax.beta != 1 is not supported."


def _transpose_conv(sig: Signature) -> str | None:
    return _convolution_io(sig) or _strides(sig)


def _resize_bilinear(sig: Signature) -> str | None:
    reason = _inputs_outputs(sig, 1, 1)
    if reason is not None:
        return reason
    if sig.option("alignCorners") and sig.option("halfPixelCenters"):
        return "If half_pixel_centers is True, align_corners must be False."
    return None


def _pad(sig: Signature) -> str | None:
    if sig.op == "MIRROR_PAD" and sig.option("mode") != 0:  # MirrorPadMode.REFLECT
        return f"Only Reflective padding is supported for Mirror Pad operation. But node has {sig.option('mode')}"
    reason = _inputs_outputs(sig, 1, 1) or _available(sig, 1)
    if reason is not None:
        return reason
    pads = sig.inputs[1].dims
    if len(pads) != 2:
        return f"Invalid paddings tensor dimension: expected 2 dim, got {len(pads)} dim"
    if pads[0] not in (3, 4) or pads[1] != 2:
        return f"Invalid paddings tensor shape: expected 4x2 or 3x2, got {pads[0]}x{pads[1]}"
    return None


def _add_n(sig: Signature) -> str | None:
    return None if len(sig.inputs) == 2 else "ADD_N only supports 2 inputs."


def _batch_matmul(sig: Signature) -> str | None:
    if len(sig.inputs) == 2 and len(sig.outputs) == 1:
        return None
    return f"Expected 2 inputs and 1 output, got: {len(sig.inputs)} inputs and {len(sig.outputs)} outputs"


def _select_v2(sig: Signature) -> str | None:
    if len(sig.inputs) != 3 or len(sig.outputs) != 1:
        return "Expected 3 inputs and 1 output"
    error = (
        "Cond must be float or bool type, if, else tensors must be float and either be same the shape as output "
        "or constant, scalar."
    )
    cond, then, other = sig.inputs
    if cond.dtype not in ("bool", *_FLOATS) or then.dtype not in _FLOATS or other.dtype not in _FLOATS:
        return error
    out = sig.outputs[0].dims
    for t, name in ((then, "if"), (other, "else")):
        if t.dims and t.dims != out and (len(t.dims) > 1 or t.dims[0] > 1):
            return error
        if t.const and len(t.dims) == 2:
            return f"2-D {name} tensor only supported if constant."
    return None


def _lstm(sig: Signature) -> str | None:
    activation = sig.option("fusedActivationFunction")
    if sig.option("kernelType") == 0:  # LSTMKernelType.FULL
        if len(sig.inputs) not in (20, 24):
            return f"Expected 20 or 24 input tensors, but node has {len(sig.inputs)} input(s)."
        if len(sig.outputs) != 1:
            return f"Expected 1 output tensor, but node has {len(sig.outputs)} output(s)."
        if activation != 4:  # TANH; the schema has no SIGMOID fused activation
            return f"Only sigmoid or tanh activation is supported, but node has {activation}"
        return None
    reason = _inputs_consts_outputs(sig, 3, 2, 4)
    if reason is not None:
        return reason
    if activation != 4:
        return f"Only TANH activation is supported. but node has {activation}"
    if sig.option("cellClip"):
        return "cell_clip is not supported."
    if sig.option("projClip"):
        return "proj_clip is not supported."
    return None


def _embedding_lookup(sig: Signature) -> str | None:
    if len(sig.inputs) != 2:
        return f"Expected 2, but got {len(sig.inputs)} inputs."
    ids, values = sig.inputs
    if len(ids.dims) != 1:
        return f"Expected 1D, but got {len(ids.dims)}D input #0."
    if len(values.dims) < 2:
        return f"Expected > 1D, but got {len(values.dims)}D input #1."
    if len(sig.outputs) != 1:
        return f"Expected 1, but got {len(sig.outputs)} outputs."
    out = sig.outputs[0].dims
    if len(values.dims) != len(out):
        return f"Expected {len(values.dims)}, but got {len(out)} for output."
    for i in range(1, len(out)):
        if values.dims[i] != out[i]:
            return f"Expected {values.dims[i]}, but got {out[i]} for output.dim[{i}]."
    if values.dtype not in ("int8", "int4", "float32"):
        return f"Expected int8, int4, or float32, but got {_type_name(values)} for input #1."
    return None


def _one_hot(sig: Signature) -> str | None:
    if len(sig.inputs) != 4 and len(sig.outputs) != 1:  # sic: the source's `&&`
        return "Expects 4 inputs and 1 output"
    error = (
        "Indices must be int32 type, on/off tensors must be constant, scalar, float type, axis must be -1 or last dim"
    )
    indices = sig.inputs[0]
    if indices.dtype != "int32":
        return error
    rank = len(indices.dims)
    axis = sig.option("axis")
    if axis != -1 and (rank == 0 or axis != indices.dims[rank - 1]):
        return error
    for i in range(rank - 1):
        if rank > 3 and i == 0:
            continue
        if indices.dims[i] != 1:
            return f"Unspported non-singleton dim at {i}"
    on, off = sig.inputs[2], sig.inputs[3]
    if on.dtype != "float32" or off.dtype != "float32":
        return error
    if not on.const or not off.const or len(on.dims) > 1 or len(off.dims) > 1:
        return error
    if (on.dims and on.dims[0] > 1) or (off.dims and off.dims[0] > 1):
        return error
    return None


def _dynamic_update_slice(sig: Signature) -> str | None:
    if len(sig.inputs) != 3:
        return "DynamicUpdateSlice requires 3 inputs."
    operand, update, start = sig.inputs
    if len(operand.dims) == 4 and operand.dims[0] != 1:
        return "DynamicUpdateSlice only support 4D operand with batch size 1."
    if len(start.dims) > 1:
        return "DynamicUpdateSlice only support 1D start_indices."
    if operand.dtype != update.dtype:
        return (
            "Array to update and updated slice must have the same data type, but got: array to update: "
            f"{operand.dtype}, updated slice: {update.dtype}"
        )
    if len(start.dims) != 1:
        return f"Start indices must have be 1D, but got: {len(start.dims)}"
    if start.dtype != "int32":
        return "start_indices must be of type int32."
    if len(update.dims) != len(operand.dims):
        return (
            "Operand and update must have the same number of dimensions, but got: operand: "
            f"{len(operand.dims)}, update: {len(update.dims)}"
        )
    return None


def _clamp(sig: Signature) -> str | None:
    low, x, high = (sig.inputs + (Spec(_NO_TYPE, (), False),) * 3)[:3]
    if low.dtype != x.dtype or x.dtype != high.dtype:
        return "Clamp tensors must all be the same type"
    if low.dims != x.dims and _elements(low.dims) != 1:
        return "Min tensor must be the same shape as the input, or a scalar"
    if high.dims != x.dims and _elements(low.dims) != 1:  # sic: the source tests the min tensor's size here
        return "Max tensor must be the same shape as the input, or a scalar"
    return _inputs_consts_outputs(sig, 3, 0, 1)


def _custom(sig: Signature) -> str | None:
    """CheckCustomOpsGpuDelegateCompatibility: four custom ops by name, their counts (their packed C options,
    `custom_initial_data`, are not read here), every other custom op refused."""
    name = sig.custom or ""
    if name == "Convolution2DTransposeBias":
        return _available(sig, 1)
    if name == "MaxPoolingWithArgmax2D":
        return _inputs_outputs(sig, 1, 2)
    if name in ("MaxUnpooling2D", "Resampler"):
        return _inputs_outputs(sig, 2, 1)
    return f"Not supported custom op {name}"


_ELEMENTWISE_ONE = (
    "ABS CEIL COS ELU EXP FLOOR GELU LOG LOGISTIC NEG RSQRT SIGN SIN SQRT SQUARE TANH".split()
)  # one-argument elementwise ops
_ELEMENTWISE_TWO = (
    "ATAN2 DIV EQUAL FLOOR_DIV FLOOR_MOD GREATER GREATER_EQUAL LOGICAL_AND LESS LESS_EQUAL MAXIMUM MINIMUM "
    "NOT_EQUAL POW SQUARED_DIFFERENCE SUB".split()
)  # two-argument elementwise ops

RULES: dict[str, Callable[[Signature], str | None]] = {
    "ADD": _add,
    "ADD_N": _add_n,
    "AVERAGE_POOL_2D": _pooling,
    "BATCH_MATMUL": _batch_matmul,
    "CAST": _cast,
    "CONCATENATION": _ok,
    "CONV_2D": _conv_2d,
    "CUMSUM": _cumsum,
    "DENSIFY": lambda sig: _inputs_outputs(sig, 0, 1),
    "DEPTHWISE_CONV_2D": _depthwise,
    "DEPTH_TO_SPACE": _depth_space,
    "DEQUANTIZE": _dequantize,
    "DYNAMIC_UPDATE_SLICE": _dynamic_update_slice,
    "EMBEDDING_LOOKUP": _embedding_lookup,
    "FULLY_CONNECTED": _fully_connected,
    "GATHER": _gather,
    "HARD_SWISH": _one_in_one_out,
    "LSTM": _lstm,
    "MAX_POOL_2D": _pooling,
    "MEAN": _mean,
    "MUL": _mul,
    "ONE_HOT": _one_hot,
    "PACK": _ok,
    "QUANTIZE": _one_in_one_out,
    "RELU_N1_TO_1": _ok,
    "PRELU": _ok,
    "RESHAPE": _one_in_one_out,
    "SELECT": _select_v2,
    "SELECT_V2": _select_v2,
    "SLICE": _slice,
    "SOFTMAX": _softmax,
    "SPACE_TO_DEPTH": _depth_space,
    "SPLIT": _ok,
    "SPLIT_V": _ok,
    "STRIDED_SLICE": _strided_slice,
    "TILE": _one_in_one_out,
    "TRANSPOSE": _one_in_one_out,
    "TRANSPOSE_CONV": _transpose_conv,
    "RESIZE_BILINEAR": _resize_bilinear,
    "RESIZE_NEAREST_NEIGHBOR": _one_in_one_out,
    "RELU": _ok,
    "RELU6": _ok,
    "LEAKY_RELU": _ok,
    "REDUCE_MAX": _reduce,
    "REDUCE_MIN": _reduce,
    "REDUCE_PROD": _reduce,
    "SUM": _reduce,
    "PAD": _pad,
    "PADV2": _pad,
    "MIRROR_PAD": _pad,
    "STABLEHLO_CLAMP": _clamp,
    **{name: _elementwise_one for name in _ELEMENTWISE_ONE},
    **{name: _elementwise_two for name in _ELEMENTWISE_TWO},
}
"""gpu_compatibility.cc's `switch (opcode)`: each builtin it lists, by the flatbuffer schema's name, and its check;
every other builtin is "Not supported op NAME"."""

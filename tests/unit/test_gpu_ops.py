"""The GPU delegate's rules one by one, on op signatures built by hand (no flatbuffer, no TensorFlow)."""

from __future__ import annotations

from typing import Any

import pytest

from edgepack.analyze.gpu_ops import TENSOR_REASON, Node, Signature, Spec, judge, refusal

CONV = {"strideH": 1, "strideW": 1, "dilationHFactor": 1, "dilationWFactor": 1, "fusedActivationFunction": 0}


def act(*shape: int, dtype: str = "float32") -> Spec:
    """A runtime tensor (no data)."""
    return Spec(dtype, shape, False)


def const(*shape: int, dtype: str = "float32") -> Spec:
    return Spec(dtype, shape, True)


def op(name: str, inputs: list[Spec], outputs: list[Spec], custom: str | None = None, **options: Any) -> Signature:
    return Signature(name, options, tuple(inputs), tuple(outputs), custom)


def conv(dtype: str = "float32", **options: Any) -> Signature:
    ins = [act(1, 8, 8, 3, dtype=dtype), const(4, 3, 3, 3, dtype=dtype), const(4, dtype="int32")]
    return op("CONV_2D", ins, [act(1, 8, 8, 4, dtype=dtype)], **{**CONV, **options})


def test_a_conv_with_a_supported_fused_activation_is_taken() -> None:
    for activation in (0, 1, 2, 3, 4):  # NONE, RELU, RELU_N1_TO_1, RELU6, TANH
        assert refusal(conv(fusedActivationFunction=activation)) is None, activation


def test_a_sign_bit_fused_activation_is_refused_in_the_sources_words() -> None:
    assert refusal(conv(fusedActivationFunction=5)) == "TfLiteFusedActivation.kTfLiteActSignBit"
    pool = {"strideH": 2, "strideW": 2, "filterHeight": 2, "filterWidth": 2, "fusedActivationFunction": 5}
    assert refusal(op("MAX_POOL_2D", [act(1, 8, 8, 3)], [act(1, 4, 4, 3)], **pool)) == (
        "TfLiteFusedActivation.kTfLiteActSignBit"
    )


def test_zero_strides_and_dilations_are_refused_with_their_values() -> None:
    assert refusal(conv(strideH=0)) == "Incorrect stride values: stride_height = 0, stride_width = 1"
    assert refusal(conv(dilationWFactor=0)) == "Incorrect dilation values: dilation_height = 1, dilation_width = 0"


def test_a_rank_5_tensor_is_refused_even_under_an_op_the_delegate_lists() -> None:
    five = op("RESHAPE", [act(1, 2, 4, 4, 3), const(5, dtype="int32")], [act(1, 2, 4, 4, 3)])
    reason = refusal(five)
    assert reason is not None and reason.startswith(TENSOR_REASON)
    assert "5-D" in reason
    four = op("RESHAPE", [act(1, 2, 4, 12), const(4, dtype="int32")], [act(1, 8, 4, 3)])
    assert refusal(four) is None


def test_an_op_the_source_does_not_list_is_not_supported_by_name() -> None:
    conv3d = op("CONV_3D", [act(1, 4, 4, 4, 3), const(3, 3, 3, 3, 2)], [act(1, 2, 2, 2, 2)])
    assert refusal(conv3d) == "Not supported op CONV_3D"
    gather_nd = op("GATHER_ND", [act(4, 3), const(2, 1, dtype="int32")], [act(2, 3)])
    assert refusal(gather_nd) == "Not supported op GATHER_ND"


def test_custom_ops_other_than_the_four_it_knows_are_refused() -> None:
    assert refusal(op("CUSTOM", [act(1, 8)], [act(1, 8)], custom="Erfinv")) == "Not supported custom op Erfinv"
    unpool = op("CUSTOM", [act(1, 8, 8, 3), act(1, 8, 8, 3)], [act(1, 16, 16, 3)], custom="MaxUnpooling2D")
    assert refusal(unpool) is None


def test_runtime_tensor_types_int8_is_taken_int16_and_int32_are_not() -> None:
    for dtype, taken in (("int8", True), ("uint8", True), ("float16", True), ("int16", False), ("int32", False)):
        reason = refusal(op("RELU", [act(1, 8, 8, 4, dtype=dtype)], [act(1, 8, 8, 4, dtype=dtype)]))
        assert (reason is None) is taken, (dtype, reason)
        if not taken:
            assert reason == f"{TENSOR_REASON} (input 0 is {dtype})"


def test_constant_tensors_of_any_type_are_not_checked() -> None:
    assert refusal(conv(dtype="int8")) is None  # int8 weights, int32 bias


def test_quantize_and_dequantize_are_taken_but_not_an_int16_dequantize() -> None:
    assert refusal(op("QUANTIZE", [act(1, 8)], [act(1, 8, dtype="int8")])) is None
    assert refusal(op("DEQUANTIZE", [act(1, 8, dtype="int8")], [act(1, 8)])) is None
    assert refusal(op("DEQUANTIZE", [const(8, dtype="int16")], [act(8)])) == "Unsupported dequantization type."


def test_mean_needs_constant_int32_axes() -> None:
    assert refusal(op("MEAN", [act(1, 4, 4, 8), const(2, dtype="int32")], [act(1, 8)])) is None
    assert refusal(op("MEAN", [act(1, 4, 4, 8), act(2, dtype="int32")], [act(1, 8)])) == (
        "Expected 1 const input tensor(s), but node has 0 const input(s)."
    )
    assert refusal(op("SUM", [act(1, 4, 4, 8), const(2, dtype="int64")], [act(1, 8)])) == (
        "SUM supports int32 tensor for axes. But node has INT64"
    )


def test_softmax_beta_strided_slice_masks_and_pad_shapes() -> None:
    assert refusal(op("SOFTMAX", [act(1, 10)], [act(1, 10)], beta=1.0)) is None
    assert refusal(op("SOFTMAX", [act(1, 10)], [act(1, 10)], beta=2.0)) == "Softmax.beta != 1 is not supported."
    ins = [act(1, 4, 4, 3), const(4, dtype="int32"), const(4, dtype="int32"), const(4, dtype="int32")]
    assert refusal(op("STRIDED_SLICE", ins, [act(1, 4, 4, 3)])) is None
    assert refusal(op("STRIDED_SLICE", ins, [act(1, 4, 3)], shrinkAxisMask=2)) == (
        "Slice does not support shrink_axis_mask parameter. "
    )
    assert refusal(op("PAD", [act(1, 8, 8, 3), const(4, 2, dtype="int32")], [act(1, 10, 10, 3)])) is None
    assert refusal(op("PAD", [act(1, 4), const(2, 2, dtype="int32")], [act(1, 6)])) == (
        "Invalid paddings tensor shape: expected 4x2 or 3x2, got 2x2"
    )


def test_add_broadcasts_as_the_offline_check_does_and_mul_refuses_crossed_shapes() -> None:
    assert refusal(op("ADD", [act(1, 4, 4, 8), act(4, 8)], [act(1, 4, 4, 8)])) is None
    assert refusal(op("ADD", [act(1, 4, 4, 8), act(3, 8)], [act(1, 4, 4, 8)])) == (
        "Doesn't support broadcasting - input0: [1,4,4,8], input1: [3,8]"
    )
    assert refusal(op("MUL", [act(1, 256, 1), act(1, 1, 256)], [act(1, 256, 256)])) == (
        "MUL requires one tensor that not less than second in all dimensions."
    )
    assert refusal(op("MUL", [act(1, 8, 8, 4), act(1, 1, 1, 4)], [act(1, 8, 8, 4)])) is None


def test_depthwise_multiplier_needs_one_input_channel() -> None:
    def depthwise(cin: int, multiplier: int) -> str | None:
        cout = cin * multiplier
        ins = [act(1, 8, 8, cin), const(1, 3, 3, cout), const(cout, dtype="int32")]
        return refusal(op("DEPTHWISE_CONV_2D", ins, [act(1, 8, 8, cout)], **CONV, depthMultiplier=multiplier))

    assert depthwise(4, 1) is None
    assert depthwise(1, 4) is None
    assert depthwise(4, 2) == "depth_multiplier != 1 && input.c != 1"


@pytest.mark.parametrize("name", ["CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"])
def test_more_than_two_runtime_inputs_are_refused(name: str) -> None:
    reason = refusal(op(name, [act(1, 8, 8, 3), act(4, 3, 3, 3), act(4)], [act(1, 8, 8, 4)], **CONV))
    assert reason in (
        "Expected 1 or 2 input tensor(s), but node has 3 runtime inputs.",
        "FullyConnected doesn't support more than 2 runtime inputs.",
    )


def test_cumsum_needs_float_data_and_a_constant_int32_axis() -> None:
    assert refusal(op("CUMSUM", [act(1, 8), const(dtype="int32")], [act(1, 8)])) is None
    assert refusal(op("CUMSUM", [act(1, 8), act(dtype="int32")], [act(1, 8)])) == (
        "Input/output must be float type and indices must be constant int32 type"
    )


def test_the_record_counts_ops_and_macs_and_names_what_it_refuses() -> None:
    nodes = [
        Node(0, "CONV_2D", "model/conv1", conv(), 1000),
        Node(1, "CONV_3D", "model/conv3d", op("CONV_3D", [act(1, 2, 8, 8, 4)], [act(1, 2, 8, 8, 4)]), 3000),
        Node(2, "CUSTOM_THING", None, op("CUSTOM", [act(1, 8)], [act(1, 8)], custom="CUSTOM_THING"), 0),
        Node(3, "RELU", "model/relu", op("RELU", [act(1, 8)], [act(1, 8)]), 0),
    ]
    result = judge(nodes)
    assert not result.compatible
    assert [(r.index, r.op, r.layer) for r in result.refused] == [
        (1, "CONV_3D", "model/conv3d"),
        (2, "CUSTOM_THING", None),
    ]
    assert [r.reason for r in result.refused] == ["Not supported op CONV_3D", "Not supported custom op CUSTOM_THING"]
    assert (result.ops, result.accepted, result.macs, result.accepted_macs) == (4, 2, 4000, 1000)
    assert result.mac_share == pytest.approx(0.25)
    data = result.to_dict()
    assert sorted(data) == sorted(
        ["compatible", "ops", "gpu_ops", "macs", "gpu_macs", "gpu_mac_share", "summary", "refused"]
    )
    assert data["refused"] == [r.to_dict() for r in result.refused]
    assert sorted(data["refused"][0]) == ["index", "layer", "macs", "op", "reason"]
    assert data["compatible"] is False
    assert data["summary"] == "2 of 4 ops, 25.0 % of MACs on the GPU"


def test_a_graph_without_macs_has_no_mac_share() -> None:
    result = judge([Node(0, "RELU", None, op("RELU", [act(1, 4)], [act(1, 4)]), 0)])
    assert result.compatible and result.mac_share is None
    assert result.summary() == "1 of 1 ops, no MACs on the GPU"


def test_the_gpu_budgets_read_the_verdict_and_fail_when_it_is_missing() -> None:
    from edgepack.gate.budgets import Measurements, check_budgets
    from edgepack.recipe.schema import Budgets

    nodes = [
        Node(0, "CONV_2D", "model/conv1", conv(), 1000),
        Node(1, "CONV_3D", None, op("CONV_3D", [act(1, 2, 8, 8, 4)], [act(1, 2, 8, 8, 4)]), 3000),
    ]
    budgets = Budgets(gpu_compatible=True, min_gpu_macs_share=0.2)
    plain = Measurements(size_bytes=1, accuracy_float=None, accuracy_tflite=None, latency_p90_ms={})
    results = {r.name: r for r in check_budgets(budgets, Measurements(**{**plain.__dict__, "gpu": judge(nodes)}))}
    assert not results["gpu_compatible"].passed and results["gpu_compatible"].measured == 1
    assert results["gpu_compatible"].detail == "op 1 CONV_3D: Not supported op CONV_3D"  # no layer, no "()"
    assert results["min_gpu_macs_share"].passed and results["min_gpu_macs_share"].measured == pytest.approx(0.25)
    assert results["min_gpu_macs_share"].detail == "1 of 2 ops, 25.0 % of MACs on the GPU"
    missing = {r.name: r for r in check_budgets(budgets, plain)}  # no verdict: both fail, saying so
    for name in ("gpu_compatible", "min_gpu_macs_share"):
        assert not missing[name].passed and missing[name].measured is None
        assert missing[name].detail == "the GPU delegate's verdict was not computed"


def test_a_graph_without_macs_keeps_every_mac_on_the_gpu() -> None:
    from edgepack.gate.budgets import Measurements, check_budgets
    from edgepack.recipe.schema import Budgets

    verdict = judge([Node(0, "RELU", None, op("RELU", [act(1, 4)], [act(1, 4)]), 0)])
    measured = Measurements(1, None, None, {}, gpu=verdict)
    (result,) = check_budgets(Budgets(min_gpu_macs_share=1.0), measured)
    assert result.passed and result.measured == 1.0 and result.detail == "1 of 1 ops, no MACs on the GPU"

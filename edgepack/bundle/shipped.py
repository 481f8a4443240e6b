"""The model that ships: the converted model with its TFLite metadata embedded, checked twice.

`ship_model` builds the metadata from the recipe, the dataset and the model's tensors, embeds
it (`edgepack.bundle.metadata`), then proves two things before anything is written:

- **normalization**: a few raw test images go through the preprocessing the embedded metadata
  declares (resize to the input size, the declared colour space, `(x - mean) / std` with the
  declared NormalizationOptions) and must give the inputs the training pipeline gave the model.
  A wrong mean or std (the classic Android bug: the app feeds 0..255 where the model was trained
  on 0..1) is refused here, not found in an app review;
- **unchanged**: the model with metadata gives LiteRT outputs identical, bit for bit, to the
  converted model's on the same test samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.bundle.metadata import AssociatedFile, ModelMeta, TensorMeta, embed, metadata_bytes, read_metadata
from edgepack.errors import BundleError, StageError
from edgepack.tasks import Task
from edgepack.tasks import get as task_of

PROOF_SAMPLES = 8  # raw test images checked against the training pipeline's inputs
SAME_OUTPUT_SAMPLES = 32  # test samples both models must agree on
COLOR_SPACES = {1: "grayscale", 3: "rgb"}
CLASSIFICATION = task_of("classification")  # the task a layout or a usage note is for, unless told


@dataclass(frozen=True)
class Shipped:
    """The bytes that ship and what was checked about them (the manifest's `model.metadata`)."""

    data: bytes
    record: dict[str, Any]


@dataclass(frozen=True)
class Layout:
    """How the `.tflite`'s tensors map to the data: per tflite input, the data input it takes; per tflite
    output, the Keras output it is; the task and the output names (regression: the target keys)."""

    inputs: list[int]
    outputs: list[int]
    task: Task = CLASSIFICATION


def describe(
    name: str,
    description: str,
    version: str,
    bundle: Any,
    data: Any,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    labels_file: str | None,
    layout: Layout | None = None,
) -> ModelMeta:
    """The metadata from the recipe, the dataset and the tensors (in the `.tflite`'s order): image inputs
    with their colour space and 8-bit normalization, other inputs as feature tensors with theirs; outputs
    described for the task (class scores with the labels, targets, reconstruction or score, raw outputs)."""
    layout = layout or Layout(list(range(len(inputs))), list(range(len(outputs))))
    metas = [_input_meta(bundle, data, t, layout.inputs[i], len(inputs)) for i, t in enumerate(inputs)]
    outs = [
        _output_meta(bundle, data, t, layout.outputs[i], layout.task, labels_file, len(outputs))
        for i, t in enumerate(outputs)
    ]
    return ModelMeta(
        name=name,
        description=description,
        version=version,
        author=bundle.author,
        license=bundle.license,
        inputs=metas,
        outputs=outs,
    )


def _input_meta(bundle: Any, data: Any, tensor: dict[str, Any], index: int, count: int) -> TensorMeta:
    custom = bundle.input_description if count == 1 else None
    x = data.train_inputs[index]
    if data.images[index]:
        height, width, channels = (int(d) for d in tensor["shape"][1:4])
        mean, std = app_normalization(data, channels)
        flat = x.reshape(-1, channels)
        colour = COLOR_SPACES.get(channels, "unknown")
        unit = "8-bit pixel x (0..255)" if data.pixel_range is not None else "pixel x"
        text = (
            f"{height}x{width} {colour} image ({channels} channel(s), NHWC). Preprocess each {unit} as "
            f"(x - mean) / std with the NormalizationOptions below"
        )
        text += (
            f", then quantize to {tensor['dtype']}: {quantize_text(tensor)}." if tensor["scale"] is not None else "."
        )
        return TensorMeta(
            "image" if count == 1 else f"image_{index}",
            custom or text,
            image=True,
            color_space=colour,
            mean=mean,
            std=std,
            min=[float(v) for v in flat.min(axis=0)],
            max=[float(v) for v in flat.max(axis=0)],
        )
    last = int(x.shape[-1]) if x.ndim > 1 else 1
    mean, std = (_per_channel(v, last) for v in (data.normalization.mean, data.normalization.std))
    flat = x.reshape(-1, last)
    shape = "x".join(str(int(d)) for d in tensor["shape"][1:])
    text = (
        f"Feature tensor of {shape} values per sample ({tensor['dtype']}). Normalize each value x as "
        f"(x - mean) / std with the NormalizationOptions below (per value of the last axis)"
    )
    text += f", then quantize: {quantize_text(tensor)}." if tensor["scale"] is not None else "."
    return TensorMeta(
        "features" if count == 1 else f"features_{index}",
        custom or text,
        mean=mean,
        std=std,
        min=[float(v) for v in flat.min(axis=0)],
        max=[float(v) for v in flat.max(axis=0)],
    )


def _output_meta(
    bundle: Any, data: Any, tensor: dict[str, Any], index: int, task: Task, labels_file: str | None, count: int
) -> TensorMeta:
    custom = bundle.output_description if count == 1 else None
    shape = "x".join(str(int(d)) for d in tensor["shape"][1:]) or "1"
    quantized = tensor["scale"] is not None
    quant = f" ({tensor['dtype']}: {dequantize_text(tensor, 'value')})" if quantized else ""
    if task.metadata_kind == "class_scores" and index == 0 and labels_file:
        scores = f" ({tensor['dtype']}: {dequantize_text(tensor)})" if quantized else ""
        text = f"Scores for the {len(data.labels)} classes, in the order of {labels_file}{scores}."
        return TensorMeta(
            "scores", custom or text, files=[AssociatedFile(labels_file, "Class names, one per line, in output order.")]
        )
    if task.metadata_kind == "targets":
        key = data.target_keys[index] if index < len(data.target_keys) else f"output {index}"
        return TensorMeta(
            f"prediction_{index}" if count > 1 else "prediction",
            custom or f"Predicted targets ({shape} values per sample, the units of '{key}'){quant}.",
        )
    if task.metadata_kind == "anomaly":
        if tensor["shape"][1:] == list(data.train_inputs[0].shape[1:]):
            text = (
                "Reconstruction of the (normalized) input; the anomaly score is the mean squared difference "
                f"between the normalized input and this output (higher: more anomalous){quant}."
            )
            return TensorMeta("reconstruction", custom or text)
        return TensorMeta("anomaly_score", custom or f"Anomaly score (higher: more anomalous){quant}.")
    return TensorMeta(f"output_{index}", custom or f"Output {index} of the model ({shape} values per sample){quant}.")


def app_normalization(data: Any, channels: int) -> tuple[list[float], list[float]]:
    """The dataset's normalization expressed for the 8-bit pixels (0..255) an app holds, per channel:
    raw r = black + p * (white - black) / 255, so (r - mean) / std = (p - mean') / std' with
    mean' = (mean - black) / k and std' = std / k, k = (white - black) / 255. Without a known pixel
    range, the dataset's own numbers."""
    mean = _per_channel(data.normalization.mean, channels)
    std = _per_channel(data.normalization.std, channels)
    if data.pixel_range is None:
        return mean, std
    black, white = data.pixel_range
    k = (white - black) / 255.0
    return [(m - black) / k for m in mean], [s / k for s in std]


def quantize_text(tensor: dict[str, Any]) -> str:
    """How a normalized input x' becomes the integer tensor's q, with its numbers."""
    zp = int(tensor["zero_point"])
    return f"q = round(x' / {tensor['scale']:.9g}) {'-' if zp < 0 else '+'} {abs(zp)}"


def dequantize_text(tensor: dict[str, Any], what: str = "score") -> str:
    """How an integer output q becomes a score (or value), with its numbers."""
    zp = int(tensor["zero_point"])
    return f"{what} = (q {'+' if zp < 0 else '-'} {abs(zp)}) * {tensor['scale']:.9g}"


def _per_channel(value: float | list[float], channels: int) -> list[float]:
    values = [float(v) for v in (value if isinstance(value, list) else [value])]
    return values * channels if len(values) == 1 and channels > 1 else values


def ship_model(
    converted: bytes,
    meta: ModelMeta,
    files: dict[str, bytes],
    data: Any,
    resize: tuple[int, int] | None,
    layout: Layout | None = None,
) -> Shipped:
    """Embed `meta` and `files` in `converted`, prove the declared normalization of every input, check
    the outputs unchanged."""
    shipped = embed(converted, metadata_bytes(meta), files)
    declared = read_metadata(shipped)
    if declared is None:  # embed wrote it: reading nothing back is a defect, said plainly
        raise StageError(
            "the embedded metadata cannot be read back",
            code="metadata-unreadable",
            hint="report this as an edgepack bug; set bundle.metadata = false meanwhile",
        )
    layout = layout or Layout(list(range(len(data.test_inputs))), [])
    proofs = []
    for position, index in enumerate(layout.inputs):
        tensor = declared["subgraphs"][0]["inputs"][position]
        proofs.append(
            normalization_proof(declared, data, resize, position, index)
            if data.images[index]
            else feature_proof(tensor, data, index)
        )
    same = same_outputs(converted, shipped, [x[:SAME_OUTPUT_SAMPLES] for x in data.test_inputs], layout.inputs)
    return Shipped(
        shipped,
        {
            "embedded": True,
            "min_parser_version": declared["min_parser_version"],
            "associated_files": sorted(files),
            "normalization_proof": proofs[0] if len(proofs) == 1 else proofs,
            "same_outputs": same,
        },
    )


def feature_proof(tensor: dict[str, Any], data: Any, index: int) -> dict[str, Any]:
    """A feature input's raw test values normalized with the metadata's own mean and std must be the
    inputs the training pipeline gave the model (float rounding aside)."""
    norm = tensor.get("normalization")
    raw = data.raw_tests[index][:PROOF_SAMPLES].astype(np.float64) if data.raw_tests else None
    if raw is None or norm is None:
        raise BundleError(
            "cannot prove the normalization: no raw test values or no NormalizationOptions",
            code="normalization-unproven",
        )
    theirs = data.test_inputs[index][:PROOF_SAMPLES].astype(np.float64)
    mean, std = np.asarray(norm["mean"], dtype=np.float64), np.asarray(norm["std"], dtype=np.float64)
    last = raw.shape[-1] if raw.ndim > 1 else 1
    if mean.size not in (1, last) or std.size not in (1, last) or np.any(std <= 0):
        raise _mismatch(
            f"the declared mean {norm['mean']} / std {norm['std']} do not fit {last} value(s) on the last axis",
            norm,
            data,
        )
    worst = float(np.max(np.abs((raw - mean) / std - theirs))) if raw.size else 0.0
    tolerance = 1e-5 * (float(np.max(np.abs(theirs))) if theirs.size else 1.0) + 1e-6
    if worst > tolerance:
        raise _mismatch(
            f"input {index}: the metadata's normalization differs from the training pipeline's by up "
            f"to {worst:.6g} (tolerance {tolerance:.3g})",
            norm,
            data,
        )
    return {"samples": int(len(raw)), "input": index, "pixels": None, "max_abs_diff": worst, "tolerance": tolerance}


def normalization_proof(
    declared: dict[str, Any], data: Any, resize: tuple[int, int] | None, position: int = 0, index: int = 0
) -> dict[str, Any]:
    """Raw test images as an app holds them (8-bit pixels, from `dataset.pixel_range`), resized and
    converted to the declared colour space, then normalized with the metadata's own mean and std,
    versus the inputs the training pipeline gave the model; a `BundleError` naming the sample, the
    difference and both normalizations when they differ by more than the 8-bit rounding allows."""
    from edgepack.datasets.core import resize as resized
    from edgepack.datasets.core import to_channels

    image = declared["subgraphs"][0]["inputs"][position]  # the tflite input at `position` takes data input `index`
    norm = image.get("normalization")
    raw_test = data.raw_tests[index] if data.raw_tests else None
    if raw_test is None or norm is None:
        raise BundleError(
            "cannot prove the normalization: no raw test images or no NormalizationOptions",
            code="normalization-unproven",
        )
    count = min(PROOF_SAMPLES, len(raw_test))
    raw = raw_test[:count].astype(np.float64)
    if data.pixel_range is not None:
        black, white = data.pixel_range
        if raw.min() < black or raw.max() > white:
            raise _mismatch(
                f"dataset.pixel_range is {black:g}..{white:g} but the test images hold values from "
                f"{raw.min():g} to {raw.max():g}",
                norm,
                data,
            )
        pixels = np.clip(np.round((raw - black) * 255.0 / (white - black)), 0, 255)  # the app's 8-bit image
        step = 1.0  # rounding to 8 bits moves a pixel by up to half of this
    else:
        pixels, step = raw, 0.0
    height, width = data.test_inputs[index].shape[1:3]
    if resize is not None or pixels.shape[1:3] != (height, width):
        pixels = resized(pixels.astype(np.float32), (int(height), int(width))).astype(np.float64)
    channels = {"grayscale": 1, "rgb": 3}.get((image.get("content") or {}).get("color_space", ""))
    if channels is not None:
        pixels = to_channels(pixels, channels).astype(np.float64)
    theirs = data.test_inputs[index][:count].astype(np.float64)
    if pixels.shape != theirs.shape:
        raise _mismatch(
            f"the declared preprocessing gives inputs of shape {list(pixels.shape[1:])}, "
            f"the model was trained on {list(theirs.shape[1:])}",
            norm,
            data,
        )
    mean, std = np.asarray(norm["mean"], dtype=np.float64), np.asarray(norm["std"], dtype=np.float64)
    if mean.size not in (1, pixels.shape[-1]) or std.size not in (1, pixels.shape[-1]) or np.any(std <= 0):
        raise _mismatch(
            f"the declared mean {norm['mean']} / std {norm['std']} do not fit {pixels.shape[-1]} channel(s)", norm, data
        )
    ours = (pixels - mean) / std
    diff = np.abs(ours - theirs)
    tolerance = 0.5 * step / float(std.min()) * 1.01 + 1e-4 * (float(np.ptp(theirs)) or 1.0)
    worst = float(diff.max()) if diff.size else 0.0
    if worst > tolerance:
        sample = int(np.unravel_index(int(diff.argmax()), diff.shape)[0])
        raise _mismatch(
            f"test sample {sample}: the metadata's preprocessing differs from the training "
            f"pipeline's by up to {worst:.6g} (tolerance {tolerance:.3g})",
            norm,
            data,
        )
    return {
        "samples": count,
        "pixels": "8-bit" if data.pixel_range is not None else "the dataset's own values",
        "pixel_range": list(data.pixel_range) if data.pixel_range is not None else None,
        "max_abs_diff": worst,
        "tolerance": tolerance,
    }


def _mismatch(what: str, norm: dict[str, Any], data: Any) -> BundleError:
    trained = data.normalization
    pixels = f" on raw pixels {data.pixel_range[0]:g}..{data.pixel_range[1]:g}" if data.pixel_range else ""
    return BundleError(
        f"normalization proof failed: {what}",
        code="normalization-mismatch",
        context=f"metadata mean {norm['mean']} std {norm['std']} (for 8-bit pixels 0..255); "
        f"training dataset.normalization mean {trained.mean} std {trained.std}{pixels}",
        hint="an app following this metadata would feed the model other inputs than it was trained "
        "on: make dataset.normalization the one the training used, and dataset.pixel_range "
        "the raw values of black and white",
    )


def same_outputs(
    converted: bytes, shipped: bytes, x: list[np.ndarray], order: list[int] | None = None
) -> dict[str, Any]:
    """Run both models on `x` (one array per data input; `order[i]` is the data input of tflite input i)
    one sample at a time; a `BundleError` unless every output is identical."""
    from edgepack.litert import interpreter_from_bytes, to_input

    first, second = interpreter_from_bytes(converted), interpreter_from_bytes(shipped)
    details = first.get_input_details()
    order = order if order is not None else list(range(len(details)))
    for i in range(len(x[0])):
        results = []
        for interp in (first, second):
            for position, (detail, own) in enumerate(zip(details, interp.get_input_details())):
                interp.set_tensor(own["index"], to_input(x[order[position]][i : i + 1], detail))
            interp.invoke()
            results.append([interp.get_tensor(o["index"]).copy() for o in interp.get_output_details()])
        if any(a.tobytes() != b.tobytes() for a, b in zip(*results)):
            raise StageError(
                f"the model with metadata gives other outputs than the converted model on test sample {i}",
                code="metadata-changed-model",
                hint="report this as an edgepack bug; set bundle.metadata = false meanwhile",
            )
    return {"samples": int(len(x[0])), "identical": True}

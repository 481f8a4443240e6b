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

PROOF_SAMPLES = 8  # raw test images checked against the training pipeline's inputs
SAME_OUTPUT_SAMPLES = 32  # test samples both models must agree on
COLOR_SPACES = {1: "grayscale", 3: "rgb"}


@dataclass(frozen=True)
class Shipped:
    """The bytes that ship and what was checked about them (the manifest's `model.metadata`)."""

    data: bytes
    record: dict[str, Any]


def describe(name: str, description: str, version: str, bundle: Any, data: Any, inputs: list[dict[str, Any]],
             outputs: list[dict[str, Any]], labels_file: str) -> ModelMeta:
    """The metadata for a single-input image classifier from its recipe, dataset and tensors."""
    shape = inputs[0]["shape"]
    height, width, channels = (int(d) for d in shape[1:4])
    mean, std = app_normalization(data, channels)
    x = data.x_train.reshape(-1, channels)
    low, high = [float(v) for v in x.min(axis=0)], [float(v) for v in x.max(axis=0)]
    colour = COLOR_SPACES.get(channels, "unknown")
    unit = "8-bit pixel x (0..255)" if data.pixel_range is not None else "pixel x"
    text = (f"{height}x{width} {colour} image ({channels} channel(s), NHWC). Preprocess each {unit} as "
            f"(x - mean) / std with the NormalizationOptions below")
    if inputs[0]["scale"] is not None:
        q = inputs[0]
        text += f", then quantize to {q['dtype']}: {quantize_text(q)}"
    text += "."
    out_text = f"Scores for the {len(data.labels)} classes, in the order of {labels_file}"
    if outputs[0]["scale"] is not None:
        q = outputs[0]
        out_text += f" ({q['dtype']}: {dequantize_text(q)})"
    out_text += "."
    image = TensorMeta("image", bundle.input_description or text, image=True, color_space=colour,
                       mean=mean, std=std, min=low, max=high)
    scores = TensorMeta("scores", bundle.output_description or out_text,
                        files=[AssociatedFile(labels_file, "Class names, one per line, in output order.")])
    extra = [TensorMeta(f"output_{i}", f"Output {i} of the model.") for i in range(1, len(outputs))]
    return ModelMeta(name=name, description=description, version=version, author=bundle.author,
                     license=bundle.license, inputs=[image], outputs=[scores, *extra])


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


def dequantize_text(tensor: dict[str, Any]) -> str:
    """How an integer output q becomes a score, with its numbers."""
    zp = int(tensor["zero_point"])
    return f"score = (q {'+' if zp < 0 else '-'} {abs(zp)}) * {tensor['scale']:.9g}"


def _per_channel(value: float | list[float], channels: int) -> list[float]:
    values = [float(v) for v in (value if isinstance(value, list) else [value])]
    return values * channels if len(values) == 1 and channels > 1 else values


def ship_model(converted: bytes, meta: ModelMeta, files: dict[str, bytes], data: Any,
               resize: tuple[int, int] | None) -> Shipped:
    """Embed `meta` and `files` in `converted`, prove the declared normalization, check the outputs."""
    shipped = embed(converted, metadata_bytes(meta), files)
    declared = read_metadata(shipped)
    if declared is None:  # embed wrote it: reading nothing back is a defect, said plainly
        raise StageError("the embedded metadata cannot be read back", code="metadata-unreadable",
                         hint="report this as an edgepack bug; set bundle.metadata = false meanwhile")
    proof = normalization_proof(declared, data, resize)
    same = same_outputs(converted, shipped, data.x_test[:SAME_OUTPUT_SAMPLES])
    return Shipped(shipped, {"embedded": True, "min_parser_version": declared["min_parser_version"],
                             "associated_files": sorted(files), "normalization_proof": proof,
                             "same_outputs": same})


def normalization_proof(declared: dict[str, Any], data: Any, resize: tuple[int, int] | None) -> dict[str, Any]:
    """Raw test images as an app holds them (8-bit pixels, from `dataset.pixel_range`), resized and
    converted to the declared colour space, then normalized with the metadata's own mean and std,
    versus the inputs the training pipeline gave the model; a `BundleError` naming the sample, the
    difference and both normalizations when they differ by more than the 8-bit rounding allows."""
    from edgepack.datasets.core import resize as resized
    from edgepack.datasets.core import to_channels

    image = declared["subgraphs"][0]["inputs"][0]
    norm = image.get("normalization")
    if data.raw_test is None or norm is None:
        raise BundleError("cannot prove the normalization: no raw test images or no NormalizationOptions",
                          code="normalization-unproven")
    count = min(PROOF_SAMPLES, len(data.raw_test))
    raw = data.raw_test[:count].astype(np.float64)
    if data.pixel_range is not None:
        black, white = data.pixel_range
        if raw.min() < black or raw.max() > white:
            raise _mismatch(f"dataset.pixel_range is {black:g}..{white:g} but the test images hold values from "
                            f"{raw.min():g} to {raw.max():g}", norm, data)
        pixels = np.clip(np.round((raw - black) * 255.0 / (white - black)), 0, 255)  # the app's 8-bit image
        step = 1.0  # rounding to 8 bits moves a pixel by up to half of this
    else:
        pixels, step = raw, 0.0
    height, width = data.x_test.shape[1:3]
    if resize is not None or pixels.shape[1:3] != (height, width):
        pixels = resized(pixels.astype(np.float32), (int(height), int(width))).astype(np.float64)
    channels = {"grayscale": 1, "rgb": 3}.get((image.get("content") or {}).get("color_space", ""))
    if channels is not None:
        pixels = to_channels(pixels, channels).astype(np.float64)
    theirs = data.x_test[:count].astype(np.float64)
    if pixels.shape != theirs.shape:
        raise _mismatch(f"the declared preprocessing gives inputs of shape {list(pixels.shape[1:])}, "
                        f"the model was trained on {list(theirs.shape[1:])}", norm, data)
    mean, std = np.asarray(norm["mean"], dtype=np.float64), np.asarray(norm["std"], dtype=np.float64)
    if mean.size not in (1, pixels.shape[-1]) or std.size not in (1, pixels.shape[-1]) or np.any(std <= 0):
        raise _mismatch(f"the declared mean {norm['mean']} / std {norm['std']} do not fit "
                        f"{pixels.shape[-1]} channel(s)", norm, data)
    ours = (pixels - mean) / std
    diff = np.abs(ours - theirs)
    tolerance = 0.5 * step / float(std.min()) * 1.01 + 1e-4 * (float(np.ptp(theirs)) or 1.0)
    worst = float(diff.max()) if diff.size else 0.0
    if worst > tolerance:
        sample = int(np.unravel_index(int(diff.argmax()), diff.shape)[0])
        raise _mismatch(f"test sample {sample}: the metadata's preprocessing differs from the training "
                        f"pipeline's by up to {worst:.6g} (tolerance {tolerance:.3g})", norm, data)
    return {"samples": count, "pixels": "8-bit" if data.pixel_range is not None else "the dataset's own values",
            "pixel_range": list(data.pixel_range) if data.pixel_range is not None else None,
            "max_abs_diff": worst, "tolerance": tolerance}


def _mismatch(what: str, norm: dict[str, Any], data: Any) -> BundleError:
    trained = data.normalization
    pixels = f" on raw pixels {data.pixel_range[0]:g}..{data.pixel_range[1]:g}" if data.pixel_range else ""
    return BundleError(f"normalization proof failed: {what}", code="normalization-mismatch",
                       context=f"metadata mean {norm['mean']} std {norm['std']} (for 8-bit pixels 0..255); "
                               f"training dataset.normalization mean {trained.mean} std {trained.std}{pixels}",
                       hint="an app following this metadata would feed the model other inputs than it was trained "
                            "on: make dataset.normalization the one the training used, and dataset.pixel_range "
                            "the raw values of black and white")


def same_outputs(converted: bytes, shipped: bytes, x: np.ndarray) -> dict[str, Any]:
    """Run both models on `x` one sample at a time; a `BundleError` unless every output is identical."""
    from edgepack.litert import interpreter_from_bytes, to_input

    first, second = interpreter_from_bytes(converted), interpreter_from_bytes(shipped)
    inp = first.get_input_details()[0]
    for i in range(len(x)):
        results = []
        for interp in (first, second):
            interp.set_tensor(interp.get_input_details()[0]["index"], to_input(x[i:i + 1], inp))
            interp.invoke()
            results.append([interp.get_tensor(o["index"]).copy() for o in interp.get_output_details()])
        if any(a.tobytes() != b.tobytes() for a, b in zip(*results)):
            raise StageError(f"the model with metadata gives other outputs than the converted model on test "
                              f"sample {i}", code="metadata-changed-model",
                              hint="report this as an edgepack bug; set bundle.metadata = false meanwhile")
    return {"samples": int(len(x)), "identical": True}

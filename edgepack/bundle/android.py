"""The `android` bundle format: `android/assets/` ready to copy into an app, and a usage note.

`android/assets/NAME.tflite` is the model with its TFLite metadata (descriptions,
NormalizationOptions, the labels packed in), `android/assets/labels.txt` the labels for code that
reads them itself, and `android/README.md` says how to load the model with the LiteRT Interpreter
and, where the model's input type allows it, with the Task Library, with this model's own numbers.
"""

from __future__ import annotations

from typing import Any

from edgepack.bundle.shipped import dequantize_text, quantize_text


def android_files(name: str, shipped: Any, labels: list[str], tensors: dict[str, list[dict[str, Any]]]) -> dict[str, str | bytes]:
    """Relative path -> content of the android format's files."""
    model = f"{name}.tflite"
    return {f"android/assets/{model}": shipped.data,
            "android/assets/labels.txt": "".join(f"{label}\n" for label in labels),
            "android/README.md": usage_note(model, shipped, labels, tensors)}


def usage_note(model: str, shipped: Any, labels: list[str], tensors: dict[str, list[dict[str, Any]]]) -> str:
    """The usage note, with the model's input shape, type, normalization and quantization filled in."""
    inp, out = tensors["inputs"][0], tensors["outputs"][0]
    shape = "x".join(str(d) for d in inp["shape"])
    meta = shipped.record
    proof = meta.get("normalization_proof") if meta.get("embedded") else None
    lines = [
        f"# {model} on Android",
        "",
        f"Copy `assets/` into your module's `src/main/assets/`. `{model}` carries TFLite metadata"
        if meta.get("embedded") else
        f"Copy `assets/` into your module's `src/main/assets/`. `{model}` has no TFLite metadata "
        f"({meta.get('why')}), so the Task Library cannot read it; use the Interpreter.",
    ]
    if meta.get("embedded"):
        lines[-1] += (" (input and output descriptions, the normalization, and `labels.txt` packed in), which the "
                      "Task Library and Android Studio's ML Model Binding read.")
    lines += [
        "",
        "Keep the model uncompressed in the APK so it can be memory-mapped:",
        "",
        "```kotlin",
        "android { androidResources { noCompress += \"tflite\" } }",
        "```",
        "",
        "## Input and output",
        "",
        f"- input `{inp['name']}`: {shape}, {inp['dtype']}; each pixel `x' = (x - mean) / std`"
        + (f", then `{quantize_text(inp)}`" if inp["scale"] is not None else ""),
        f"- output `{out['name']}`: {'x'.join(str(d) for d in out['shape'])}, {out['dtype']}: one score per line of "
        f"`labels.txt` ({len(labels)} classes)"
        + (f"; `{dequantize_text(out)}`" if out["scale"] is not None else ""),
    ]
    if proof:
        lines.append(f"- the normalization in the metadata was checked against the training pipeline on "
                     f"{proof['samples']} test images (max difference {proof['max_abs_diff']:.3g})")
    lines += [
        "",
        "## LiteRT Interpreter (any input type)",
        "",
        "Dependency: `com.google.ai.edge.litert:litert` (the LiteRT runtime for Android).",
        "",
        "```kotlin",
        f"val fd = context.assets.openFd(\"{model}\")",
        "val model = FileInputStream(fd.fileDescriptor).channel",
        "    .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)",
        "val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(2))",
        "interpreter.run(input, output)  // input and output: direct ByteBuffers in native byte order",
        "```",
        "",
    ]
    if inp["dtype"] in ("uint8", "float32"):
        lines += [
            "## Task Library",
            "",
            "Dependency: `org.tensorflow:tensorflow-lite-task-vision`. It reads the metadata: it resizes, "
            "normalizes and names the classes itself.",
            "",
            "```kotlin",
            f"val classifier = ImageClassifier.createFromFile(context, \"{model}\")",
            "val results = classifier.classify(TensorImage.fromBitmap(bitmap))",
            "```",
        ]
    else:
        lines += [
            "## Task Library",
            "",
            f"The Task Library's image classifier takes uint8 or float32 inputs only; this model's input is "
            f"{inp['dtype']}, so use the Interpreter above (or convert with `io = \"float32\"` in the recipe).",
        ]
    return "\n".join(lines) + "\n"

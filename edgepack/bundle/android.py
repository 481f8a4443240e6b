"""The `android` bundle format: `android/assets/` ready to copy into an app, and a usage note.

`android/assets/NAME.tflite` is the model with its TFLite metadata (descriptions,
NormalizationOptions, the labels packed in), `android/assets/labels.txt` the labels for code that
reads them itself, and `android/README.md` says how to load the model with the LiteRT Interpreter
and, where the model's input type allows it, with the Task Library, with this model's own numbers.
"""

from __future__ import annotations

from typing import Any

from edgepack.bundle.shipped import CLASSIFICATION, dequantize_text, quantize_text
from edgepack.tasks import Task


def android_files(
    name: str,
    shipped: Any,
    labels: list[str],
    tensors: dict[str, list[dict[str, Any]]],
    task: Task = CLASSIFICATION,
    image: bool = True,
    golden: dict[str, Any] | None = None,
) -> dict[str, str | bytes]:
    """Relative path -> content of the android format's files (labels.txt for a classifier only; with `golden`,
    golden.npz's arrays, the instrumentation test that runs them: `bundle.android_test`)."""
    from edgepack.bundle.android_test import TEST, android_test_files

    model = f"{name}.tflite"
    note = usage_note(model, shipped, labels, tensors, task, image)
    files: dict[str, str | bytes] = {f"android/assets/{model}": shipped.data}
    if golden:
        files.update(android_test_files(model, golden))
        note += (
            "\n## Golden vectors\n\n"
            f"`androidTest/` holds an instrumentation test (`{TEST.removeprefix('android/')}`, JUnit4 and\n"
            "androidx.test) that runs the bundle's golden vectors (`androidTest/assets/golden/`, golden.npz's arrays)\n"
            f"with the LiteRT Interpreter on `{model}` from the app's assets and fails naming the invoke, output and\n"
            "element beyond the tolerance. Copy it into `src/androidTest/` and run `./gradlew connectedAndroidTest`.\n"
        )
    files["android/README.md"] = note
    if labels and task.class_scores:
        files["android/assets/labels.txt"] = "".join(f"{label}\n" for label in labels)
    return files


def _io_lines(labels: list[str], tensors: dict[str, list[dict[str, Any]]], task: Task, image: bool) -> list[str]:
    lines = []
    for inp in tensors["inputs"]:
        what = "each pixel" if image else "each value"
        lines.append(
            f"- input `{inp['name']}`: {'x'.join(str(d) for d in inp['shape'])}, {inp['dtype']}; {what} "
            f"`x' = (x - mean) / std`" + (f", then `{quantize_text(inp)}`" if inp["scale"] is not None else "")
        )
    for out in tensors["outputs"]:
        shape = "x".join(str(d) for d in out["shape"])
        meaning, what = task.output_meaning(len(labels)), task.output_value
        lines.append(
            f"- output `{out['name']}`: {shape}, {out['dtype']}: {meaning}"
            + (f"; `{dequantize_text(out, what)}`" if out["scale"] is not None else "")
        )
    return lines


def usage_note(
    model: str,
    shipped: Any,
    labels: list[str],
    tensors: dict[str, list[dict[str, Any]]],
    task: Task = CLASSIFICATION,
    image: bool = True,
) -> str:
    """The usage note, with the model's input shape, type, normalization and quantization filled in."""
    inp = tensors["inputs"][0]
    meta = shipped.record
    proof = meta.get("normalization_proof") if meta.get("embedded") else None
    lines = [
        f"# {model} on Android",
        "",
        f"Copy `assets/` into your module's `src/main/assets/`. `{model}` carries TFLite metadata"
        if meta.get("embedded")
        else f"Copy `assets/` into your module's `src/main/assets/`. `{model}` has no TFLite metadata "
        f"({meta.get('why')}), so the Task Library cannot read it; use the Interpreter.",
    ]
    if meta.get("embedded"):
        packed = ", and `labels.txt` packed in" if task.class_scores and labels else ""
        lines[-1] += (
            f" (input and output descriptions, the normalization{packed}), which the "
            "Task Library and Android Studio's ML Model Binding read."
        )
    lines += [
        "",
        "Keep the model uncompressed in the APK so it can be memory-mapped:",
        "",
        "```kotlin",
        'android { androidResources { noCompress += "tflite" } }',
        "```",
        "",
        "## Input and output",
        "",
        *_io_lines(labels, tensors, task, image),
    ]
    if proof:
        first = proof[0] if isinstance(proof, list) else proof
        lines.append(
            f"- the normalization in the metadata was checked against the training pipeline on "
            f"{first['samples']} test {'images' if image else 'samples'} "
            f"(max difference {first['max_abs_diff']:.3g})"
        )
    lines += [
        "",
        "## LiteRT Interpreter (any input type)",
        "",
        "Dependency: `com.google.ai.edge.litert:litert` (the LiteRT runtime for Android).",
        "",
        "```kotlin",
        f'val fd = context.assets.openFd("{model}")',
        "val model = FileInputStream(fd.fileDescriptor).channel",
        "    .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)",
        "val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(2))",
        "interpreter.run(input, output)  // input and output: direct ByteBuffers in native byte order",
        "```",
        "",
    ]
    if not task.class_scores or not image:
        lines += [
            "## Task Library",
            "",
            "The Task Library's ready-made tasks are for image and text classifiers and the like; "
            f"this {task.kind} model takes the Interpreter above.",
        ]
    elif inp["dtype"] in ("uint8", "float32"):
        lines += [
            "## Task Library",
            "",
            "Dependency: `org.tensorflow:tensorflow-lite-task-vision`. It reads the metadata: it resizes, "
            "normalizes and names the classes itself.",
            "",
            "```kotlin",
            f'val classifier = ImageClassifier.createFromFile(context, "{model}")',
            "val results = classifier.classify(TensorImage.fromBitmap(bitmap))",
            "```",
        ]
    else:
        lines += [
            "## Task Library",
            "",
            f"The Task Library's image classifier takes uint8 or float32 inputs only; this model's input is "
            f'{inp["dtype"]}, so use the Interpreter above (or convert with `io = "float32"` in the recipe).',
        ]
    return "\n".join(lines) + "\n"

"""`inspect_model`: what a model file holds, whichever kind it is: a `.tflite` (its graph, read without
TensorFlow) or a saved Keras model (`.keras`, `.h5`, a SavedModel directory: what `edgepack init` reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TFLITE_IDENTIFIER = b"TFL3"  # bytes 4..8 of a TFLite flatbuffer


def is_tflite(path: Path) -> bool:
    """A `.tflite` by its name, or a file carrying TFLite's identifier whatever its name."""
    if path.suffix.lower() == ".tflite":
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(8)[4:8] == TFLITE_IDENTIFIER


def inspect_model(path: Path, runtime: bool = True, imports: tuple[str, ...] = ()) -> dict[str, Any]:
    """The report of the model at `path` as plain data: a `.tflite`'s (with `runtime`, LiteRT's XNNPACK partition
    count from a child process) or a saved Keras model's (`imports`: modules registering its custom layers).
    A file that is neither is a `ModelError` naming it."""
    if is_tflite(path):
        from edgepack.inspect.tflite import tflite_report

        return tflite_report(path, runtime)
    from edgepack.inspect.keras import keras_report

    return keras_report(path, imports)

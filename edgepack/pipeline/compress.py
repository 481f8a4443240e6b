"""`[convert] compression = "lut"` in the pipeline: the model that ships is the converted one compressed
with TensorFlow Lite Micro's look-up tables (`edgepack.convert.lut`).

The task's metric and fidelity stay the uncompressed int8 model's, judged in LiteRT: the compression is
lossless on the weight values, and LiteRT cannot run the compressed file. Every device validates the
compressed model (TFLM only, the recipe's rules), the parity reference comes from the uncompressed one,
the c-array embeds the compressed bytes and the boards of `budgets.fits` take them as flash.

The compression takes well under a second, so it is made once per run in memory, not cached as a stage.
The arena TFLM needs grows by the decoded tensors (TFLM decodes into the arena unless the application
gives the interpreter separate memory for it): the uncompressed model's arena is measured too, so the
record states what the figure includes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.convert.lut import Compressed
    from edgepack.pipeline.run import Pipeline

WHY_NO_METADATA = (
    "convert.compression = 'lut': only TensorFlow Lite Micro runs the model, and it ignores metadata "
    "(in a microcontroller's flash it is waste)"
)


def applies(p: Pipeline) -> bool:
    """Whether the shipped model is compressed: the recipe asks, and the model is not one given to
    `validate --model` (measured as it is)."""
    return p.recipe.convert.compression == "lut" and not p.measured_as_given


def compressed(p: Pipeline) -> Compressed:
    """The converted model, LUT-compressed (made once per converted file)."""
    from edgepack.convert.lut import compress

    source = p.tflite_path
    if p.compressed_model is None or p.compressed_model[0] != source:
        with p.reporter.task("compress: TFLM look-up tables", 1) as task:
            p.compressed_model = (source, compress(source.read_bytes()))
            task.advance(1)
    return p.compressed_model[1]


def compression_report(p: Pipeline) -> dict[str, Any] | None:
    """The compression as plain data (None without it): per tensor and in total, and the arena TFLM
    measured for the compressed model against the uncompressed one's (the difference: decoded tensors)."""
    if not applies(p):
        return None
    from edgepack.pipeline.fits import arena

    record = compressed(p).record()
    measured, why = arena(p)
    if measured is None:
        record["arena"] = {"how": "not measured", "why": why}
        return record
    plain = _uncompressed_arena(p)
    record["arena"] = {
        "how": "measured",
        "bytes": measured.need,
        "uncompressed_model_bytes": plain,
        "decoded_bytes": None if plain is None else measured.need - plain,
        "includes": "the decoded tensors: TFLM decodes into the arena unless the interpreter is given "
        "separate decompression memory (alt_decompression_memory_size)",
    }
    return record


def _uncompressed_arena(p: Pipeline) -> int | None:
    """TFLM's arena for the converted (uncompressed) model, measured once per run (a failure too: each try
    spawns TFLM, and the answer would not change)."""
    from edgepack.devices.toolchains.tflm_arena import measure_arena
    from edgepack.errors import EdgepackError

    if p.uncompressed_arena is None:
        try:
            need = measure_arena(p.tflite_path, p.reporter, "arena in TFLM (uncompressed)").need
            p.uncompressed_arena = (need, "")
        except EdgepackError as exc:
            p.uncompressed_arena = (None, exc.message)
    return p.uncompressed_arena[0]

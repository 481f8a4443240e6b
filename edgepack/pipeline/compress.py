"""`[convert] compression = "lut"` in the pipeline: the model that ships is the converted one compressed
with TensorFlow Lite Micro's look-up tables (`edgepack.convert.lut`).

The task's metric and fidelity stay the uncompressed int8 model's, judged in LiteRT: the compression is
lossless on the weight values, and LiteRT cannot run the compressed file. Every device validates the
compressed model (TFLM only, the recipe's rules), the parity reference comes from the uncompressed one,
the c-array embeds the compressed bytes and the boards of `budgets.fits` take them as flash.

The compression takes well under a second, so a `Shipment` makes it once per converted file in memory, not cached as a
stage. The arena TFLM needs grows by the decoded tensors (TFLM decodes into the arena unless the application
gives the interpreter separate memory for it): the uncompressed model's arena is measured too, so the
record states what the figure includes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from edgepack.convert.lut import Compressed
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.pipeline.plan import Plan
    from edgepack.progress import Reporter
    from edgepack.recipe.schema import Recipe

WHY_NO_METADATA = (
    "convert.compression = 'lut': only TensorFlow Lite Micro runs the model, and it ignores metadata "
    "(in a microcontroller's flash it is waste)"
)


def applies(recipe: Recipe, plan: Plan) -> bool:
    """Whether the shipped model is compressed: the recipe asks, and the model is not one given to
    `validate --model` (measured as it is)."""
    return recipe.convert.compression == "lut" and not plan.as_given


def compress_model(converted: Path, reporter: Reporter) -> Compressed:
    """The converted model, LUT-compressed."""
    from edgepack.convert.lut import compress

    with reporter.task("compress: TFLM look-up tables", 1) as task:
        result = compress(converted.read_bytes())
        task.advance(1)
    return result


def uncompressed_arena(converted: Path, reporter: Reporter) -> tuple[int | None, str]:
    """TFLM's arena for the converted (uncompressed) model, or None and why (a failure is an answer too: each
    try spawns TFLM, and the answer would not change, so the runner keeps it)."""
    from edgepack.devices.toolchains.tflm_arena import measure_arena
    from edgepack.errors import EdgepackError

    try:
        return measure_arena(converted, reporter, "arena in TFLM (uncompressed)").need, ""
    except EdgepackError as exc:
        return None, exc.message


def compression_report(compressed: Compressed, measured: tuple[Arena | None, str], plain: int | None) -> dict[str, Any]:
    """The compression as plain data: per tensor and in total, and the arena TFLM `measured` for the compressed
    model against the uncompressed one's (`plain`; the difference: decoded tensors)."""
    record = compressed.record()
    arena, why = measured
    if arena is None:
        record["arena"] = {"how": "not measured", "why": why}
        return record
    record["arena"] = {
        "how": "measured",
        "bytes": arena.need,
        "uncompressed_model_bytes": plain,
        "decoded_bytes": None if plain is None else arena.need - plain,
        "includes": "the decoded tensors: TFLM decodes into the arena unless the interpreter is given "
        "separate decompression memory (alt_decompression_memory_size)",
    }
    return record

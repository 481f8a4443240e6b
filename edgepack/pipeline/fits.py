"""The run's microcontroller figures: TFLM's measured arena of the microcontroller model (the converted one,
or the shipped LUT-compressed one; once a run, shared by the c-array and the board fits, taken from a tflm
validation when there was one) and how each board of `budgets.fits` holds that model (the bytes the c-array
embeds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.devices.boards import Fit
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.pipeline.run import Pipeline


def arena(p: Pipeline) -> tuple[Arena | None, str]:
    """The arena TFLM's interpreter needs for the microcontroller model (`p.micro_path()`: what the c-array
    embeds, the converted model or, with `compression = "lut"`, the shipped compressed one), or None and why
    (tflite-micro missing, an op TFLM lacks); measured once per run."""
    from edgepack.devices.toolchains.tflm_arena import Arena, measure_arena
    from edgepack.errors import EdgepackError

    if p.measured_arena is None:
        validated = next((r for r in p.result.validation.values() if r.get("kind") == "tflm" and r.get("arena")), None)
        if validated is not None:  # the shipped model on a tflm device: the same graph (metadata takes no arena)
            found = validated["arena"]
            runtime = f"{validated['runtime']['name']} {validated['runtime']['version']}"
            p.measured_arena = (
                Arena(found["bytes"], found.get("non_persistent"), found.get("persistent"), runtime),
                "",
            )
            return p.measured_arena
        try:
            p.measured_arena = (measure_arena(p.micro_path(), p.reporter, "arena in TFLM"), "")
        except EdgepackError as exc:  # no tflite-micro (the c-array keeps its estimate), an op TFLM lacks
            p.measured_arena = (None, exc.message)
    return p.measured_arena


def fits(p: Pipeline) -> list[Fit]:
    """Each board of `budgets.fits` against the microcontroller model (flash: what the c-array embeds, the
    converted model without TFLite metadata or the shipped LUT-compressed one) and the measured arena (RAM)."""
    from edgepack.devices.boards import board_fit, io_bytes, load_boards
    from edgepack.devices.toolchains.tflm_arena import require_tflm

    boards = load_boards(p.recipe.budgets.fits)
    if not boards:
        return []
    measured, why = arena(p)
    if measured is None:
        require_tflm(f"recipe '{p.recipe.name}': budgets.fits")  # no tflite-micro is exit 4, not a budget failure
    data = p.micro_path().read_bytes()
    io = io_bytes(data)
    return [board_fit(board, len(data), io, measured, why) for board in boards]


def fit_records(p: Pipeline) -> dict[str, dict[str, Any]]:
    """The fits as plain data, by board."""
    return {fit.board: fit.to_dict() for fit in fits(p)}

"""The run's microcontroller figures: TFLM's arena of the microcontroller model (the converted one, or the
shipped LUT-compressed one), taken from a tflm validation when there was one, else measured (a `Shipment`
keeps it, shared by the c-array, the board fits and the compression report), and how each board of
`budgets.fits` holds that model (the bytes the c-array embeds)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from edgepack.devices.profiles import McuDevice
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.progress import Reporter
    from edgepack.recipe.schema import Recipe
    from edgepack.records import DeviceRun, Fit


def validated_arena(validation: dict[str, DeviceRun]) -> tuple[Arena, str] | None:
    """The arena a tflm device measured for the shipped model in this run's validation (the same graph as the
    microcontroller model: metadata takes no arena), or None."""
    from edgepack.devices.toolchains.tflm_arena import Arena

    validated = next((r for r in validation.values() if r.kind == "tflm" and r.arena), None)
    if validated is None or validated.arena is None:
        return None
    found, ran = validated.arena, validated.runtime or {}
    runtime = f"{ran.get('name')} {ran.get('version')}"
    return Arena(found["bytes"], found.get("non_persistent"), found.get("persistent"), runtime), ""


def measured_arena(micro: Path, reporter: Reporter) -> tuple[Arena | None, str]:
    """The arena TFLM's interpreter needs for the microcontroller model `micro` (what the c-array embeds, the
    converted model or, with `compression = "lut"`, the shipped compressed one), or None and why
    (tflite-micro missing, an op TFLM lacks)."""
    from edgepack.devices.toolchains.tflm_arena import measure_arena
    from edgepack.errors import EdgepackError

    try:
        return measure_arena(micro, reporter, "arena in TFLM"), ""
    except EdgepackError as exc:  # no tflite-micro (the c-array keeps its estimate), an op TFLM lacks
        return None, exc.message


def boards(recipe: Recipe) -> list[McuDevice]:
    """The board profiles of `budgets.fits`."""
    from edgepack.devices.boards import load_boards

    return load_boards(recipe.budgets.fits)


def fits(recipe: Recipe, boards: list[McuDevice], arena: tuple[Arena | None, str], micro: bytes) -> list[Fit]:
    """Each board against the microcontroller model `micro` (flash: what the c-array embeds, the converted
    model without TFLite metadata or the shipped LUT-compressed one) and the measured `arena` (RAM)."""
    from edgepack.devices.boards import board_fit, io_bytes
    from edgepack.devices.toolchains.tflm_arena import require_tflm

    measured, why = arena
    if measured is None:
        require_tflm(f"recipe '{recipe.name}': budgets.fits")  # no tflite-micro is exit 4, not a budget failure
    io = io_bytes(micro)
    return [board_fit(board, len(micro), io, measured, why) for board in boards]


def fit_records(fits: list[Fit]) -> dict[str, Fit]:
    """The fits by board."""
    return {fit.board: fit for fit in fits}

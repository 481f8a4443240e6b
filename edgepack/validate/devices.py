"""Which devices a run validates on: the recipe's (or those named) loaded and checked against the recipe
before any stage runs: boards refused as run targets, an emulated device's latency or throughput never
budgeted (nor the throughput of a device that times no grid), a LUT-compressed model on TFLM devices only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgepack.errors import BadInputError

if TYPE_CHECKING:
    from edgepack.recipe.schema import Recipe


def load_devices(recipe: Recipe, names: list[str] | None, compressed: bool) -> list[Any]:
    """The device profiles `names` (default: the recipe's), checked against its budgets (before any stage
    runs: an unknown device or a budget on an emulated one is a recipe mistake; an ethos-u profile's
    latency is Vela's estimate, budgetable as such) and, for a `compressed` (LUT) model, all of kind tflm."""
    from edgepack.devices.boards import load_boards
    from edgepack.devices.drivers import driver_for
    from edgepack.devices.profiles import load_device

    where = "--device" if names is not None else "validation.devices"
    devices = _runnable([load_device(name) for name in (recipe.validation.devices if names is None else names)], where)
    if compressed:  # a compressed model only TFLM runs: any other kind, under any name (run, bundle, validate)
        from edgepack.convert.lut import check_lut

        check_lut(recipe.name, devices)
    if names is not None:
        return devices
    load_boards(recipe.budgets.fits)  # every board of budgets.fits is a board profile
    budget = recipe.budgets.latency_p90_ms
    emulated = sorted(
        d.name
        for d in devices
        if d.emulated and not driver_for(d.kind).estimates and isinstance(budget, dict) and d.name in budget
    )
    if emulated:
        raise BadInputError(
            f"budgets.latency_p90_ms names {', '.join(emulated)}: an emulated device's latency is the "
            "emulator's (tflm: this host's, with reference kernels), not a board's, and is never checked",
            context=f"recipe '{recipe.name}'",
            hint="budget a real device (kind local, ssh or adb), or an ethos-u profile's estimate, instead",
            code="budget-emulated",
        )
    _check_throughput_budget(recipe, devices)
    return devices


def _check_throughput_budget(recipe: Recipe, devices: list[Any]) -> None:
    """`budgets.min_throughput_ips` names only real devices that time the grid."""
    from edgepack.devices.drivers import driver_for

    budget = recipe.budgets.min_throughput_ips
    if budget is None:
        return
    if not isinstance(budget, dict):  # one figure for every real device that times the grid: at least one must
        if not any(not d.emulated and driver_for(d.kind).throughput_why(d) is None for d in devices):
            raise BadInputError(
                f"budgets.min_throughput_ips = {budget:g} covers every real device that times a throughput grid, "
                f"and none of validation.devices ({', '.join(d.name for d in devices)}) does: the budget could "
                "never be checked",
                context=f"recipe '{recipe.name}'",
                hint="validate on a real device that runs LiteRT (kind local, ssh or adb with the runner), "
                "or drop the budget",
                code="budget-no-throughput",
            )
        return
    named = [d for d in devices if d.name in budget]
    untimed = [(d.name, why) for d in named if (why := driver_for(d.kind).throughput_why(d)) is not None]
    if untimed:
        name, why = untimed[0]
        raise BadInputError(
            f"budgets.min_throughput_ips names '{name}', which times no throughput grid: {why}",
            context=f"recipe '{recipe.name}'",
            hint="budget the throughput of a device that runs LiteRT (kind local, ssh or adb with the runner)",
            code="budget-no-throughput",
        )
    emulated = sorted(d.name for d in named if d.emulated)
    if emulated:
        raise BadInputError(
            f"budgets.min_throughput_ips names {', '.join(emulated)}: an emulated device's throughput is the "
            "emulator's, not a board's, and is never checked",
            context=f"recipe '{recipe.name}'",
            hint="budget a real device (kind local, ssh or adb) instead",
            code="budget-emulated",
        )


def _runnable(devices: list[Any], where: str) -> list[Any]:
    """The devices, unless one is a board (kind "mcu"): boards are fitted, not run on."""
    from edgepack.devices.drivers import driver_for

    boards = [d.name for d in devices if driver_for(d.kind).is_board]
    if boards:
        raise BadInputError(
            f'{where} names {", ".join(boards)}: a board (kind "mcu") is not a run target',
            context=where,
            code="device-not-runnable",
            hint=f"check the fit with [budgets] fits = {boards!r} (or `edgepack devices check "
            f'{boards[0]} --model MODEL.tflite`); validate on "tflm" for TFLM\'s arena',
        )
    return devices

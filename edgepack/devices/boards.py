"""Boards (`kind = "mcu"`): whether a model fits a microcontroller's flash and RAM, with the headroom of each.

Flash holds the model and the firmware (a stated `runtime_flash` allowance: TFLM, its kernels, the
application); RAM holds TFLM's tensor arena (measured by TFLM's own interpreter, see
`toolchains/tflm_arena.py`), the application's copies of the inputs and outputs, and a stated `runtime_ram`
allowance (stack, heap, the application's data). A board is not a run target: nothing executes on it here.
"""

from __future__ import annotations

from pathlib import Path

from edgepack.devices.profiles import EthosUDevice, McuDevice
from edgepack.devices.toolchains.tflm_arena import Arena, measure_arena, require_tflm
from edgepack.errors import BadInputError
from edgepack.progress import Reporter
from edgepack.records import Fit

__all__ = ["Fit", "board_fit", "io_bytes", "load_boards", "model_fits"]


def io_bytes(flatbuffer: bytes) -> int:
    """Bytes of the model's input and output tensors: the buffers the application fills and reads."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import tensor_bytes

    info = read_model(flatbuffer)
    return sum(tensor_bytes(info.tensors[i]) for i in {*info.inputs, *info.outputs})


def board_fit(board: McuDevice, model_bytes: int, io: int, arena: Arena | None, why: str = "") -> Fit:
    """How `board` holds a model of `model_bytes` with `io` bytes of inputs and outputs and `arena`."""
    return Fit(
        board=board.name,
        board_name=board.board,
        core=board.core,
        clock_mhz=board.clock_mhz,
        flash_bytes=board.flash_bytes,
        model_bytes=model_bytes,
        runtime_flash_bytes=board.runtime_flash_bytes,
        ram_bytes=board.ram_bytes,
        arena_bytes=None if arena is None else arena.need,
        io_bytes=io,
        runtime_ram_bytes=board.runtime_ram_bytes,
        arena_runtime=None if arena is None else arena.runtime,
        arena_why="" if arena is not None else why,
    )


def load_boards(names: list[str], context: str = "budgets.fits") -> list[McuDevice]:
    """The board profiles `names`; a name that is not a board (kind "mcu") is refused, naming the boards."""
    from edgepack.devices.profiles import known_devices, load_device

    boards = []
    for name in names:
        device = load_device(name)
        if not isinstance(device, McuDevice):
            known = [n for n in known_devices() if isinstance(load_device(n), McuDevice)]
            raise BadInputError(
                f"{context} names '{name}', a {device.kind} device, not a board",
                context=context,
                hint=f'boards (kind = "mcu"): {", ".join(known) or "(none)"}; add '
                f'devices/NAME.toml with kind = "mcu", flash, ram, core, clock_mhz',
                code="budget-fits-board",
            )
        if device.npu is not None and not isinstance(load_device(device.npu), EthosUDevice):
            raise BadInputError(
                f"board '{name}': npu = '{device.npu}' is not an ethos-u profile",
                context=f"devices/{name}.toml",
                code="device-invalid",
                hint="name an ethos-u profile (ethos-u55-128, ethos-u85-256) or remove npu",
            )
        boards.append(device)
    return boards


def model_fits(
    names: list[str],
    model: bytes,
    arena: Arena | None = None,
    reporter: Reporter | None = None,
    flash_bytes: int | None = None,
) -> dict[str, Fit]:
    """The fit of `model` (a .tflite's bytes; `flash_bytes` of it go to flash, default all) on each board
    `names`, by board; the arena is measured with TFLM when not given (a model TFLM cannot run leaves the
    RAM side unmeasured; no tflite-micro at all is exit 4)."""
    import tempfile

    from edgepack.errors import ModelError

    boards = load_boards(names)
    why = ""
    if arena is None and boards:
        require_tflm("fits: the arena")
        with tempfile.TemporaryDirectory(prefix="edgepack-fit-") as folder:
            path = Path(folder) / "model.tflite"
            path.write_bytes(model)
            try:
                arena = measure_arena(path, reporter, "arena in TFLM")
            except ModelError as exc:  # an op TFLM lacks, a model that does not allocate: it cannot fit as is
                why = exc.message
    io = io_bytes(model)
    size = len(model) if flash_bytes is None else flash_bytes
    return {board.name: board_fit(board, size, io, arena, why) for board in boards}

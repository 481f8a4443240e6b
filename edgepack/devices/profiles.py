"""Device profiles: `devices/NAME.toml`, validated strictly like recipes.

One schema per `kind` (a discriminated union): `local` runs the runner on this machine (optionally
pinned to CPUs, under a memory cap), `ssh` on a board reached with the system `ssh` client,
`adb` on an Android device, `qemu-arm64` under user-mode Arm64 emulation, `tflm` in TensorFlow Lite
Micro's interpreter (the arena a microcontroller needs), `ethos-u` compiled by Vela for an Arm Ethos-U
NPU (its performance estimate). `mcu` profiles are boards a model must fit (`budgets.fits`), not run
targets. Profiles are looked up
in the working directory's `devices/` first (a project's own boards), then in the shipped ones.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from edgepack.errors import BadInputError
from edgepack.recipe.base import Size, Strict, parse_size
from edgepack.resources import shipped_dir

Runtime = Literal["auto", "ai-edge-litert", "tflite-runtime"]
_NAME = r"^[a-z0-9][a-z0-9._-]*$"


class _Device(Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    threads: int | None = Field(None, ge=1, le=256)
    runtime: Runtime = "auto"

    @property
    def emulated(self) -> bool:
        """True when latency measured here is not a real device's latency."""
        return False


class LocalDevice(_Device):
    """This machine, running the runner in a subprocess; optionally pinned and memory-capped."""

    kind: Literal["local"]
    cpus: list[Annotated[int, Field(ge=0, le=4095)]] | None = Field(None, min_length=1)
    memory_limit: Size | None = None

    @property
    def memory_limit_bytes(self) -> int | None:
        """The address-space cap applied after the runner's imports, in bytes."""
        return None if self.memory_limit is None else parse_size(self.memory_limit)


class SshDevice(_Device):
    """A board reached with the system `ssh` client; host keys checked against `known_hosts`."""

    kind: Literal["ssh"]
    host: str = Field(min_length=1)
    user: str | None = Field(None, min_length=1)
    port: int = Field(22, ge=1, le=65_535)
    identity_file: str | None = Field(None, min_length=1)
    known_hosts: str = Field("~/.ssh/known_hosts", min_length=1)
    python: str = Field("python3", min_length=1)
    remote_dir: str = Field("/tmp/edgepack", min_length=1)
    connect_timeout_s: float = Field(10.0, gt=0, le=600)
    run_timeout_s: float = Field(600.0, gt=0, le=86_400)


class AdbDevice(_Device):
    """An Android device over `adb`: the runner (with Python on the device) or a benchmark binary."""

    kind: Literal["adb"]
    serial: str | None = Field(None, min_length=1)
    remote_dir: str = Field("/data/local/tmp/edgepack", min_length=1)
    python: str = Field("python3", min_length=1)
    benchmark: str | None = Field(None, min_length=1)  # a local benchmark_model binary for the device
    benchmark_args: list[str] = Field(default_factory=list)
    run_timeout_s: float = Field(600.0, gt=0, le=86_400)


ARM_CORES = {  # QEMU's name -> (the core's "CPU part", the Features line an arm64 kernel writes for it)
    "cortex-a35": (0xD04, "fp asimd evtstrm crc32 cpuid"),
    "cortex-a53": (0xD03, "fp asimd evtstrm crc32 cpuid"),
    "cortex-a55": (0xD05, "fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
    "cortex-a57": (0xD07, "fp asimd evtstrm crc32 cpuid"),
    "cortex-a72": (0xD08, "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": (0xD0B, "fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
    "neoverse-n1": (0xD0C, "fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
}
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}  # the python3 of each Debian suite


class QemuDevice(_Device):
    """An Arm64 board emulated with `qemu-aarch64-static` on a cached Debian root filesystem."""

    kind: Literal["qemu-arm64"]
    cpu: str = Field("cortex-a72", min_length=1)
    suite: Literal["bookworm", "trixie"] = "bookworm"
    mirror: str | None = Field(None, min_length=1)
    litert_version: str | None = Field(None, pattern=r"^[0-9][0-9A-Za-z.+-]*$")
    wheel: str | None = Field(None, min_length=1)
    run_timeout_s: float = Field(900.0, gt=0, le=86_400)

    @field_validator("cpu")
    @classmethod
    def _named_cpu(cls, value: str) -> str:
        if value == "max":
            raise ValueError(
                "cpu = 'max' gives wrong int8 results under QEMU (its SME feature); "
                "name a real core: cortex-a53, cortex-a72, cortex-a76"
            )
        if value not in ARM_CORES:
            raise ValueError(f"unknown core '{value}'; one of: {', '.join(ARM_CORES)}")
        return value

    @property
    def emulated(self) -> bool:
        return True


class TflmDevice(_Device):
    """TensorFlow Lite Micro's interpreter (reference kernels) on this machine: the arena a microcontroller
    needs, measured, and the outputs; its timings are this host's, never a board's latency."""

    kind: Literal["tflm"]
    runtime: Literal["tflite-micro"] = "tflite-micro"  # type: ignore[assignment]
    max_arena: Size = "64 MiB"  # the largest arena tried before the model is called too big
    run_timeout_s: float = Field(600.0, gt=0, le=86_400)

    @property
    def max_arena_bytes(self) -> int:
        return parse_size(self.max_arena)

    @property
    def emulated(self) -> bool:
        return True


EthosUAccelerator = Literal[
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
    "ethos-u85-128",
    "ethos-u85-256",
    "ethos-u85-512",
    "ethos-u85-1024",
    "ethos-u85-2048",
]


class EthosUDevice(_Device):
    """An Arm Ethos-U NPU: the int8 model compiled by Vela for the accelerator and system configuration;
    Vela's performance estimate (cycles, inference time at the configuration's clock, SRAM and flash),
    not a measurement. Its estimated inference time is budgetable, labelled estimated."""

    kind: Literal["ethos-u"]
    runtime: Literal["vela"] = "vela"  # type: ignore[assignment]
    accelerator: EthosUAccelerator
    system_config: str = Field(min_length=1)  # a [System_Config.*] section of the Vela configuration file
    memory_mode: str = Field(min_length=1)  # a [Memory_Mode.*] section of it
    config: str | None = Field(None, min_length=1)  # a Vela .ini (default: Vela's own Arm/vela.ini)
    clock_mhz: float | None = Field(None, gt=0, le=10_000)  # overrides the system configuration's core clock
    optimise: Literal["Performance", "Size"] = "Performance"
    arena_cache_size: Size | None = None
    run_timeout_s: float = Field(600.0, gt=0, le=86_400)

    @property
    def emulated(self) -> bool:  # nothing runs: an estimate (budgetable as such, see gate.budgets)
        return True


McuCore = Literal[
    "cortex-m0",
    "cortex-m0+",
    "cortex-m3",
    "cortex-m4",
    "cortex-m7",
    "cortex-m33",
    "cortex-m55",
    "cortex-m85",
    "xtensa-lx6",
    "xtensa-lx7",
    "risc-v",
]


class McuDevice(_Device):
    """A microcontroller board a model must fit (`budgets.fits`): its flash and RAM from the datasheet, the
    core, the clock, an optional Ethos-U NPU; and the stated allowances for what is not the model
    (TFLM and the application in flash; stack, heap and the application's data in RAM)."""

    kind: Literal["mcu"]
    runtime: Literal["tflite-micro"] = "tflite-micro"  # type: ignore[assignment]
    board: str = Field(min_length=1)  # the board's own name, as its vendor writes it
    core: McuCore
    clock_mhz: float = Field(gt=0, le=10_000)
    flash: Size  # what holds the model (internal flash, or the board's QSPI flash where code runs from it)
    ram: Size  # the SRAM the arena and buffers come from
    npu: str | None = Field(None, pattern=_NAME)  # an ethos-u profile name
    runtime_flash: Size = "128 KiB"  # TFLM with the model's kernels plus the application's code
    runtime_ram: Size = "16 KiB"  # stack, heap and the application's own data

    @property
    def flash_bytes(self) -> int:
        return parse_size(self.flash)

    @property
    def ram_bytes(self) -> int:
        return parse_size(self.ram)

    @property
    def runtime_flash_bytes(self) -> int:
        return parse_size(self.runtime_flash)

    @property
    def runtime_ram_bytes(self) -> int:
        return parse_size(self.runtime_ram)

    @property
    def emulated(self) -> bool:
        return True


Device = Annotated[
    LocalDevice | SshDevice | AdbDevice | QemuDevice | TflmDevice | EthosUDevice | McuDevice,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Device] = TypeAdapter(Device)


def devices_dir() -> Path:
    """The folder of shipped device profiles."""
    return shipped_dir("devices")


def search_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins: ./devices, then the shipped ones."""
    local = Path.cwd() / "devices"
    shipped = devices_dir()
    return [local, shipped] if local.is_dir() and local.resolve() != shipped.resolve() else [shipped]


def known_devices() -> list[str]:
    """Names of every device profile edgepack can find."""
    return sorted({p.stem for folder in search_dirs() for p in folder.glob("*.toml")})


def profile_path(name: str) -> Path:
    """The file that defines device `name`; an unknown name lists the known ones."""
    for folder in search_dirs():
        path = folder / f"{name}.toml"
        if path.is_file():
            return path
    raise BadInputError(
        f"unknown device '{name}'",
        context="validate.devices",
        hint=f"known devices: {', '.join(known_devices()) or '(none)'}; add devices/{name}.toml "
        f"(examples in {devices_dir()})",
        code="device-unknown",
    )


def load_device(name: str) -> Device:
    """The validated profile of device `name`."""
    path = profile_path(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInputError(f"{path}: not a readable TOML device profile: {exc}", code="device-invalid") from exc
    try:
        return _ADAPTER.validate_python({"name": name, **data})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'profile'}: {err['msg']}" for err in exc.errors()
        )
        raise BadInputError(
            f"{path}: invalid device profile: {problems}",
            context=f"device '{name}'",
            hint="kinds: local, ssh, adb, qemu-arm64, tflm, ethos-u, mcu; see the shipped profiles for the keys",
            code="device-invalid",
        ) from exc

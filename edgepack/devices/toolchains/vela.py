"""Vela, Arm's compiler for the Ethos-U NPUs, in a child process (never imported here).

An ethos-u profile becomes Vela's command line (accelerator, system configuration, memory mode, the
configuration file, optimise, arena cache size). When the profile sets `clock_mhz`, a derived
configuration file is written beside the output: the system configuration's section with its
`core_clock` replaced, so Vela itself computes at that clock. Vela runs on a copy of the model named
`model.tflite` (its outputs: `model_vela.tflite`, `model_summary_<system config>.csv`,
`model_per-layer.csv`) in a directory filled beside the target and swapped in; `request.json` says
what was compiled, so a later stage can reuse the same compile. A refusal or crash becomes an
edgepack error naming the device and the model with Vela's last stderr lines.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack.devices.profiles import EthosUDevice, profile_path
from edgepack.errors import BadInputError, DeviceUnreachable, EdgepackError, ModelError, StageError
from edgepack.fsutil import atomic_write_text, replace_dir, temp_dir_beside
from edgepack.recipe.base import parse_size

INSTALL_HINT = "pip install ethos-u-vela, or pip install 'edgepack[mcu]'"
DEFAULT_CONFIG = "Arm/vela.ini"  # Vela's own file, inside its package's config_files/
STEM = "model"
REQUEST = "request.json"
DERIVED_CONFIG = "vela.ini"
EXIT_NO_VELA = 3
TAIL_LINES = 8
# The child: Vela's own entry point, or exit 3 when it cannot be imported (the install hint, no traceback).
_MAIN = (
    "import sys\n"
    "try:\n"
    "    from ethosu.vela.vela import main\n"
    "except ImportError as exc:\n"
    "    print(f'ethos-u-vela cannot be imported: {exc}', file=sys.stderr)\n"
    "    sys.exit(3)\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
_PROBE = (
    "import json, sys\n"
    "try:\n"
    "    import ethosu.vela as vela\n"
    "except ImportError as exc:\n"
    "    print(f'ethos-u-vela cannot be imported: {exc}', file=sys.stderr)\n"
    "    sys.exit(3)\n"
    "print(json.dumps({'version': vela.__version__, 'python': sys.version.split()[0]}))\n"
)
_PROFILE_ERRORS = ("CliOptionError", "ConfigOptionError")  # Vela refusing the options, not the model


@dataclass(frozen=True)
class VelaRun:
    """One finished compile: where Vela wrote, what it printed, the arguments after the model."""

    folder: Path
    system_config: str
    stdout: str
    args: tuple[str, ...]

    @property
    def compiled(self) -> Path:
        return self.folder / f"{STEM}_vela.tflite"

    @property
    def summary_csv(self) -> Path:
        return self.folder / f"{STEM}_summary_{self.system_config}.csv"

    @property
    def per_layer_csv(self) -> Path:
        return self.folder / f"{STEM}_per-layer.csv"

    @property
    def request(self) -> dict[str, Any]:
        return json.loads((self.folder / REQUEST).read_text(encoding="utf-8"))


def vela_config_dir() -> Path:
    """Vela's `config_files/` folder, found without importing Vela; no Vela is a device without its runtime."""
    spec = importlib.util.find_spec("ethosu")
    if spec is None or not spec.submodule_search_locations:
        raise DeviceUnreachable("ethos-u-vela is not installed", hint=INSTALL_HINT, code="device-no-runtime")
    return Path(next(iter(spec.submodule_search_locations))) / "config_files"


def source_config(device: EthosUDevice) -> Path:
    """The configuration file the profile names (relative: to its devices/ folder), else Vela's own."""
    if device.config is None:
        return vela_config_dir() / DEFAULT_CONFIG
    path = Path(device.config).expanduser()
    if not path.is_absolute():
        path = profile_path(device.name).parent / path
    if not path.is_file():
        raise BadInputError(
            f"device '{device.name}': config = '{device.config}': no such Vela configuration file",
            context=str(path),
            hint="give a .ini path (relative to the profile's folder) or leave config out for Vela's own Arm/vela.ini",
            code="device-invalid",
        )
    return path


def derived_config(device: EthosUDevice, source: Path, clock_mhz: float) -> str:
    """The configuration file's text with the profile's system configuration at `clock_mhz`."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the keys as Vela's files write them
    try:
        parser.read_string(source.read_text(encoding="utf-8"), source=str(source))
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise BadInputError(
            f"device '{device.name}': {source} is not a readable Vela configuration file: {exc}", code="device-invalid"
        ) from exc
    section = f"System_Config.{device.system_config}"
    if not parser.has_section(section):
        known = [s.split(".", 1)[1] for s in parser.sections() if s.startswith("System_Config.")]
        raise BadInputError(
            f"device '{device.name}': system_config = '{device.system_config}' is not in {source}",
            hint=f"system configurations there: {', '.join(known) or '(none)'}",
            code="device-invalid",
        )
    parser.set(section, "core_clock", repr(float(clock_mhz) * 1e6))
    lines = [
        f"; derived by edgepack from {source}: [{section}] core_clock = {clock_mhz:g} MHz (the profile's clock_mhz)"
    ]
    for name in parser.sections():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key}={value}" for key, value in parser.items(name, raw=True))
    return "\n".join(lines) + "\n"


def vela_args(device: EthosUDevice, config: str) -> list[str]:
    """Vela's arguments after the model and before `--output-dir`."""
    args = [
        "--accelerator-config",
        device.accelerator,
        "--system-config",
        device.system_config,
        "--memory-mode",
        device.memory_mode,
        "--config",
        config,
        "--optimise",
        device.optimise,
    ]
    if device.arena_cache_size is not None:
        args += ["--arena-cache-size", str(parse_size(device.arena_cache_size))]
    return args + ["--verbose-performance", "--show-cpu-operations"]


def vela_version() -> str:
    """The installed Vela's version (its distribution's metadata, read without importing it)."""
    from importlib import metadata

    try:
        return metadata.version("ethos-u-vela")
    except metadata.PackageNotFoundError:
        return "not installed"


def _request(device: EthosUDevice, model: Path, config_text: str) -> dict[str, Any]:
    return {
        "device": device.name,
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "profile": device.model_dump(mode="json"),
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "vela": vela_version(),
    }


def _config(device: EthosUDevice) -> tuple[str, str | None]:
    """The configuration's text (what the compile depends on) and, when derived, the text to write."""
    source = source_config(device)
    if device.clock_mhz is None:
        return source.read_text(encoding="utf-8", errors="replace"), None
    text = derived_config(device, source, device.clock_mhz)
    return text, text


def reusable(device: EthosUDevice, model: Path, folder: Path) -> VelaRun | None:
    """The compile already in `folder` when it is of this model for this profile with this Vela, else None."""
    try:
        done = json.loads((folder / REQUEST).read_text(encoding="utf-8"))
        stdout = (folder / "vela.stdout").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    config_text, _ = _config(device)
    if done.get("request") != _request(device, model, config_text):
        return None
    run = VelaRun(folder, device.system_config, stdout, tuple(done.get("args", [])))
    return run if run.compiled.is_file() and run.summary_csv.is_file() else None


def compile_model(device: EthosUDevice, model: Path, folder: Path, label: str) -> VelaRun:
    """Compile `model` for `device` with Vela in a child process (the profile's run_timeout_s) into `folder`."""
    config_text, derived = _config(device)
    request = _request(device, model, config_text)
    folder = folder.resolve()  # Vela runs in the folder being filled: every path it is given is absolute
    tmp = temp_dir_beside(folder)
    try:
        shutil.copyfile(model, tmp / f"{STEM}.tflite")
        config = str(source_config(device)) if device.config is not None else DEFAULT_CONFIG
        if derived is not None:
            atomic_write_text(tmp / DERIVED_CONFIG, derived)
            config = str(folder / DERIVED_CONFIG)  # where it will be once swapped in
        args = vela_args(device, config)
        if derived is not None:  # Vela reads it now, from the folder being filled
            args[args.index("--config") + 1] = str(tmp / DERIVED_CONFIG)
        cmd = [sys.executable, "-c", _MAIN, str(tmp / f"{STEM}.tflite"), *args, "--output-dir", str(tmp)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=device.run_timeout_s, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise StageError(
                f"{label}: Vela did not finish compiling {model} in {device.run_timeout_s:g} s",
                hint=f"raise run_timeout_s in devices/{device.name}.toml",
                code="device-timeout",
            ) from exc
        if proc.returncode != 0:
            raise vela_failure(label, model, proc.returncode, proc.stderr or proc.stdout)
        recorded = vela_args(device, config)
        atomic_write_text(tmp / "vela.stdout", proc.stdout)
        atomic_write_text(tmp / REQUEST, json.dumps({"request": request, "args": recorded}, indent=2) + "\n")
        run = VelaRun(tmp, device.system_config, proc.stdout, tuple(recorded))
        if not run.compiled.is_file() or not run.summary_csv.is_file():
            raise StageError(
                f"{label}: Vela exited 0 but wrote no {run.compiled.name} / {run.summary_csv.name}",
                context=_tail(proc.stdout),
                code="vela-output",
            )
        replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return VelaRun(folder, device.system_config, proc.stdout, tuple(recorded))


def probe(label: str) -> dict[str, Any]:
    """Vela imported in a child process: its version and the Python it runs under; exit 4 when it is missing."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise DeviceUnreachable(f"{label}: the Vela probe did not answer in 120 s", code="device-timeout") from exc
    if proc.returncode == EXIT_NO_VELA:
        raise DeviceUnreachable(
            f"{label}: ethos-u-vela is not installed (its module ethosu does not import)",
            context=_tail(proc.stderr),
            hint=INSTALL_HINT,
            code="device-no-runtime",
        )
    if proc.returncode != 0:
        raise vela_failure(f"{label}: the Vela probe", None, proc.returncode, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def vela_failure(label: str, model: Path | None, code: int, stderr: str) -> EdgepackError:
    """The error for a Vela child that exited with `code` (negative: killed by that signal)."""
    context = _tail(stderr) or "(no output)"
    what = f" {model}" if model is not None else ""
    if code == EXIT_NO_VELA:
        return DeviceUnreachable(
            f"{label}: ethos-u-vela is not installed", context=context, hint=INSTALL_HINT, code="device-no-runtime"
        )
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return StageError(
            f"{label}: Vela was killed by {name} while compiling{what}",
            context=context,
            hint="run `edgepack validate --debug`, or Vela itself on the model",
            code="vela-crashed",
        )
    last = context.splitlines()[-1]
    if any(kind in last for kind in _PROFILE_ERRORS):
        return BadInputError(
            f"{label}: Vela refuses the device profile's options",
            context=context,
            hint="check accelerator, system_config and memory_mode against the configuration file "
            "(`vela --list-configs Arm/vela.ini`)",
            code="device-invalid",
        )
    if last.startswith("ethosu.vela.errors."):  # Vela's own refusal of the model
        return ModelError(
            f"{label}: Vela refuses to compile{what}",
            context=context,
            code="vela-refused",
            hint="Vela's message is above; a model Vela cannot read or compile cannot run on the NPU",
        )
    return StageError(
        f"{label}: Vela failed (exit {code}) while compiling{what}",
        context=context,
        code="vela-failed",
        hint="run Vela itself on the model for its whole output",
    )


def _tail(text: str) -> str:
    """Vela's last lines, a Python traceback reduced to its final line (the error, not Vela's stack)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        start = max(i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)"))
        lines = lines[:start][-(TAIL_LINES - 1) :] + lines[-1:]
    return "\n".join(lines[-TAIL_LINES:])

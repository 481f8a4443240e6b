"""Device profiles: `devices/NAME.toml`, validated strictly like recipes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from edgepack.errors import BadInputError
from edgepack.recipe.schema import Strict
from edgepack.resources import shipped_dir


class LocalDevice(Strict):
    """This machine, running the runner in a subprocess."""

    name: str
    kind: Literal["local"]
    description: str = ""
    threads: int | None = Field(None, ge=1, le=256)


def devices_dir() -> Path:
    """The folder of shipped device profiles."""
    return shipped_dir("devices")


def known_devices() -> list[str]:
    """Names of the shipped device profiles."""
    return sorted(p.stem for p in devices_dir().glob("*.toml"))


def load_device(name: str) -> LocalDevice:
    """The profile `name` from `devices/`; an unknown name lists the known ones."""
    path = devices_dir() / f"{name}.toml"
    if not path.is_file():
        raise BadInputError(
            f"unknown device '{name}'", context="validate.devices",
            hint=f"known devices: {', '.join(known_devices()) or '(none)'} (profiles in {devices_dir()})",
            code="device-unknown",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return LocalDevice.model_validate({"name": name, **data})
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise BadInputError(f"{path}: invalid device profile: {exc}", code="device-invalid") from exc

"""Which devices may run at the same time: different machines yes, the same machine never.

Two runs on one machine would time each other (which devices share a machine: devices/machines.py).
Machines run concurrently, the devices of one machine one after another, in the recipe's order.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from edgepack.devices.machines import ADB_ANY, THIS_MACHINE, machine
from edgepack.devices.profiles import Device

__all__ = ["ADB_ANY", "THIS_MACHINE", "machine", "run_all"]

T = TypeVar("T")


def run_all(devices: list[Device], work: Callable[[Device], T]) -> dict[str, T]:
    """`work(device)` for every device, machines concurrently; results by device name, in order.

    Every started run is waited for; then the first failure in the recipe's order is raised.
    """
    keys = {device.name: machine(device) for device in devices}
    if ADB_ANY in keys.values():  # "the one attached" may be any phone another profile names
        keys = {name: ADB_ANY if key.startswith("adb ") else key for name, key in keys.items()}
    groups: dict[str, list[Device]] = {}
    for device in devices:
        groups.setdefault(keys[device.name], []).append(device)
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}

    def run_group(members: list[Device]) -> None:
        for device in members:
            try:
                results[device.name] = work(device)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, in the recipe's order
                errors[device.name] = exc
                return  # the rest of this machine's devices would not tell more

    if len(groups) == 1:
        run_group(devices)
    else:
        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="device") as pool:
            for future in [pool.submit(run_group, members) for members in groups.values()]:
                future.result()
    for device in devices:
        if device.name in errors:
            raise errors[device.name]
    return {device.name: results[device.name] for device in devices}

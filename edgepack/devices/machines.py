"""Which machine a device runs on, and a lock per machine that every edgepack process on this computer takes
before it runs anything there: two jobs (two CI matrix entries on one runner, two search workers) never time
each other on one board.

Every device whose runner uses this machine's CPUs (local, qemu-arm64, an ssh board at localhost, an Android
emulator) is one machine; each other ssh host and each adb serial is its own, and a profile without a serial
(the one phone attached) may be any of them. The locks are files in `EDGEPACK_LOCK_DIR` (default: a folder
of this user's in the temporary directory), so they hold across processes, not across computers.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgepack.devices.profiles import AdbDevice, Device, SshDevice
from edgepack.fsutil import locked

THIS_MACHINE = "this machine"
ADB_ANY = "adb (the one attached)"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def machine(device: Device) -> str:
    """The machine `device` runs on, as a key: runs on the same key never overlap."""
    if isinstance(device, SshDevice):
        host = device.host.lower()
        return THIS_MACHINE if host in _LOOPBACK or host.startswith("127.") else f"ssh {host}"
    if isinstance(device, AdbDevice):
        serial = (device.serial or "").lower()
        host = serial.rsplit(":", 1)[0] if ":" in serial else ""
        if serial.startswith("emulator-") or host in _LOOPBACK or host.startswith("127."):
            return THIS_MACHINE  # an Android emulator runs on this machine's CPUs
        return f"adb {serial}" if serial else ADB_ANY
    return THIS_MACHINE


def lock_dir() -> Path:
    """Where the machine locks live: `EDGEPACK_LOCK_DIR`, else `edgepack-locks-UID` in the temporary folder."""
    given = os.environ.get("EDGEPACK_LOCK_DIR")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(given) if given else Path(tempfile.gettempdir()) / f"edgepack-locks-{uid}"


def lock_path(key: str) -> Path:
    """The lock file of the machine `key` ("this machine" -> this-machine.lock)."""
    return lock_dir() / (re.sub(r"[^a-z0-9._-]+", "-", key.lower()).strip("-") + ".lock")


@contextmanager
def machine_lock(device: Device, waiting: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock of the machine `device` runs on; `waiting(key)` once if another process holds it."""
    key = machine(device)
    with locked(lock_path(key), lambda: waiting(key)):
        yield

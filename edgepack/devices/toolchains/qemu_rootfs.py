"""The qemu-arm64 board's root filesystem: Debian arm64 with the aarch64 ai-edge-litert wheel, built once.

`mmdebstrap --variant=extract` gives Python 3 and numpy from Debian; the wheel is unpacked into it and
everything precompiled. It is cached under `~/.cache/edgepack/qemu-arm64/` by what it is built from
(suite, packages, wheel, mirror), built under a lock, and published whole. One hard-linked view of it
per core holds that core's Arm `/proc/cpuinfo` stand-in (XNNPACK's CPU detection crashes on the host's
x86 one).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from edgepack.devices.base import tail
from edgepack.devices.profiles import ARM_CORES, DEBIAN_PYTHON, QemuDevice, profile_path
from edgepack.errors import BadInputError, DeviceUnreachable
from edgepack.fsutil import locked
from edgepack.progress import Reporter

PACKAGES = ("python3", "python3-numpy", "libstdc++6")
SITE = "/opt/edgepack/site"  # where the wheel is unpacked, inside the root filesystem
WHEEL_PLATFORM = "manylinux_2_27_aarch64"
TOOLS = {"qemu-aarch64-static": "qemu-user-static", "mmdebstrap": "mmdebstrap"}
BUILD_TIMEOUT_S = 900.0


def cache_dir() -> Path:
    """Where built root filesystems live: $EDGEPACK_CACHE, else $XDG_CACHE_HOME/edgepack, else ~/.cache/edgepack."""
    base = os.environ.get("EDGEPACK_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgepack"
    )
    return Path(base).expanduser() / "qemu-arm64"


def qemu_binary() -> str | None:
    """The user-mode Arm64 emulator on PATH (Debian's qemu-user-static, or a static qemu-aarch64)."""
    return shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


def missing_tools() -> list[str]:
    """The Debian packages to install for this driver, empty when everything is there."""
    missing = [] if qemu_binary() else [TOOLS["qemu-aarch64-static"]]
    return missing + ([] if shutil.which("mmdebstrap") else [TOOLS["mmdebstrap"]])


def litert_version(device: QemuDevice) -> str:
    """The ai-edge-litert version on the board: the profile's, the wheel's, else the one edgepack runs here."""
    if device.litert_version:
        return device.litert_version
    if device.wheel:
        parts = Path(device.wheel).name.split("-")
        if len(parts) >= 3 and parts[0] == "ai_edge_litert":
            return parts[1]
    try:
        return version("ai-edge-litert")
    except PackageNotFoundError as exc:
        raise BadInputError(
            f"device '{device.name}': ai-edge-litert is not installed here, so its version is unknown",
            hint='set litert_version = "2.3.0" in the profile',
            code="device-invalid",
        ) from exc


def image_key(device: QemuDevice) -> str:
    """The cache entry's name: what the root filesystem is built from (suite, packages, wheel, mirror)."""
    wheel = _wheel_digest(device) if device.wheel else litert_version(device)
    recipe = json.dumps([device.suite, PACKAGES, wheel, device.mirror or ""], sort_keys=True)
    return f"{device.suite}-litert-{litert_version(device)}-{hashlib.sha256(recipe.encode()).hexdigest()[:10]}"


def _wheel_digest(device: QemuDevice) -> str:
    """sha256 of the profile's local wheel file (a new file, a new image)."""
    assert device.wheel is not None
    path = Path(device.wheel).expanduser()
    try:
        stat = path.stat()
        return _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError as exc:
        raise BadInputError(
            f"device '{device.name}': cannot read the wheel {path}: {exc.strerror}",
            context=f"{profile_path(device.name)}: wheel",
            hint="give the path of an aarch64 ai-edge-litert wheel, or remove `wheel` to download it",
            code="device-invalid",
        ) from exc


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, computed once per (path, size, mtime)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_image(device: QemuDevice, reporter: Reporter) -> tuple[Path, dict[str, Any]]:
    """The built root filesystem for `device` (building it once, under a lock) and its build record."""
    key = image_key(device)  # a profile mistake (an unreadable wheel) before a missing tool
    _require_tools(device)
    root = cache_dir() / key
    record_path = root / "build.json"
    if not record_path.is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        with locked(root.parent / f".{key}.lock"):
            if not record_path.is_file():
                _build(device, root, reporter)
    return root / "rootfs", json.loads(record_path.read_text())


def view(rootfs: Path, cpu: str) -> Path:
    """A hard-linked copy of `rootfs` whose /proc/cpuinfo describes `cpu` (made once per core)."""
    target = rootfs.parent / "views" / cpu
    if (target / "proc" / "cpuinfo").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(rootfs.parent / f".view-{cpu}.lock"):
        if (target / "proc" / "cpuinfo").is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{cpu}-", dir=target.parent))
        try:
            _hardlink_tree(rootfs, tmp / "rootfs")
            (tmp / "rootfs" / "proc").mkdir(exist_ok=True)
            (tmp / "rootfs" / "proc" / "cpuinfo").write_text(cpuinfo(cpu, os.cpu_count() or 1))
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp / "rootfs", target)
        except (OSError, shutil.Error) as exc:
            raise DeviceUnreachable(
                f"cannot prepare the {cpu} view of the root filesystem in {target.parent}: {exc}",
                hint="check the free space and permissions of the cache folder",
                code="qemu-build-failed",
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def cpuinfo(cpu: str, count: int) -> str:
    """/proc/cpuinfo as an arm64 Linux kernel writes it for `count` cores of type `cpu`."""
    part, features = ARM_CORES[cpu]
    block = (
        "processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0x{part:03x}\nCPU revision\t: 0\n\n"
    )
    return "".join(block.format(n=n, features=features, part=part) for n in range(count))


def _require_tools(device: QemuDevice) -> None:
    missing = missing_tools()
    if missing:
        tools = [tool for tool, package in TOOLS.items() if package in missing]
        raise DeviceUnreachable(
            f"device '{device.name}': {' and '.join(tools)} {'is' if len(tools) == 1 else 'are'} not installed",
            hint=f"install the Debian/Ubuntu package{'s' if len(missing) > 1 else ''}: sudo apt install "
            f"{' '.join(missing)}",
            code="qemu-missing",
        )


def _build(device: QemuDevice, root: Path, reporter: Reporter) -> None:
    """mmdebstrap the arm64 root filesystem, unpack the wheel into it, precompile; then publish `root`."""
    label = f"device '{device.name}'"
    reporter.note(
        f"{label}: building the Arm64 root filesystem once (Debian {device.suite} + ai-edge-litert "
        f"{litert_version(device)}; downloads from the Debian mirror{'' if device.wheel else ' and PyPI'}); "
        f"cached in {root}"
    )
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        rootfs = tmp / "rootfs"
        tarball = tmp / "rootfs.tar"  # unpacked here: the files are the user's (in unshare mode, a
        cmd = [
            "mmdebstrap",
            "--variant=extract",
            "--architectures=arm64",  # directory would be subuids')
            f"--include={','.join(PACKAGES)}",
            device.suite,
            str(tarball),
            *([device.mirror] if device.mirror else []),
        ]
        with reporter.task(f"{label}: mmdebstrap {device.suite} arm64", None):
            _step(
                cmd,
                label,
                "mmdebstrap could not build the root filesystem",
                "check the network to the Debian mirror (or set `mirror` in the profile); without root, "
                "mmdebstrap needs unprivileged user namespaces (/etc/subuid)",
            )
            _untar(tarball, rootfs, label)
            tarball.unlink()
        wheel = (
            Path(device.wheel).expanduser()
            if device.wheel
            else _download_wheel(device, tmp / "wheels", label, reporter)
        )
        _unpack(wheel, rootfs / SITE.lstrip("/"), label)
        python = DEBIAN_PYTHON[device.suite]
        with reporter.task(f"{label}: precompiling Python", None):
            _precompile(rootfs, python, [f"/usr/lib/python{python}", "/usr/lib/python3", SITE])
        record = {
            "suite": device.suite,
            "packages": list(PACKAGES),
            "python": python,
            "litert_version": litert_version(device),
            "wheel": wheel.name,
            "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "mirror": device.mirror,
            "seconds": round(time.perf_counter() - start, 1),
        }
        (tmp / "build.json").write_text(json.dumps(record, indent=2) + "\n")
        shutil.rmtree(tmp / "wheels", ignore_errors=True)
        if root.exists():  # a half-built entry from an interrupted build
            shutil.rmtree(root)
        tmp.chmod(0o755)  # mkdtemp made it private; a shared cache is readable by all
        os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _precompile(rootfs: Path, python: str, folders: list[str]) -> None:
    """Bytecode for the board's Python, written by this one when it is the same version (bytecode does
    not depend on the CPU). Under emulation, the board's Python cannot create files: qemu maps only
    existing paths into the root filesystem. Without it, each run compiles in memory (slower start)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != python:
        return
    import compileall

    for folder in folders:
        local = rootfs / folder.lstrip("/")
        if local.is_dir():  # one worker: no process pool forked from a process with threads
            compileall.compile_dir(str(local), ddir=folder, quiet=2, workers=1)


def _untar(tarball: Path, target: Path, label: str) -> None:
    """Unpack mmdebstrap's tarball as this user: no device nodes, nothing outside `target`."""
    try:
        with tarfile.open(tarball) as archive:
            members = []
            for member in archive:
                if member.isdev() or member.isfifo():
                    continue  # /dev nodes: only root may make them, and the emulator uses the host's
                parts = Path(member.name.lstrip("/")).parts
                if ".." in parts:
                    raise DeviceUnreachable(
                        f"{label}: mmdebstrap's tarball has an entry outside the root filesystem: {member.name}",
                        code="qemu-build-failed",
                    )
                member.mode &= 0o755  # no setuid bits, nothing writable by others
                members.append(member)
            target.mkdir(parents=True)
            if hasattr(tarfile, "tar_filter"):  # Python >= 3.11.4: no
                archive.extractall(target, members=members, numeric_owner=True, filter="tar")  # writes through links
            else:
                archive.extractall(target, members=members, numeric_owner=True)  # writes through links
    except (OSError, tarfile.TarError) as exc:
        raise DeviceUnreachable(
            f"{label}: cannot unpack the root filesystem into {target}: {exc}",
            hint="check the free space and permissions of the cache folder ($EDGEPACK_CACHE, else ~/.cache/edgepack)",
            code="qemu-build-failed",
        ) from exc


def _download_wheel(device: QemuDevice, folder: Path, label: str, reporter: Reporter) -> Path:
    requirement = f"ai-edge-litert=={litert_version(device)}"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        requirement,
        "--platform",
        WHEEL_PLATFORM,
        "--python-version",
        DEBIAN_PYTHON[device.suite],
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(folder),
    ]
    with reporter.task(f"{label}: pip download {requirement} ({WHEEL_PLATFORM})", None):
        _step(
            cmd,
            label,
            f"pip could not download the aarch64 wheel of {requirement}",
            'check the network to PyPI, or download the wheel elsewhere and set `wheel = "PATH"` in the profile',
        )
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise DeviceUnreachable(f"{label}: pip downloaded no wheel for {requirement}", code="qemu-build-failed")
    return wheels[0]


def _unpack(wheel: Path, site: Path, label: str) -> None:
    """Unpack the wheel's files under `site`, refusing entries that would land outside it."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInputError(
            f"{label}: cannot read the wheel {wheel}: {exc}",
            context="wheel",
            hint="give the path of an aarch64 ai-edge-litert wheel for the board's Python",
            code="device-invalid",
        ) from exc
    with archive:
        names = archive.namelist()
        bad = [n for n in names if n.startswith("/") or ".." in Path(n).parts]
        if bad:
            raise BadInputError(
                f"{label}: {wheel} has entries outside its folder: {bad[:3]}; refused",
                context="wheel",
                code="device-invalid",
            )
        if not any(n.startswith("ai_edge_litert/") for n in names):
            raise BadInputError(
                f"{label}: {wheel} is not an ai-edge-litert wheel", context="wheel", code="device-invalid"
            )
        try:
            site.mkdir(parents=True, exist_ok=True)
            archive.extractall(site)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DeviceUnreachable(
                f"{label}: cannot unpack {wheel.name} into the root filesystem: {exc}",
                hint="check the free space and permissions of the cache folder",
                code="qemu-build-failed",
            ) from exc


def _step(cmd: list[str], label: str, what: str, hint: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise DeviceUnreachable(
            f"{label}: {what} in {BUILD_TIMEOUT_S:g} s", hint=hint, code="qemu-build-failed"
        ) from exc
    if proc.returncode != 0:
        raise DeviceUnreachable(
            f"{label}: {what}",
            context=tail(proc.stderr or proc.stdout) or "(no output)",
            hint=hint,
            code="qemu-build-failed",
        )


def _hardlink_tree(source: Path, target: Path) -> None:
    """Copy `source` to `target` with hard links for files (a copy where links are not possible)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link)

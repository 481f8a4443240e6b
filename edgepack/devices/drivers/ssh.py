"""The ssh driver: a board reached with the system `ssh` client, nothing installed on it but Python.

One connection per run: a tar of runner + model (+ inputs) is piped into `tar -x` in a fresh
directory under `remote_dir`, the runner runs under the device's own `timeout` (so a client-side
timeout never leaves it running), and the directory is removed. Host keys are checked against the
profile's `known_hosts` file only (`StrictHostKeyChecking=yes`, never accept-new); the client runs
with `BatchMode=yes`, so a missing key or a password prompt fails at once instead of waiting.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from edgepack.devices.base import (
    RunRequest,
    collect,
    parse_result,
    runner_args,
    runner_failure,
    shell_join,
    tail,
)
from edgepack.devices.drivers.driver import Driver, RunnerDriver
from edgepack.devices.profiles import SshDevice
from edgepack.devices.runners import RUNNER
from edgepack.errors import DeviceUnreachable, EdgepackError, StageError
from edgepack.progress import Reporter

SSH_FAILED = 255  # the client's own exit status for connection and authentication failures
KILL_GRACE_S = 5
_UNREACHABLE = re.compile(
    r"Connection refused|Connection timed out|timed out|No route to host|Network is unreachable|"
    r"Could not resolve hostname|Name or service not known|Connection closed|Connection reset"
)


def ssh_command(device: SshDevice) -> list[str]:
    """The `ssh` client invocation for `device`, up to and including the host."""
    cmd = [
        "ssh",
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts(device)}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        f"ConnectTimeout={max(1, round(device.connect_timeout_s))}",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "LogLevel=ERROR",
        "-p",
        str(device.port),
    ]
    if device.identity_file:
        cmd += ["-i", str(Path(device.identity_file).expanduser()), "-o", "IdentitiesOnly=yes"]
    if device.user:
        cmd += ["-l", device.user]
    return [*cmd, device.host]


def known_hosts(device: SshDevice) -> Path:
    """The known_hosts file the host key is checked against."""
    return Path(device.known_hosts).expanduser()


def run_ssh(device: SshDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """Push runner + model (+ inputs) in one connection, run the runner there, parse its JSON."""
    files = {"runner.py": RUNNER, "model.tflite": req.model}
    if req.inputs:
        files["inputs.npz"] = req.inputs
    args = runner_args(req, "model.tflite", "inputs.npz" if req.inputs else None, device.runtime)
    with reporter.task(f"{label}: {req.what}", req.invokes) as task:
        stdout, _ = _call(device, files, [*args, "--progress"], device.run_timeout_s, label, task)
    return parse_result(stdout, label)


def check_ssh(device: SshDevice) -> dict[str, Any]:
    """The runner's probe on the board (reachability, Python, numpy, runtime, CPU)."""
    label = f"device '{device.name}'"
    stdout, _ = _call(device, {"runner.py": RUNNER}, ["--probe"], 60.0, label, None)
    return parse_result(stdout, label)


def _call(
    device: SshDevice, files: dict[str, Path], args: list[str], run_timeout_s: float, label: str, task: Any
) -> tuple[str, str]:
    remote = _remote_script(device, args, run_timeout_s)
    payload = _tar(files)
    client_timeout = device.connect_timeout_s + run_timeout_s + 2 * KILL_GRACE_S
    try:
        proc = subprocess.Popen(
            [*ssh_command(device), remote], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise DeviceUnreachable(
            f"{label}: the `ssh` client is not installed", hint="install openssh-client", code="ssh-missing"
        ) from exc
    try:
        stdout, stderr = collect(proc, payload, client_timeout, task)
    except subprocess.TimeoutExpired as exc:
        raise StageError(
            f"{label}: no answer from {device.host} in {client_timeout:g} s",
            code="device-timeout",
            hint="the device may have hung; its own `timeout` stops the runner there",
        ) from exc
    if proc.returncode == SSH_FAILED:
        raise _connection_error(device, label, stderr)
    if proc.returncode != 0:
        raise runner_failure(label, proc.returncode, stderr, timeout_s=run_timeout_s, python=device.python)
    return stdout, stderr


def _remote_script(device: SshDevice, args: list[str], run_timeout_s: float) -> str:
    """A POSIX sh script: unpack stdin into a fresh dir, run the runner under `timeout`, clean up."""
    base = shell_join([device.remote_dir])
    if device.remote_dir.startswith("~/"):  # quoted, ~ would not expand
        base = '"$HOME"/' + shell_join([device.remote_dir[2:]])
    runner = shell_join([device.python, "runner.py", *args])
    return (
        f"set -e; mkdir -p {base}; d=$(mktemp -d {base}/run.XXXXXX); trap 'rm -rf \"$d\"' EXIT; "
        f'cd "$d"; tar -x; set +e; timeout -k {KILL_GRACE_S} {run_timeout_s:g} {runner}; rc=$?; exit $rc'
    )


def _tar(files: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in files.items():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _connection_error(device: SshDevice, label: str, stderr: str) -> EdgepackError:
    where = f"{device.user + '@' if device.user else ''}{device.host}:{device.port}"
    kh = known_hosts(device)
    context = tail(stderr) or "(no output from ssh)"
    key_name = device.host if device.port == 22 else f"[{device.host}]:{device.port}"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key for" in stderr and "has changed" in stderr:
        return DeviceUnreachable(
            f"{label}: the host key of {where} does not match the one recorded in {kh}; refused",
            context=context,
            code="ssh-host-key-changed",
            hint=f"if the board was re-installed, check its new key's fingerprint, then `ssh-keygen -R "
            f"'{key_name}' -f {kh}` and add the new key; otherwise someone may be in the middle",
        )
    if "Host key verification failed" in stderr or "host key is known" in stderr:
        return DeviceUnreachable(
            f"{label}: {where} is not in {kh}; its host key cannot be verified, so it is not used",
            context=context,
            code="ssh-host-key-unknown",
            hint=f"check the board's key fingerprint, then add it: ssh-keyscan -p {device.port} {device.host} >> {kh}",
        )
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        return DeviceUnreachable(
            f"{label}: {where} refused the key{' ' + str(device.identity_file) if device.identity_file else ''}",
            context=context,
            code="ssh-auth-refused",
            hint="put the public key in the board's ~/.ssh/authorized_keys, or set identity_file and user in the profile",
        )
    if _UNREACHABLE.search(stderr):
        return DeviceUnreachable(
            f"{label}: cannot reach {where}",
            context=context,
            code="ssh-unreachable",
            hint=f"is the board on and on the network, sshd running, port {device.port} open? "
            f"(gave up after connect_timeout_s = {device.connect_timeout_s:g})",
        )
    return DeviceUnreachable(
        f"{label}: ssh to {where} failed",
        context=context,
        code="ssh-failed",
        hint="run the same `ssh` by hand to see why",
    )


class SshDriver(RunnerDriver[SshDevice]):
    kind = "ssh"

    def run(self, device: SshDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_ssh(device, req, reporter, label)

    def check(self, device: SshDevice, reporter: Reporter) -> dict[str, Any]:
        return check_ssh(device)

    def where(self, device: SshDevice) -> str:
        return f"{device.user + '@' if device.user else ''}{device.host}:{device.port}"


DRIVER: Driver[SshDevice] = SshDriver()  # checked against the protocol

"""A real OpenSSH server on 127.0.0.1 for the device tests (and bench/devices.py).

It runs as the current user with its own host key, one client key, key-only login and a
known_hosts file that holds exactly its host key. Needs `sshd` and `ssh-keygen` (Debian:
openssh-server); `.ci/run` installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD_PATHS = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def sshd_binary() -> str | None:
    """The sshd executable, or None when OpenSSH's server is not installed."""
    found = shutil.which("sshd")
    return found or next((p for p in SSHD_PATHS if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sshd:
    """A running test server and the files a client needs."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    client_key: Path
    known_hosts: Path
    user: str

    def profile(self, name: str, python: str, **overrides: object) -> str:
        """A device profile (TOML) for this server."""
        fields = {
            "kind": "ssh",
            "description": "test sshd on 127.0.0.1",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "identity_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "python": python,
            "remote_dir": str(self.folder / "remote"),
            "connect_timeout_s": 5,
            **overrides,
        }
        return "".join(f"{k} = {_toml(v)}\n" for k, v in fields.items())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgepack-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def start_sshd(folder: Path) -> Sshd:
    """Start sshd on a free port of 127.0.0.1, in the foreground of a child process."""
    binary = sshd_binary()
    if binary is None:
        raise FileNotFoundError("sshd is not installed (Debian: apt install openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    host_key = keygen(folder / "host_key")
    client_key = keygen(folder / "client_key")
    authorized = folder / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text().split(' edgepack')[0]}\n")
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {folder / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "PrintMotd no\nAcceptEnv none\n"
    )
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory must exist
    except PermissionError:
        pass  # not root: sshd runs unprivileged and does not need it
    with open(folder / "sshd.log", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(folder / 'sshd.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("sshd did not start listening within 10 s")
    import getpass

    return Sshd(process, port, folder, client_key, known, getpass.getuser())

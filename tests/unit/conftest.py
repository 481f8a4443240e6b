"""Unit tests import none of TensorFlow and its family: while each one runs, importing them fails.

HEAVY (tests/conftest.py) is blocked by a `sys.meta_path` finder put first for the test and taken away
after it, and the test fails if one of them was asked for (even where the test or edgepack caught the
ImportError) or appeared in sys.modules some other way. A module already imported cannot be seen, so the
unit files run before the integration files (tests/conftest.py orders them), and a test that finds one
already imported fails saying so (and which test module imported it at collection, if one did) instead of
passing unchecked.

Sockets are off for the network too (`NetworkBlocker`): a unit test that connects anywhere but the loopback
interface, or resolves a name, fails.
"""

from __future__ import annotations

import importlib.abc
import socket
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, NoReturn

import pytest
from conftest import COLLECTED_HEAVY, HEAVY, heavy_modules

CALL_FAILED = pytest.StashKey[bool]()

# Session fixtures of tests/conftest.py that train a model (in a subprocess, where the blocker is not).
TRAINING_FIXTURES = ("default_run", "tiny_run", "ptq_run")


def _refusal(test: str, what: str) -> str:
    return f"unit tests must not import TensorFlow: move {test} to tests/integration ({what})"


class HeavyImportBlocker(importlib.abc.MetaPathFinder):
    """Refuses every module of HEAVY, remembering what was asked for."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.asked: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname.partition(".")[0] not in HEAVY:
            return None
        self.asked.append(fullname)
        raise ImportError(_refusal(self.test, f"it imports {fullname}"), name=fullname)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture is made (a session fixture would be made before the autouse one below)."""
    training = [name for name in TRAINING_FIXTURES if name in getattr(item, "fixturenames", ())]
    if training:
        what = f"it uses the {', '.join(training)} fixture, which trains a model"
        pytest.fail(_refusal(item.nodeid, what), pytrace=False)


@pytest.fixture(autouse=True)
def _no_tensorflow(request: pytest.FixtureRequest) -> Iterator[None]:
    test = request.node.nodeid
    before = heavy_modules()
    if before:
        collected = "; ".join(f"{path} imports {', '.join(sorted(names))}" for path, names in COLLECTED_HEAVY.items())
        pytest.fail(
            f"cannot check that {test} imports no TensorFlow: {', '.join(sorted(before)[:3])} "
            + (
                f"were imported while the tests were collected ({collected}): import them inside the tests and "
                "fixtures that use them"
                if collected
                else "were imported before it ran (by a module or session fixture, or by an integration test "
                "earlier in this process; tests/conftest.py runs the unit files first)"
            ),
            pytrace=False,
        )
    blocker = HeavyImportBlocker(test)
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)
    appeared = sorted(heavy_modules() - before)
    if (blocker.asked or appeared) and not request.node.stash.get(CALL_FAILED, False):  # failed already: once
        pytest.fail(_refusal(test, f"it imported {', '.join(blocker.asked or appeared)}"), pytrace=False)


class NetworkBlocked(RuntimeError):
    """A unit test reached for the network (a RuntimeError, not an OSError: code that copes with a network
    failure must not take it for one and pass)."""


LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")


def _loopback(host: object) -> bool:
    """127.0.0.0/8, ::1 and localhost: the test sshd is on the machine, not the network."""
    import ipaddress

    if not isinstance(host, str):
        return False
    if host.lower() in LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a name: resolving it is already network traffic
        return False


class NetworkBlocker:
    """Sockets off for the network: connecting (or sending) an Internet socket anywhere but the loopback
    interface, or resolving a name other than localhost, raises `NetworkBlocked` and is remembered (the test
    fails even where it was caught). Unix sockets and loopback (the test sshd) are allowed. Child processes
    (ssh, pip) are not Python sockets and are not seen here."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.attempts: list[str] = []

    def refuse(self, what: str) -> NoReturn:
        self.attempts.append(what)
        raise NetworkBlocked(f"unit tests must not use the network: {self.test} tried {what}")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        blocker = self
        real_getaddrinfo = socket.getaddrinfo

        def guarded(name: str) -> Any:
            real = getattr(socket.socket, name)

            def method(sock: socket.socket, address: Any, *args: Any) -> Any:
                host = address[0] if isinstance(address, tuple) and address else address
                if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(host):
                    blocker.refuse(f"socket.{name}({address!r})")
                return real(sock, address, *args)

            return method

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in (None, "", b"") and not _loopback(host.decode() if isinstance(host, bytes) else host):
                blocker.refuse(f"socket.getaddrinfo({host!r})")
            return real_getaddrinfo(host, *args, **kwargs)

        for name in ("connect", "connect_ex"):
            monkeypatch.setattr(socket.socket, name, guarded(name))
        monkeypatch.setattr(socket.socket, "sendto", _sendto(blocker))
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _sendto(blocker: NetworkBlocker) -> Any:
    real = socket.socket.sendto

    def sendto(sock: socket.socket, data: Any, *rest: Any) -> Any:
        address = rest[-1]
        host = address[0] if isinstance(address, tuple) and address else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(host):
            blocker.refuse(f"socket.sendto({address!r})")
        return real(sock, data, *rest)

    return sendto


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkBlocker]:
    blocker = NetworkBlocker(request.node.nodeid)
    blocker.install(monkeypatch)
    yield blocker
    if blocker.attempts and not request.node.stash.get(CALL_FAILED, False):
        pytest.fail(f"unit tests must not use the network: it tried {', '.join(blocker.attempts)}", pytrace=False)

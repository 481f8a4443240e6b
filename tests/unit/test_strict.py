"""The suite's own strictness: sockets off in unit tests, edgepack's UserWarning and RuntimeWarning as errors
(a DeprecationWarning or FutureWarning at its call site shown, not failed), third-party ones ignored."""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import pytest

from unit.conftest import NetworkBlocked, NetworkBlocker


def _connect_ex_ipv6() -> None:
    with socket.socket(socket.AF_INET6) as sock:
        sock.connect_ex(("2001:db8::1", 80))  # documentation prefix: nothing answers


def _udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("192.0.2.1", 53))


@pytest.mark.parametrize(
    "reach",
    [
        lambda: socket.create_connection(("192.0.2.1", 443), timeout=1),  # TEST-NET-1: nothing answers
        lambda: socket.create_connection(("pypi.org", 443), timeout=1),
        lambda: socket.getaddrinfo("pypi.org", 443),
        _connect_ex_ipv6,
        _udp,
    ],
    ids=["connect", "by-name", "resolve", "connect_ex-ipv6", "udp"],
)
def test_a_unit_test_cannot_reach_the_network(_no_network: NetworkBlocker, reach: object) -> None:
    with pytest.raises(NetworkBlocked, match="unit tests must not use the network"):
        reach()  # type: ignore[operator]
    assert _no_network.attempts  # remembered: had the test caught it, it would fail all the same
    _no_network.attempts.clear()


def test_loopback_and_unix_sockets_still_work() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=1).close()
    left, right = socket.socketpair(socket.AF_UNIX)
    left.sendall(b"ok")
    assert right.recv(2) == b"ok"
    left.close()
    right.close()


def _warn_from(module: str, category: type[Warning] = DeprecationWarning) -> None:
    """A warning issued by code of `module` (the filters match the module that calls warnings.warn)."""
    code = f"import warnings\nwarnings.warn('from ' + __name__, {category.__name__})"
    exec(code, {"__name__": module})


@pytest.mark.parametrize("category", [UserWarning, RuntimeWarning])
@pytest.mark.parametrize("module", ["edgepack.models.probe", "unit.probe"])
def test_edgepacks_own_user_and_runtime_warnings_are_errors(module: str, category: type[Warning]) -> None:
    with pytest.raises(category, match=f"from {module}"):
        _warn_from(module, category)


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
@pytest.mark.parametrize("module", ["edgepack.models.probe", "unit.probe"])
def test_a_deprecation_at_edgepacks_call_site_is_shown_not_failed(module: str, category: type[Warning]) -> None:
    """numpy, typer, rich... issue a DeprecationWarning or FutureWarning at their caller's line (here:
    edgepack's, or a test's) and have no upper bound: a new release must not fail a clean machine's suite."""
    with warnings.catch_warnings(record=True) as caught:  # the configured filters stay as they are
        _warn_from(module, category)
    assert [(w.category, str(w.message)) for w in caught] == [(category, f"from {module}")]  # shown, once


def test_third_party_warnings_are_ignored_by_module() -> None:
    with warnings.catch_warnings(record=True) as caught:  # the configured filters stay as they are
        _warn_from("tensorflow_model_optimization.probe")
    assert not any("probe" in str(w.message) for w in caught)  # ignored by module, not raised


def test_an_install_test_knows_when_no_package_index_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from conftest import package_index_unreachable

    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://example.org/simple")  # as a developer's shell may have
    for key in [key for key in os.environ if key.startswith("PIP_")]:  # every pip setting of the environment
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip's configuration files: none
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "gone").as_uri())
    why = package_index_unreachable.__wrapped__()  # not the cached answer of this process
    assert why is not None and why.startswith("offline: no package index is reachable") and "gone" in why
    (tmp_path / "gone").mkdir()  # a local mirror: reachable
    assert package_index_unreachable.__wrapped__() is None


def test_the_package_index_check_has_one_deadline_and_a_silent_pip_is_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that never answers (a name lookup with no timeout of its own, traffic dropped) costs the
    deadline once, however many indexes are named; a `pip config list` that hangs is offline, not an error."""
    import subprocess
    import threading
    import time

    import conftest

    release = threading.Event()

    def silent(*args: object, **kwargs: object) -> socket.socket:  # past any timeout it was given
        release.wait(60)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    monkeypatch.setattr(conftest, "INDEX_DEADLINE_S", 0.5)
    for key in [key for key in os.environ if key.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "https://a.example/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://b.example/simple https://c.example/simple")
    started = time.monotonic()
    why = conftest.package_index_unreachable.__wrapped__()
    release.set()
    assert time.monotonic() - started < 0.5 + 3  # one deadline (and pip config list), not one per host
    assert why is not None and why.count("no answer within 0.5 s") == 3 and "c.example:443" in why

    def hangs(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired(["pip", "config", "list"], 20)

    monkeypatch.setattr(subprocess, "run", hangs)
    why = conftest.package_index_unreachable.__wrapped__()
    assert why is not None and why.startswith("offline: `pip config list` did not answer")

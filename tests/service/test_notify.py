"""sd_notify over a real AF_UNIX datagram socket, bound here in place of systemd's."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoice_mailer.service.notify import Notifier


class FakeManager:
    """The receiving end systemd would hold: a bound datagram socket we read from."""

    def __init__(self, sock: socket.socket, env_value: str):
        self.sock = sock
        self.env_value = env_value

    def receive(self) -> str:
        return self.sock.recv(4096).decode("utf-8")


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManager]:
    """A socket file in tmp_path, named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield FakeManager(sock, str(path))


@pytest.fixture
def abstract_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManager]:
    """A socket in the abstract namespace, named "@..." as systemd does for some services."""
    name = f"invoice-mailer-test-{secrets.token_hex(8)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        yield FakeManager(sock, "@" + name)


def test_ready_arrives_as_one_datagram(manager: FakeManager) -> None:
    assert Notifier.from_environment().ready() is True
    assert manager.receive() == "READY=1"


def test_status_text_arrives(manager: FakeManager) -> None:
    Notifier.from_environment().status("watching /srv/fatture/export, 3 queued")
    assert manager.receive() == "STATUS=watching /srv/fatture/export, 3 queued"


def test_status_with_line_breaks_arrives_as_one_line(manager: FakeManager) -> None:
    Notifier.from_environment().status("2 sent\r\n1 held\nSTOPPING=1")
    received = manager.receive()
    assert received == "STATUS=2 sent 1 held STOPPING=1"
    assert "\n" not in received  # the text cannot smuggle in a second assignment


def test_watchdog_stopping_and_reloading(manager: FakeManager) -> None:
    notifier = Notifier.from_environment()
    notifier.watchdog()
    notifier.stopping()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert manager.receive() == "WATCHDOG=1"
    assert manager.receive() == "STOPPING=1"
    reloading, stamp = manager.receive().split("\n")
    assert reloading == "RELOADING=1"
    key, value = stamp.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_abstract_namespace_socket(abstract_manager: FakeManager) -> None:
    notifier = Notifier.from_environment()
    assert notifier.enabled
    notifier.ready()
    notifier.status("ready")
    assert abstract_manager.receive() == "READY=1"
    assert abstract_manager.receive() == "STATUS=ready"


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert Notifier.from_environment().watchdog_interval() == 1.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier.from_environment().watchdog_interval() == 1.0


@pytest.mark.parametrize(
    "usec, pid",
    [
        (None, None),  # no WatchdogSec=
        ("2000000", "1"),  # meant for another process (inherited environment)
        ("0", None),
        ("soon", None),
        ("2000000", "me"),
    ],
)
def test_no_watchdog_interval_when_not_ours(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert Notifier.from_environment().watchdog_interval() is None


def test_without_notify_socket_everything_is_a_quiet_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.reloading() is False
    assert notifier.stopping() is False


def test_a_vanished_socket_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """systemd gone (or restarted) under a running service: the service goes on."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    # logsetup turns propagation off for the package; let caplog's root handler see the record.
    monkeypatch.setattr(logging.getLogger("invoice_mailer"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="invoice_mailer.service.notify")
    notifier = Notifier.from_environment()
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert "cannot notify the service manager" in caplog.text


def test_unsupported_socket_address_disables_notification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert not Notifier.from_environment().enabled

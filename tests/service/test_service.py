"""The service as systemd runs it: sd_notify, SIGHUP reloads, SIGTERM during a retry wait (and
while idle: tests/admin/test_admin.py, after a CLI `retry`)."""

from __future__ import annotations

import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book
from tests.support.smtpserver import free_port

CUSTOMERS = [("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "", "")]


@pytest.fixture
def notify_socket():
    """A datagram socket standing in for systemd (short path: AF_UNIX allows ~108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="im-notify-"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(folder / "notify"))
    sock.settimeout(0.1)
    received: list[str] = []

    def messages() -> list[str]:
        while True:
            try:
                received.append(sock.recv(4096).decode())
            except TimeoutError:
                return received

    yield str(folder / "notify"), messages
    sock.close()
    (folder / "notify").unlink()
    folder.rmdir()


def test_notify_ready_status_and_watchdog(tmp_path, start_smtp_server, notify_socket):
    address, messages = notify_socket
    server = start_smtp_server("none")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(tmp_path, server, customers={"address_book": str(book)})
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    with ServiceProcess(config, env=env):
        wait_until(lambda: "READY=1" in messages(), 10)
        wait_until(lambda: "STATUS=0 sent, 0 waiting, 0 held, 0 failed" in messages(), 10)
        drop(tmp_path / "export", "Fattura_1_2026_C042.pdf", make_pdf(text="Fattura 1"))
        server.wait_for_messages(1, timeout=15)
        wait_until(lambda: "STATUS=1 sent, 0 waiting, 0 held, 0 failed" in messages(), 10)
        wait_until(lambda: messages().count("WATCHDOG=1") >= 2, 10)
    assert "STOPPING=1" in messages()


def test_sighup_with_broken_config_keeps_the_old_one(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(tmp_path, server, customers={"address_book": str(book)})
    good = config.read_text()
    with ServiceProcess(config) as service:
        config.write_text(good.replace("security: none", "security: nonsense"))
        service.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in service.log(), 10)
        assert "smtp.security: expected one of tls, starttls, none, got 'nonsense'" in service.log()
        assert "line " in service.log()
        drop(tmp_path / "export", "Fattura_2_2026_C042.pdf", make_pdf(text="Fattura 2"))
        (received,) = server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("mario@rossi.example",)


def test_sighup_with_new_signature_applies_to_the_next_message(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path, server, customers={"address_book": str(book)}, signature="-- \nVecchia firma"
    )
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_3_2026_C042.pdf", make_pdf(text="Fattura 3"))
        (first,) = server.wait_for_messages(1, timeout=15)
        assert "Vecchia firma" in first.message.get_body(("plain",)).get_content()
        data = yaml.safe_load(config.read_text())
        data["signature"] = "-- \nNuova firma, Rossi S.r.l."
        config.write_text(yaml.safe_dump(data))
        service.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in service.log(), 10)
        drop(tmp_path / "export", "Fattura_4_2026_C042.pdf", make_pdf(text="Fattura 4"))
        second = server.wait_for_messages(2, timeout=15)[1]
        assert "Nuova firma, Rossi S.r.l." in second.message.get_body(("plain",)).get_content()


def test_sigterm_during_a_retry_wait_exits_promptly(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        server,
        customers={"address_book": str(book)},
        retry={"attempts_now": 5, "backoff_min": "10m", "backoff_max": "1h"},
    )
    data = yaml.safe_load(config.read_text())
    data["smtp"]["port"] = free_port()  # nobody listens: connection refused, a transient error
    config.write_text(yaml.safe_dump(data))
    service = ServiceProcess(config).start()
    try:
        drop(tmp_path / "export", "Fattura_5_2026_C042.pdf", make_pdf(text="Fattura 5"))
        wait_until(lambda: "quick retry 1" in service.log(), 15)
        asked = time.monotonic()
        service.signal(signal.SIGTERM)
        code = service.stop(timeout=5)  # a TimeoutExpired here fails the test: it did not stop
    finally:
        service.stop()
    assert code == 0, service.log()
    assert time.monotonic() - asked < 5
    (row,) = service.query("SELECT state FROM deliveries")
    assert row["state"] in ("queued", "deferred")

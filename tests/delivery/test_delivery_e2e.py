"""Delivery through the real processes: `invoice-mailer run` (SIGTERM during a retry wait, SIGHUP
after a refused password), `send-test` and `check --smtp`, against real aiosmtpd servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from invoice_mailer.demo.samples import make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config
from tests.support.smtpserver import PASSWORD, USER

BOOK = "Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale\n"


def address_book(tmp_path, name: str = "Mario Rossi S.p.A.") -> str:
    path = tmp_path / "clienti.csv"
    path.write_bytes(f'{BOOK}C042;"{name}";mario@rossi.example;;;\n'.encode())
    return str(path)


def secure(server, certs, password: str = PASSWORD) -> dict:
    """The smtp: section for a TLS server of tests/support/smtpserver.py with AUTH."""
    return {
        "host": "localhost", "security": server.security, "ca_file": str(certs.ca),
        "username": USER, "password": password,
    }  # fmt: skip


def run_cli(config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoice_mailer", "-c", str(config), *args],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip


def deliveries(state_dir) -> list[dict]:
    from invoice_mailer.ledger.database import Ledger

    with Ledger(state_dir, readonly=True) as ledger:
        return [dict(row) for row in ledger.query("SELECT * FROM deliveries ORDER BY id")]


@pytest.mark.parametrize(
    ("waiting", "attempts_now", "log_line"),
    [
        ("in tenacity's quick wait", 5, "quick retry 1 of 4"),
        ("in the durable deferral", 1, "; next attempt in "),
    ],
)
def test_sigterm_while_waiting_for_a_retry_exits_0_and_the_delivery_survives(
    tmp_path, start_smtp_server, waiting, attempts_now, log_line
):
    server = start_smtp_server("none")
    server.refuse_connections(1000)  # 421 on every connection: a transient failure
    config = service_config(
        tmp_path, server, customers={"address_book": address_book(tmp_path)},
        retry={"attempts_now": attempts_now, "backoff_min": "10m", "backoff_max": "1h"},
    )  # fmt: skip
    service = ServiceProcess(config).start()
    try:
        drop(tmp_path / "export", "Fattura_7_2026_C042.pdf", make_pdf(text="Fattura 7"))
        wait_until(lambda: log_line in service.log(), 15)
        service.signal(signal.SIGTERM)
        assert service.process.wait(timeout=5) == 0  # TimeoutExpired: it did not stop in time
    finally:
        service.stop()
    assert "421 4.3.2 Service not available" in service.log()
    (row,) = deliveries(service.state_dir)
    assert row["state"] == "deferred" and "421" in row["last_error"]
    assert server.messages == []
    if attempts_now == 1:
        assert row["next_attempt_at"] - time.time() > 7 * 60  # 10 min -20 %, kept on disk
        return

    server.reset_faults()  # the server is back; so is the service, with the same ledger
    with ServiceProcess(config):
        (received,) = server.wait_for_messages(1, timeout=15)
        assert received.message["Message-ID"] == row["message_id"]
        wait_until(lambda: deliveries(service.state_dir)[0]["state"] == "sent", 10)
    assert len(server.messages) == 1


def test_a_refused_password_pauses_the_queue_and_sighup_with_the_new_one_resumes(
    tmp_path, start_smtp_server, smtp_certs
):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    config = service_config(
        tmp_path, server, customers={"address_book": address_book(tmp_path)},
        smtp=secure(server, smtp_certs, password="the-old-password"),
    )  # fmt: skip
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_8_2026_C042.pdf", make_pdf(text="Fattura 8"))
        wait_until(lambda: "sending is paused" in service.log(), 15)
        assert "535" in service.log() and "Nothing is failed" in service.log()
        assert service.query("SELECT COUNT(*) AS n FROM pauses")[0]["n"] == 1
        assert service.query("SELECT state FROM deliveries") == [{"state": "queued"}]
        assert service.query("SELECT state FROM documents WHERE state = 'failed'") == []
        assert "the-old-password" not in service.log()

        data = yaml.safe_load(config.read_text())
        data["smtp"]["password"] = PASSWORD
        config.write_text(yaml.safe_dump(data))
        service.signal(signal.SIGHUP)
        (received,) = server.wait_for_messages(1, timeout=15)
        assert received.login == USER and received.rcpt_tos == ("mario@rossi.example",)
        wait_until(lambda: service.query("SELECT state FROM deliveries") == [{"state": "sent"}])
        assert service.query("SELECT COUNT(*) AS n FROM pauses")[0]["n"] == 0
        assert PASSWORD not in service.log()


def test_a_line_break_in_the_address_book_name_never_adds_a_recipient(tmp_path, start_smtp_server):
    server = start_smtp_server("none")
    book = address_book(tmp_path, name="Mario Rossi\r\nBcc: x@evil.test")
    config = service_config(
        tmp_path, server, customers={"address_book": book},
        templates={"customer_subject": "{doc} n. {number} per {customer_name}"},
    )  # fmt: skip
    with ServiceProcess(config):
        drop(tmp_path / "export", "Fattura_9_2026_C042.pdf", make_pdf(text="Fattura 9"))
        (received,) = server.wait_for_messages(1, timeout=15)
    assert received.rcpt_tos == ("mario@rossi.example",)
    assert "Bcc" not in received.message
    assert received.message["Subject"] == "Fattura n. 9 per Mario Rossi Bcc: x@evil.test"


def test_send_test_sends_one_message_and_prints_the_reply(tmp_path, start_smtp_server, smtp_certs):
    server = start_smtp_server("starttls", users={USER: PASSWORD})
    config = service_config(
        tmp_path, server, smtp=secure(server, smtp_certs), signature="--\nRossi S.r.l."
    )
    result = run_cli(config, "send-test", "admin@example.it")
    assert result.returncode == 0, result.stderr
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ("admin@example.it",) and received.tls
    assert received.message["Subject"] == "invoice-mailer: messaggio di prova"
    # "--" as the admin typed it (editors strip the space) goes out as RFC 3676's "-- ".
    assert received.message.get_body(("plain",)).get_content().endswith("\n-- \nRossi S.r.l.\n")
    assert f"test message sent to admin@example.it via localhost:{server.port}" in result.stdout
    assert "the server replied: 250 2.0.0 Ok: queued as 1" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("fault", "expected", "hint"),
    [
        ("self_signed", "TLS certificate not accepted", "nothing was sent"),
        ("refused", "550 5.1.1 user unknown", "hint: the server refused this message"),
        ("password", "535", "check smtp.username and the password"),
    ],
)
def test_send_test_failures_print_the_exact_error_and_a_hint(
    tmp_path, start_smtp_server, smtp_certs, fault, expected, hint
):
    cert = smtp_certs.self_signed if fault == "self_signed" else smtp_certs.server
    server = start_smtp_server("tls", cert=cert, users={USER: PASSWORD})
    server.reject_recipient("admin@example.it")
    password = "Wr0ng-Pa55" if fault == "password" else PASSWORD
    config = service_config(tmp_path, server, smtp=secure(server, smtp_certs, password))
    result = run_cli(config, "send-test", "admin@example.it")
    assert result.returncode == 1
    assert result.stdout == ""
    assert expected in result.stderr and hint in result.stderr
    assert "Traceback" not in result.stderr and password not in result.stderr
    assert server.messages == []
    if fault != "refused":
        assert "MAIL" not in server.commands
    if fault == "self_signed":
        assert "AUTH" not in server.commands


def test_check_smtp_logs_in_and_sends_nothing(tmp_path, start_smtp_server, smtp_certs):
    server = start_smtp_server("tls", users={USER: PASSWORD})
    config = service_config(tmp_path, server, smtp=secure(server, smtp_certs))
    result = run_cli(config, "check", "--smtp")
    assert result.returncode == 0, result.stderr
    assert f"SMTP OK: localhost:{server.port} (tls), TLSv1." in result.stdout
    assert f"logged in as {USER}" in result.stdout and "config OK" in result.stdout
    assert "AUTH" in server.commands and "MAIL" not in server.commands
    assert server.messages == []

    bad = service_config(tmp_path, server, smtp=secure(server, smtp_certs, "Wr0ng-Pa55"))
    result = run_cli(bad, "check", "--smtp")
    assert result.returncode == 1
    assert "535" in result.stderr and "check smtp.username and the password" in result.stderr
    assert "Wr0ng-Pa55" not in result.stdout + result.stderr
    assert len(server.messages) == 0

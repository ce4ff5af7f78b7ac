"""The real `invoice-mailer run` (and its CLI) against a real SMTP server that misbehaves on
purpose (tests/support/roguesmtp.py): a reply to the final "." that never comes, one that trickles
forever, a 535 that echoes the password."""

from __future__ import annotations

import base64
import json
import signal

from invoice_mailer.demo.samples import make_pdf
from tests.delivery.test_delivery_e2e import address_book, deliveries, run_cli
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config
from tests.support.smtpserver import USER

ADMIN = "admin@example.it"
CUSTOMER = "mario@rossi.example"


def test_a_reply_lost_twice_makes_the_message_unconfirmed_not_resent_for_ever(
    tmp_path, start_rogue_server
):
    server = start_rogue_server("silent", spare=(ADMIN,))  # the admin's alerts are answered
    config = service_config(
        tmp_path, server, customers={"address_book": address_book(tmp_path)},
        smtp={"data_timeout": "1s"}, alerts={"to": ADMIN, "interval": "1s"},
    )  # fmt: skip
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_7_2026_C042.pdf", make_pdf(text="Fattura 7"))
        (alert,) = wait_until(lambda: server.messages_to(ADMIN), 30)
        log = service.log()
        status = run_cli(config, "status")
        counts = json.loads(run_cli(config, "status", "--json").stdout)["counts"]
        copies = server.messages_to(CUSTOMER)
    # One resend after the first lost reply, the same bytes; then nothing more by itself.
    assert len(copies) == 2 and copies[0].data == copies[1].data
    (row,) = [r for r in deliveries(tmp_path / "state") if r["purpose"] == "customer"]
    assert row["state"] == "unconfirmed" and row["attempts"] == 2
    text = alert.message.get_body(("plain",)).get_content()
    assert "Fattura_7_2026_C042.pdf" in text and "unconfirmed" in text
    assert "Sent folder" in text and "invoice-mailer retry 1" in text
    assert "is unconfirmed" in log and "not sent again automatically" in log
    assert "Sent folder" in log
    assert status.returncode == 0
    assert "Unconfirmed: sent twice" in status.stdout and "invoice-mailer retry 1" in status.stdout
    assert counts["deliveries"]["unconfirmed"] == 1

    # `retry ID` by hand, after looking: one more copy, the same Message-ID, unconfirmed again.
    with ServiceProcess(config):
        done = run_cli(config, "retry", "1")
        assert done.returncode == 0 and "same Message-ID" in done.stdout
        wait_until(lambda: len(server.messages_to(CUSTOMER)) == 3, 20)
        wait_until(lambda: deliveries(tmp_path / "state")[0]["state"] == "unconfirmed", 20)
    third = server.messages_to(CUSTOMER)[2]
    assert third.data == copies[0].data
    assert len(server.messages_to(CUSTOMER)) == 3

    # It was in the Sent folder after all: `dismiss ID`, and it counts as sent.
    done = run_cli(config, "dismiss", "1", "--note", "seen in the Sent folder")
    assert done.returncode == 0 and "counts as sent" in done.stdout
    assert deliveries(tmp_path / "state")[0]["state"] == "sent"
    assert "Unconfirmed" not in run_cli(config, "status").stdout
    again = run_cli(config, "dismiss", "1", "--note", "twice")
    assert again.returncode == 1 and "nothing to dismiss" in again.stderr


def test_sigterm_ends_the_service_while_the_server_trickles_its_reply(tmp_path, start_rogue_server):
    server = start_rogue_server("trickle")  # "250 2.0.0 Ok" then a byte a second, for ever
    config = service_config(tmp_path, server, customers={"address_book": address_book(tmp_path)})
    service = ServiceProcess(config).start()  # data_timeout: the default 10 minutes
    try:
        drop(tmp_path / "export", "Fattura_8_2026_C042.pdf", make_pdf(text="Fattura 8"))
        assert server.trickling.wait(20)
        service.signal(signal.SIGTERM)
        assert service.process.wait(timeout=10) == 0  # TimeoutExpired: SIGTERM was not heard
    finally:
        service.stop()
    (row,) = deliveries(tmp_path / "state")
    assert row["state"] == "sending"  # the outcome is unknown: resent once at the next start
    assert "stopping before the next try; it stays sending" in service.log()


def secrets_of(password: str) -> list[bytes]:
    """The password as it travels: plain, and inside AUTH PLAIN and AUTH LOGIN (base64)."""
    plain = base64.b64encode(f"\0{USER}\0{password}".encode())
    login = base64.b64encode(password.encode())
    return [password.encode(), plain, login, plain[4:-4], login[:-2]]


def test_the_password_never_leaks_through_a_server_that_echoes_the_auth_line(
    tmp_path, start_rogue_server, smtp_certs
):
    password = "Seg-reto-Pa55w0rd!"
    server = start_rogue_server("ok", cert=smtp_certs.server, auth_failures=1000)
    smtp = {"host": "localhost", "security": "tls", "ca_file": str(smtp_certs.ca),
            "username": USER, "password": password}  # fmt: skip
    config = service_config(
        tmp_path, server, smtp=smtp, customers={"address_book": address_book(tmp_path)},
        alerts={"to": ADMIN, "interval": "1s"}, retry={"backoff_min": "1s"},
    )  # fmt: skip
    shown: dict[str, bytes] = {}
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_9_2026_C042.pdf", make_pdf(text="Fattura 9"))
        wait_until(lambda: "sending is paused" in service.log(), 20)
        echoed = [line for line in server.lines if line.startswith(b"AUTH")]
        shown["status"] = run_cli(config, "status").stdout.encode()
        shown["status --json"] = run_cli(config, "status", "--json").stdout.encode()
        check = run_cli(config, "check", "--smtp")
        send_test = run_cli(config, "send-test", ADMIN)
        server.accept_logins()  # the password works again: the alert goes out
        (alert,) = wait_until(lambda: server.messages_to(ADMIN), 30)
        shown["log"] = service.log().encode()
    assert echoed, "the server saw no AUTH line to echo"
    assert b"535" in shown["log"] and b"sending is paused" in shown["log"]
    assert check.returncode == 1 and "535" in check.stderr
    assert send_test.returncode == 1 and "535" in send_test.stderr
    shown["check --smtp"] = (check.stdout + check.stderr).encode()
    shown["send-test"] = (send_test.stdout + send_test.stderr).encode()
    shown["alert"] = alert.data
    assert b"sending is paused" in alert.data
    for name in ("ledger.db", "ledger.db-wal"):
        path = tmp_path / "state" / name
        shown[name] = path.read_bytes() if path.exists() else b""
    for where, data in shown.items():
        for secret in secrets_of(password):
            assert secret not in data, f"{secret!r} in {where}"


def test_check_smtp_and_send_test_say_why_no_server_answered(tmp_path, start_rogue_server):
    server = start_rogue_server("ok")
    server.stop()  # its port now refuses connections
    for host, hint in (
        ("no-such-host.invalid", "the name no-such-host.invalid cannot be found (DNS)"),
        ("127.0.0.1", f"nothing answers on 127.0.0.1 port {server.port}: check smtp.port"),
    ):
        config = service_config(tmp_path, server, smtp={"host": host})
        for command in (("check", "--smtp"), ("send-test", ADMIN)):
            result = run_cli(config, *command)
            assert result.returncode == 1, command
            assert f"hint: {hint}" in result.stderr, (command, result.stderr)
            assert "Traceback" not in result.stderr


def test_status_says_could_not_connect_and_when_the_next_try_is(tmp_path, start_rogue_server):
    server = start_rogue_server("ok")
    server.stop()  # nobody answers on its port
    config = service_config(
        tmp_path, server, customers={"address_book": address_book(tmp_path)},
        retry={"attempts_now": 1, "backoff_min": "10m", "backoff_max": "1h"},
    )  # fmt: skip
    with ServiceProcess(config):
        drop(tmp_path / "export", "Fattura_5_2026_C042.pdf", make_pdf(text="Fattura 5"))
        wait_until(lambda: [r["state"] for r in deliveries(tmp_path / "state")] == ["deferred"], 20)
        text = run_cli(config, "status").stdout
    deferred = text.split("To be sent again (deferred):")[1]
    assert "next try at " in deferred
    assert "could not connect: connecting to 127.0.0.1" in " ".join(deferred.split())
    assert "the server said" not in text


def test_non_ascii_copy_to_addresses_never_stop_the_customer_message(tmp_path, start_rogue_server):
    server = start_rogue_server("ok")  # no SMTPUTF8
    config = service_config(
        tmp_path, server, customers={"address_book": address_book(tmp_path)},
        copy_to=["archivio@società.example", "sposò@example.it"], copy_mode="cc",
    )  # fmt: skip
    with ServiceProcess(config) as service:
        for number in (1, 2):
            drop(
                tmp_path / "export", f"Fattura_{number}_2026_C042.pdf", make_pdf(text=f"F{number}")
            )
        wait_until(lambda: len(server.messages_to(CUSTOMER)) == 2, 20)
        wait_until(lambda: len(list((tmp_path / "state" / "sent").rglob("*.pdf"))) == 2, 20)
        log = service.log()
    for message in server.messages_to(CUSTOMER):
        assert set(message.rcpt_tos) == {CUSTOMER, "archivio@xn--societ-nta.example"}
        assert message.message["Cc"] == "archivio@xn--societ-nta.example"
        assert message.data.partition(b"\r\n\r\n")[0].isascii()
    copies = [r for r in deliveries(tmp_path / "state") if r["purpose"] == "copy"]
    assert [r["state"] for r in copies] == ["failed", "failed"]
    assert all("sposò@example.it has non-ASCII letters before the @" in r["last_error"]
               for r in copies)  # fmt: skip
    assert "does not offer SMTPUTF8" in log
    assert not (tmp_path / "state" / "failed").exists() or not any(
        (tmp_path / "state" / "failed").iterdir()
    )

"""The mailbox unreachable or the login refused: sending goes on, the admin hears of it once,
and a reload with the right password brings the receipts back; SIGTERM ends the service at
once even while it idles on the mailbox (IMAP IDLE)."""

from __future__ import annotations

import signal
import time

import yaml

from tests.support.cli import run_cli
from tests.support.dovecot import needs_dovecot
from tests.support.helpers import wait_until
from tests.support.receiptmail import pec_receipt
from tests.support.receipts_harness import (
    PEC_CUSTOMER,
    notices_text,
    proof_of,
    receipts_config,
    send_invoice,
)
from tests.support.service_harness import ServiceProcess
from tests.support.smtpserver import free_port

pytestmark = needs_dovecot


def _mailbox_notices(tmp_path) -> list[str]:
    return [t for t in notices_text(tmp_path) if t.startswith("the mailbox cannot be read")]


def test_a_refused_login_is_told_once_and_sending_goes_on(tmp_path, smtp_server, dovecot):
    config = receipts_config(
        tmp_path, smtp_server, dovecot, receipts={"poll": "1s", "imap": {"password": "wrong"}}
    )
    settings = yaml.safe_load(config.read_text())
    with ServiceProcess(config) as service:
        mid = send_invoice(tmp_path, 1)["message_id"]  # sending does not wait for the mailbox
        wait_until(lambda: service.log().count("refused the login") >= 3, 20)
        assert len(_mailbox_notices(tmp_path)) == 1
        assert "wrong" not in service.log()
        dovecot.deliver(pec_receipt("accettazione", mid, addressees={PEC_CUSTOMER: True}))
        settings["receipts"]["imap"]["password"] = "Segreto-2026!"
        config.write_text(yaml.safe_dump(settings))
        service.signal(signal.SIGHUP)
        wait_until(lambda: proof_of(tmp_path, mid, PEC_CUSTOMER) == "accepted", 20)
        assert "can be read again" in service.log()
    (told,) = _mailbox_notices(tmp_path)
    assert "refused the login of fatture@pec.studiorossi.it" in told
    assert "Sending goes on" in told


def test_an_unreachable_mailbox_is_told_once(tmp_path, smtp_server, dovecot):
    nothing_there = {"poll": "1s", "imap": {"port": free_port()}}
    config = receipts_config(tmp_path, smtp_server, dovecot, receipts=nothing_there)
    with ServiceProcess(config) as service:
        send_invoice(tmp_path, 1)
        wait_until(lambda: service.log().count("Connection refused") >= 3, 20)
    (told,) = _mailbox_notices(tmp_path)
    assert "cannot reach 127.0.0.1" in told


def test_sigterm_ends_the_service_at_once_while_it_idles_on_the_mailbox(
    tmp_path, smtp_server, dovecot
):
    config = receipts_config(tmp_path, smtp_server, dovecot, receipts={"poll": "10m"})
    with ServiceProcess(config) as service:
        mid = send_invoice(tmp_path, 1)["message_id"]
        dovecot.deliver(pec_receipt("accettazione", mid, addressees={PEC_CUSTOMER: True}))
        wait_until(lambda: proof_of(tmp_path, mid, PEC_CUSTOMER) == "accepted", 15)
        # Read at once although poll is 10 minutes: IDLE told the service. Now it idles again.
        started = time.monotonic()
        service.signal(signal.SIGTERM)
        assert service.process.wait(timeout=10) == 0
        took = time.monotonic() - started
        assert "not waited for" not in service.log()
    print(f"\nSIGTERM while idling on the mailbox: stopped in {took:.1f} s")


def test_check_smtp_also_logs_in_to_the_mailbox(tmp_path, smtp_server, dovecot):
    config = receipts_config(tmp_path, smtp_server, dovecot)
    done = run_cli("-c", str(config), "check", "--smtp")
    assert done.returncode == 0, done.stderr
    assert f"receipts from 127.0.0.1:{dovecot.tls_port} (tls)" in done.stdout
    assert "IMAP OK: 127.0.0.1:" in done.stdout and "folders INBOX (IDLE)" in done.stdout
    wrong = receipts_config(tmp_path, smtp_server, dovecot, receipts={"imap": {"password": "no"}})
    done = run_cli("-c", str(wrong), "check", "--smtp")
    assert done.returncode == 1
    assert "refused the login of fatture@pec.studiorossi.it" in done.stderr
    assert "check receipts.imap.username and password" in done.stderr

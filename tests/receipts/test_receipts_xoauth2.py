"""End to end with XOAUTH2 for both protocols: the real `login` and `run` as processes, the local
sign-in server issuing short-lived tokens, an SMTP server and the private Dovecot that take only
tokens. One sign-in sends and reads the receipts; a token the mailbox refuses is told to the
admin once, like a refused password, and sending goes on unpaused."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoice_mailer.config import credentials
from tests.support.cli import run_cli
from tests.support.dovecot import USERNAME, DovecotServer, needs_dovecot, start_dovecot
from tests.support.helpers import wait_until
from tests.support.oauthserver import OAuthTestServer, login_cli
from tests.support.receiptmail import pec_receipt
from tests.support.receipts_harness import (
    PEC_CUSTOMER,
    notices_text,
    proof_of,
    receipts_config,
    send_invoice,
)
from tests.support.service_harness import ServiceProcess

pytestmark = needs_dovecot

LIFETIME = 3.0  # seconds an access token lives: short, so that the mailbox sees renewals
UNREADABLE = "the mailbox cannot be read for receipts"


@pytest.fixture
def oauth_dovecot(tmp_path) -> Iterator[tuple[OAuthTestServer, DovecotServer]]:
    with OAuthTestServer(lifetime=LIFETIME, user=USERNAME) as oauth:
        server = start_dovecot(tmp_path / "imap", oauth_introspection_url=oauth.introspection_url)
        try:
            yield oauth, server
        finally:
            server.stop()


def xoauth2_config(tmp_path: Path, start_smtp_server, certs, oauth, dovecot, **imap) -> Path:
    """Sending and reading with the one sign-in: no password anywhere in the config."""
    server = start_smtp_server("starttls", oauth=oauth.user_of)
    key_file = tmp_path / "secret.key"
    credentials.generate_key(key_file)
    smtp = {
        "security": "starttls",
        "ca_file": str(certs.ca),
        "key_file": str(key_file),
        "auth": "xoauth2",
        "oauth": {"provider": "custom", "client_id": oauth.client_id,
                  "device_url": oauth.device_url, "token_url": oauth.token_url,
                  "scope": "mail offline_access"},
    }  # fmt: skip
    # receipts_config gives the mailbox a password: null takes it away (the sender's login).
    receipts = {"imap": {"password": None, **imap}}
    return receipts_config(tmp_path, server, dovecot, smtp=smtp, receipts=receipts)


def test_one_sign_in_sends_and_reads_the_receipts(
    tmp_path, start_smtp_server, smtp_certs, oauth_dovecot
):
    oauth, dovecot = oauth_dovecot
    config = xoauth2_config(tmp_path, start_smtp_server, smtp_certs, oauth, dovecot)
    assert (
        "password: null" in config.read_text()
        and "password: " not in config.read_text().replace("password: null", "")
    )
    outputs = [login_cli(config, oauth)]
    checked = run_cli("-c", str(config), "check", "--smtp")
    outputs += [checked.stdout, checked.stderr]
    assert checked.returncode == 0, checked.stderr
    assert (
        f"IMAP OK: 127.0.0.1:{dovecot.tls_port}, logged in as {USERNAME} with XOAUTH2 (access "
        "token from the stored sign-in), folders INBOX (IDLE)"
    ) in checked.stdout
    with ServiceProcess(config) as service:
        first = send_invoice(tmp_path, 401)["message_id"]
        dovecot.deliver(pec_receipt("accettazione", first, addressees={PEC_CUSTOMER: True}))
        wait_until(lambda: proof_of(tmp_path, first, PEC_CUSTOMER) == "accepted", 15)
        # Past a token's lifetime the mailbox logs in again with a renewed token.
        seen = len(oauth.introspected)
        wait_until(lambda: all(oauth.expired(t) for t in oauth.introspected[:seen]), 10)
        service.signal(signal.SIGHUP)  # a reload: the receipts thread logs in anew
        wait_until(lambda: "configuration reloaded" in service.log(), 10)
        wait_until(lambda: len(set(oauth.introspected)) >= 2, 15)  # with a renewed token
        second = send_invoice(tmp_path, 402)["message_id"]
        dovecot.deliver(pec_receipt("accettazione", second, addressees={PEC_CUSTOMER: True}))
        wait_until(lambda: proof_of(tmp_path, second, PEC_CUSTOMER) == "accepted", 15)
        log = service.log()
    assert service.process is not None and service.process.returncode == 0
    assert "refresh_token" in oauth.grants
    assert UNREADABLE not in log and UNREADABLE not in "".join(notices_text(tmp_path))
    leaked = [secret for secret in oauth.issued if secret in log + "".join(outputs)]
    assert not leaked


def test_a_token_the_mailbox_refuses_is_told_once_and_sending_goes_on(
    tmp_path, start_smtp_server, smtp_certs, oauth_dovecot
):
    """The sign-in is the sender's; the mailbox is another user's (a wrong
    receipts.imap.username): Dovecot refuses the token that the SMTP server takes."""
    oauth, dovecot = oauth_dovecot
    other = "altro@pec.studiorossi.it"
    config = xoauth2_config(tmp_path, start_smtp_server, smtp_certs, oauth, dovecot, username=other)
    login_cli(config, oauth)
    refused = f"refused the XOAUTH2 login of {other}"
    with ServiceProcess(config) as service:
        # The first refusal is retried at once; the second is told (Dovecot slows down
        # repeated failures from one address, hence the long deadline).
        wait_until(lambda: [t for t in notices_text(tmp_path) if UNREADABLE in t], 30)
        for number in (501, 502):
            send_invoice(tmp_path, number)  # sent while the mailbox stays refused
        log = service.log()
        assert log.count(refused) >= 2
        paused = service.query("SELECT * FROM pauses")
    told = [text for text in notices_text(tmp_path) if UNREADABLE in text]
    assert len(told) == 1 and refused in told[0]
    assert "Sending goes on" in told[0]
    assert paused == []
    assert "sending is paused" not in log
    assert not [secret for secret in oauth.issued if secret in log + told[0]]

"""End to end with XOAUTH2: the real `invoice-mailer login` and `run` as processes, the local
sign-in server issuing 2-second access tokens, and an SMTP server that takes only XOAUTH2 and
refuses expired tokens.

`login` once, then the service sends for longer than three token lifetimes without a person;
a revoked sign-in pauses the queue and alerts "run invoice-mailer login"; a new `login`
resumes it with nothing lost; and no token appears in a log, an output, argv or the ledger.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from invoice_mailer.config import credentials
from invoice_mailer.demo.samples import make_pdf
from tests.support.cli import run_cli
from tests.support.helpers import drop, wait_until
from tests.support.oauthserver import OAuthTestServer, run_login
from tests.support.service_harness import ServiceProcess, service_config, write_address_book
from tests.support.smtpserver import USER

LIFETIME = 2.0  # seconds an access token lives: short, so a test sees several
CUSTOMERS = [("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "", "IT01234567890", "")]
ADMIN = "admin@example.it"


@pytest.fixture
def oauth() -> OAuthTestServer:
    with OAuthTestServer(lifetime=LIFETIME, user=USER) as server:
        yield server


def xoauth2_config(tmp_path: Path, smtp_server, certs, oauth: OAuthTestServer) -> Path:
    key_file = tmp_path / "secret.key"
    credentials.generate_key(key_file)
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    return service_config(
        tmp_path,
        smtp_server,
        smtp={
            "host": "localhost",
            "security": "starttls",
            "username": USER,
            "ca_file": str(certs.ca),
            "key_file": str(key_file),
            "auth": "xoauth2",
            "oauth": {
                "provider": "custom",
                "client_id": oauth.client_id,
                "device_url": oauth.device_url,
                "token_url": oauth.token_url,
                "scope": "mail offline_access",
            },
        },
        customers={"address_book": str(book), "prefer": "email"},
        alerts={"to": ADMIN, "interval": "0s"},
        # A pause is checked again only after a minute: resuming sooner is the login's doing.
        retry={"backoff_min": "60s", "backoff_max": "120s"},
    )


def login(config: Path, oauth: OAuthTestServer) -> subprocess.CompletedProcess:
    """`invoice-mailer login` as the admin runs it; the test signs in at the 'browser'."""
    done = run_login(config, oauth)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def customer_messages(server) -> list[str]:
    """The file names the customer received, one per message, in order."""
    return [
        attachment.get_filename()
        for received in server.messages
        if received.rcpt_tos == ("mario@rossi.example",)
        for attachment in received.message.iter_attachments()
    ]


def test_login_once_send_for_three_lifetimes_revoke_pause_login_resume(
    tmp_path, start_smtp_server, smtp_certs, oauth
):
    server = start_smtp_server("starttls", oauth=oauth.user_of)
    config = xoauth2_config(tmp_path, server, smtp_certs, oauth)
    outputs: list[str] = []

    signed = login(config, oauth)
    outputs += [signed.stdout, signed.stderr]
    assert "signed in: the sign-in is stored encrypted in" in signed.stdout
    token_file = tmp_path / "state" / "oauth.token"
    assert token_file.stat().st_mode & 0o777 == 0o600

    checked = run_cli("-c", str(config), "check", "--smtp")
    outputs += [checked.stdout, checked.stderr]
    assert checked.returncode == 0, checked.stderr
    assert f"logged in as {USER} with XOAUTH2 (access token from the stored sign-in, valid" in (
        checked.stdout
    )

    export = tmp_path / "export"
    with ServiceProcess(config) as service:
        cmdline = Path(f"/proc/{service.process.pid}/cmdline").read_bytes()
        # Longer than three access-token lifetimes, nobody at the keyboard: each document
        # waits until the token the last one went with has expired.
        started = time.monotonic()
        for number in range(1, 5):
            drop(
                export,
                f"Fattura_{number}_2026_C042.pdf",
                make_pdf(size=2_000, text=f"Fattura {number}"),
            )
            server.wait_for_messages(number, timeout=15)
            used = server.xoauth2_logins[-1][1]
            wait_until(lambda used=used: oauth.expired(used), timeout=10)
        assert time.monotonic() - started > 3 * LIFETIME
        tokens = [token for _user, token, accepted in server.xoauth2_logins if accepted]
        assert len(set(tokens)) >= 4  # a fresh token each time, none refused
        assert all(accepted for *_login, accepted in server.xoauth2_logins)
        assert oauth.grants.count("refresh_token") >= 3

        # An administrator revokes the app's sign-in: the next refresh is refused.
        oauth.revoke()
        drop(export, "Fattura_5_2026_C042.pdf", make_pdf(size=2_000, text="Fattura 5"))
        wait_until(lambda: "invalid_grant" in oauth.refusals, timeout=15)
        wait_until(lambda: "sending is paused" in service.log(), timeout=15)
        assert "run `invoice-mailer login`" in service.log()
        status = run_cli("-c", str(config), "status")
        outputs += [status.stdout, status.stderr]
        said = " ".join(status.stdout.split())  # status wraps its lines
        assert "SENDING IS PAUSED" in said and "invalid_grant" in said
        assert "run `invoice-mailer login`" in said
        assert customer_messages(server) == [f"Fattura_{n}_2026_C042.pdf" for n in range(1, 5)]

        # A new login: the queue resumes at once (the pause would wait a minute by itself).
        again = login(config, oauth)
        outputs += [again.stdout, again.stderr]
        assert "the paused queue tries again now" in again.stdout
        wait_until(lambda: len(customer_messages(server)) == 5, timeout=15)
        alert = wait_until(
            lambda: [m for m in server.messages if m.rcpt_tos == (ADMIN,)], timeout=15
        )[0]
        assert "run `invoice-mailer login`" in alert.message.get_content()
        assert "sending works again" in service.log()
    assert service.process.returncode == 0

    # Nothing lost, nothing twice.
    assert customer_messages(server) == [f"Fattura_{n}_2026_C042.pdf" for n in range(1, 6)]
    rows = service.query("SELECT state FROM deliveries WHERE purpose = 'customer'")
    assert [row["state"] for row in rows] == ["sent"] * 5

    # No token anywhere but the encrypted file (and the wire).
    secrets = oauth.issued
    assert len(secrets) >= 12
    places = {"service log": service.log(), "argv": cmdline.decode(), "outputs": "".join(outputs)}
    places["alert"] = alert.data.decode()
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file() and path.name != "oauth.token":
            places[str(path)] = path.read_bytes().decode("latin-1")
    places["config"] = config.read_text()
    for where, text in places.items():
        leaked = [secret for secret in secrets if secret in text]
        assert not leaked, f"a token in {where}"

"""What each way of logging in costs a new connection (issue 18), to the mail server and to the
receipts' mailbox: with a password from the config, a password printed by
smtp.password_command (a Python script: a real command's start-up), XOAUTH2 with a stored
token still fresh, and XOAUTH2 that must first refresh it at the local sign-in server.

SMTP: connect, STARTTLS, EHLO, AUTH, QUIT against a local aiosmtpd server. IMAP: connect over
implicit TLS, CAPABILITY, the login, LOGOUT against the tests' private Dovecot (which asks the
local sign-in server about each token, RFC 7662); skipped without Dovecot.

    .venv/bin/python bench/logins.py            # from the checkout (uses tests/support)
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from invoice_mailer.config import credentials
from invoice_mailer.config.credentials import Password
from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.config.secretcommand import run_secret_command
from invoice_mailer.delivery.smtp.logins import PasswordLogin, XOAuth2Login
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.demo.tlscerts import make_test_certs
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.tokens import AccessTokens
from invoice_mailer.receipts.imapconnect import connect
from invoice_mailer.receipts.imaplogins import CommandPassword, XOAuth2MailboxLogin
from tests.support.dovecot import DOVECOT, start_dovecot
from tests.support.oauthserver import OAuthTestServer, endpoints_of, sign_in
from tests.support.smtpserver import PASSWORD, USER, SmtpTestServer

# aiosmtpd warns about its own login_data default even when only authenticator is used
warnings.filterwarnings("ignore", message=".*login_data.*")
ROUNDS = 30
Rows = list[tuple[str, float]]


def timed(once: Callable[[], None], before: Callable[[], None] = lambda: None) -> float:
    """The median of ROUNDS new connections, in ms; `before` runs untimed ahead of each."""
    times = []
    for _ in range(ROUNDS):
        before()
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


class Setting:
    """What both measurements share: a key, a password script, a stored sign-in."""

    def __init__(self, root: Path, password: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.key_file = root / "secret.key"
        credentials.generate_key(self.key_file)
        self.script = root / "pw"
        self.script.write_text(f"#!{sys.executable}\nprint({password!r})\n")
        self.script.chmod(0o700)

    def tokens(self, oauth: OAuthTestServer, name: str) -> AccessTokens:
        endpoints = endpoints_of(oauth)
        state = self.root / name
        state.mkdir()
        tokenfile.save(state, credentials.read_key(self.key_file), sign_in(oauth, endpoints))
        return AccessTokens(endpoints, state, self.key_file)


def spend(tokens: AccessTokens) -> Callable[[], None]:
    """The token was refused: the next login refreshes first."""
    return lambda: tokens.forget(tokens.token().token)


def smtp_rows(setting: Setting, oauth: OAuthTestServer) -> Rows:
    certs = make_test_certs(setting.root / "certs")

    def check(config: SmtpConfig, login) -> Callable[[], None]:
        return SmtpTransport(config, login, "bench.test").check  # connect … QUIT

    rows: Rows = []
    with SmtpTestServer("starttls", cert=certs.server, users={USER: PASSWORD}) as server:
        config = SmtpConfig("localhost", "starttls", server.port, USER, ca_file=certs.ca)
        fixed = Password(PASSWORD)
        rows.append(("password (config)", timed(check(config, PasswordLogin(lambda: fixed, "")))))
        command = PasswordLogin(lambda: run_secret_command([str(setting.script)], 10), "")
        rows.append(("password_command", timed(check(config, command))))
    with SmtpTestServer("starttls", cert=certs.server, oauth=oauth.user_of) as server:
        config = SmtpConfig("localhost", "starttls", server.port, USER, ca_file=certs.ca)
        tokens = setting.tokens(oauth, "smtp-state")
        rows.append(("XOAUTH2, token fresh", timed(check(config, XOAuth2Login(tokens)))))
        login = XOAuth2Login(tokens)
        rows.append(("XOAUTH2, refresh first", timed(check(config, login), spend(tokens))))
    return rows


def imap_rows(setting: Setting, oauth: OAuthTestServer) -> Rows:
    server = start_dovecot(setting.root / "imap", oauth_introspection_url=oauth.introspection_url)
    try:
        account = server.account()

        def login(account) -> Callable[[], None]:
            return lambda: connect(account).logout()  # connect, TLS, CAPABILITY, login

        rows: Rows = [("password (config)", timed(login(account)))]
        command = CommandPassword([str(setting.script)], 10)
        rows.append(("password_command", timed(login(replace(account, login=command)))))
        tokens = setting.tokens(oauth, "imap-state")
        xoauth2 = replace(account, password="", login=XOAuth2MailboxLogin(tokens))
        rows.append(("XOAUTH2, token fresh", timed(login(xoauth2))))
        rows.append(("XOAUTH2, refresh first", timed(login(xoauth2), spend(tokens))))
        return rows
    finally:
        server.stop()


def show(title: str, rows: Rows) -> None:
    print(title)
    base = rows[0][1]
    for name, ms in rows:
        print(f"  {name:<24} {ms:7.1f} ms   ×{ms / base:.2f}")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="invoice-mailer-bench-logins-"))
    try:
        with OAuthTestServer(lifetime=3600, user=USER) as oauth:
            smtp = smtp_rows(Setting(root / "smtp", PASSWORD), oauth)
        show(f"median of {ROUNDS} SMTP connections (connect, STARTTLS, EHLO, AUTH, QUIT)", smtp)
        if DOVECOT is None:
            print("IMAP: skipped, dovecot is not installed (apt-get install dovecot-imapd)")
            return
        from tests.support.dovecot import PASSWORD as IMAP_PASSWORD
        from tests.support.dovecot import USERNAME

        with OAuthTestServer(lifetime=3600, user=USERNAME) as oauth:
            imap = imap_rows(Setting(root / "imap-setting", IMAP_PASSWORD), oauth)
        show(f"median of {ROUNDS} IMAP connections (connect, TLS, CAPABILITY, login, LOGOUT)", imap)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

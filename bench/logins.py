"""What each way of logging in costs a new SMTP connection (issue 18): connect, STARTTLS and
log in against a local aiosmtpd server, with a password from the config, a password printed by
smtp.password_command (a Python script: a real command's start-up), XOAUTH2 with a stored
token still fresh, and XOAUTH2 that must first refresh it at the local sign-in server.

    .venv/bin/python bench/logins.py            # from the checkout (uses tests/support)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from invoice_mailer.config import credentials
from invoice_mailer.config.credentials import Password
from invoice_mailer.config.model import SmtpConfig
from invoice_mailer.config.secretcommand import run_secret_command
from invoice_mailer.delivery.smtp.logins import Login, PasswordLogin, XOAuth2Login
from invoice_mailer.delivery.smtp.session import SmtpTransport
from invoice_mailer.demo.tlscerts import make_test_certs
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.tokens import AccessTokens
from tests.support.oauthserver import OAuthTestServer, endpoints_of, sign_in
from tests.support.smtpserver import PASSWORD, USER, SmtpTestServer

ROUNDS = 30


def timed(transport: SmtpTransport, before: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(ROUNDS):
        before()
        started = time.perf_counter()
        transport.check()  # connect, STARTTLS, EHLO, AUTH, QUIT
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="invoice-mailer-bench-logins-"))
    certs = make_test_certs(root / "certs")
    key_file = root / "secret.key"
    credentials.generate_key(key_file)
    script = root / "pw"
    script.write_text(f"#!{sys.executable}\nprint({PASSWORD!r})\n")
    script.chmod(0o700)
    rows: list[tuple[str, float]] = []
    with OAuthTestServer(lifetime=3600, user=USER) as oauth:
        with SmtpTestServer("starttls", cert=certs.server, users={USER: PASSWORD}) as server:
            config = SmtpConfig("localhost", "starttls", server.port, USER, ca_file=certs.ca)
            fixed = Password(PASSWORD)
            rows.append(
                ("password (config)", timed(make(config, PasswordLogin(lambda: fixed, ""))))
            )
            command = PasswordLogin(lambda: run_secret_command([str(script)], 10), "")
            rows.append(("password_command", timed(make(config, command))))
        with SmtpTestServer("starttls", cert=certs.server, oauth=oauth.user_of) as server:
            config = SmtpConfig("localhost", "starttls", server.port, USER, ca_file=certs.ca)
            endpoints = endpoints_of(oauth)
            state = root / "state"
            state.mkdir()
            tokenfile.save(state, credentials.read_key(key_file), sign_in(oauth, endpoints))
            tokens = AccessTokens(endpoints, state, key_file)
            rows.append(("XOAUTH2, token fresh", timed(make(config, XOAuth2Login(tokens)))))
            login = XOAuth2Login(tokens)

            def spend() -> None:  # the token was refused: the next login refreshes first
                tokens.forget(tokens.token().token)

            rows.append(("XOAUTH2, refresh first", timed(make(config, login), spend)))
    base = rows[0][1]
    print(f"median of {ROUNDS} connections (connect, STARTTLS, EHLO, AUTH, QUIT), 127.0.0.1")
    for name, ms in rows:
        print(f"  {name:<24} {ms:7.1f} ms   ×{ms / base:.2f}")


def make(config: SmtpConfig, login: Login) -> SmtpTransport:
    return SmtpTransport(config, login, "bench.test")


if __name__ == "__main__":
    main()

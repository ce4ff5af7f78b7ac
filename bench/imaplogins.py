"""What each way of logging in costs a new connection to the receipts' mailbox: connect over
implicit TLS, log in and LOGOUT against the tests' private Dovecot (tests/support/dovecot.py),
with the mailbox's own password, the password printed by smtp.password_command (a Python
script: a real command's start-up), XOAUTH2 with the stored token still fresh (Dovecot asks
the local sign-in server about each token, RFC 7662), and XOAUTH2 that must refresh it first.

    .venv/bin/python bench/imaplogins.py        # from the checkout (uses tests/support)
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from invoice_mailer.config import credentials
from invoice_mailer.oauth import tokenfile
from invoice_mailer.oauth.tokens import AccessTokens
from invoice_mailer.receipts.imapconnect import ImapAccount, connect
from invoice_mailer.receipts.imaplogins import CommandPassword, XOAuth2MailboxLogin
from tests.support.dovecot import DOVECOT, PASSWORD, USERNAME, start_dovecot
from tests.support.oauthserver import OAuthTestServer, endpoints_of, sign_in

ROUNDS = 30


def timed(account: ImapAccount, before: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(ROUNDS):
        before()
        started = time.perf_counter()
        imap = connect(account)  # connect, TLS, CAPABILITY, the login
        imap.logout()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    if DOVECOT is None:
        sys.exit("dovecot is not installed (apt-get install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="invoice-mailer-bench-imap-"))
    key_file = root / "secret.key"
    credentials.generate_key(key_file)
    script = root / "pw"
    script.write_text(f"#!{sys.executable}\nprint({PASSWORD!r})\n")
    script.chmod(0o700)
    rows: list[tuple[str, float]] = []
    with OAuthTestServer(lifetime=3600, user=USERNAME) as oauth:
        server = start_dovecot(root / "imap", oauth_introspection_url=oauth.introspection_url)
        try:
            account = server.account()
            rows.append(("password (config)", timed(account)))
            command = CommandPassword([str(script)], 10)
            rows.append(("password_command", timed(replace(account, login=command))))
            endpoints = endpoints_of(oauth)
            state = root / "state"
            state.mkdir()
            tokenfile.save(state, credentials.read_key(key_file), sign_in(oauth, endpoints))
            tokens = AccessTokens(endpoints, state, key_file)
            xoauth2 = replace(account, password="", login=XOAuth2MailboxLogin(tokens))
            rows.append(("XOAUTH2, token fresh", timed(xoauth2)))

            def spend() -> None:  # the token was refused: the next login refreshes first
                tokens.forget(tokens.token().token)

            rows.append(("XOAUTH2, refresh first", timed(xoauth2, spend)))
        finally:
            server.stop()
    shutil.rmtree(root, ignore_errors=True)
    base = rows[0][1]
    print(f"median of {ROUNDS} IMAP connections (connect, TLS, CAPABILITY, login, LOGOUT)")
    for name, ms in rows:
        print(f"  {name:<24} {ms:7.1f} ms   ×{ms / base:.2f}")


if __name__ == "__main__":
    main()

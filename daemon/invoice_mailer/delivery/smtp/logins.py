"""How the SMTP session logs in (smtp.auth): no login, a password (from the config or from
smtp.password_command), or XOAUTH2 with an access token (from the stored sign-in or from
smtp.password_command). Each secret is fetched when a connection logs in, never earlier, and
failures become SmtpFailures the delivery stage knows how to treat.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable
from datetime import datetime

from invoice_mailer.config import credentials
from invoice_mailer.config.credentials import Password
from invoice_mailer.config.model import Config
from invoice_mailer.config.secretcommand import run_secret_command
from invoice_mailer.delivery.smtp.outcome import AUTH_REFUSED, SmtpFailure, enhanced_status
from invoice_mailer.errors import SecretError
from invoice_mailer.oauth import xoauth2
from invoice_mailer.oauth.tokens import AccessToken, AccessTokens, LoginNeeded, access_tokens_for
from invoice_mailer.oauth.wire import OAuthError, OAuthUnreachable

# The phase of a failure to get an access token: the sign-in server, not the mail server.
TOKEN_PHASE = "token"  # noqa: S105 (a phase name, not a secret)


class Login:
    """No login at all (a local relay): the base of the others."""

    mechanism = "none"

    def perform(self, smtp: smtplib.SMTP, username: str) -> None:
        """Log `smtp` in as `username` (EHLO done, TLS up); SmtpFailure or smtplib's errors."""

    @property
    def valid_until(self) -> float | None:
        """When the credentials of the last login expire (epoch), if they do."""
        return None

    def describe(self, username: str) -> str:
        return "no login (no password)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PasswordLogin(Login):
    """AUTH PLAIN/LOGIN (smtplib picks) with a fixed password or one printed by a command."""

    mechanism = "password"

    def __init__(self, fetch: Callable[[], Password], source: str):
        self._fetch = fetch  # called at each login: a command's answer is never kept
        self.source = source

    def perform(self, smtp: smtplib.SMTP, username: str) -> None:
        smtp.login(username, _secret(self._fetch, "password").reveal())

    def describe(self, username: str) -> str:
        return f"logged in as {username} with {self.source}"


class XOAuth2Login(Login):
    """AUTH XOAUTH2 with an access token; a session ends with its token (transport.py)."""

    mechanism = "xoauth2"

    def __init__(
        self,
        tokens: AccessTokens | None,
        command: Callable[[], Password] | None = None,
    ):
        """`tokens`: the stored sign-in; else `command` prints a token (expiry unknown)."""
        self._tokens = tokens
        self._command = command
        self._last: AccessToken | None = None

    def perform(self, smtp: smtplib.SMTP, username: str) -> None:
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        if "XOAUTH2" not in offered:
            mechanisms = " ".join(offered) or "no AUTH"
            raise SmtpFailure(
                "auth", "auth", None, "",
                f"the server does not offer AUTH XOAUTH2 (it offers {mechanisms}); "
                "check smtp.host, or use auth: password",
            )  # fmt: skip
        token = self._token()
        try:
            smtp.auth("XOAUTH2", xoauth2.responder(username, token.token), initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as err:
            if self._tokens is not None:
                self._tokens.forget(token.token)
            code = err.smtp_code
            raise SmtpFailure(
                "auth", "auth", code, AUTH_REFUSED,
                f"{code} {enhanced_status(err.smtp_error)}{AUTH_REFUSED} (XOAUTH2 as {username}); "
                "the access token was refused: check that smtp.username is the mailbox that "
                "signed in, and that it may use SMTP AUTH; else `invoice-mailer login` again",
            ) from None  # fmt: skip
        self._last = token

    def _token(self) -> AccessToken:
        if self._tokens is None:
            assert self._command is not None  # noqa: S101 (a type narrowing: one of the two)
            return AccessToken(_secret(self._command, "access token").reveal(), None)
        try:
            return self._tokens.token()
        except LoginNeeded as exc:
            raise SmtpFailure("auth", TOKEN_PHASE, None, "", str(exc)) from None
        except OAuthUnreachable as exc:
            raise SmtpFailure(
                "transient", TOKEN_PHASE, None, "",
                f"cannot refresh the access token: {exc}; trying again later",
            ) from None  # fmt: skip
        except (OAuthError, SecretError) as exc:
            raise SmtpFailure("auth", TOKEN_PHASE, None, "", str(exc)) from None

    @property
    def valid_until(self) -> float | None:
        return self._last.expires_at if self._last is not None else None

    def describe(self, username: str) -> str:
        source = "smtp.password_command" if self._tokens is None else "the stored sign-in"
        text = f"logged in as {username} with XOAUTH2 (access token from {source}"
        expires = self.valid_until
        if expires is None:
            return text + ", expiry not known)"
        when = datetime.fromtimestamp(expires).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return text + f", valid until {when}, in {_minutes(expires - time.time())})"


def _secret(fetch: Callable[[], Password], what: str) -> Password:
    try:
        return fetch()
    except SecretError as exc:  # the command failed: a setting to fix, like a wrong password
        raise SmtpFailure("auth", "auth", None, "", f"no {what}: {exc}") from None


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{max(0.0, seconds):.0f} s"
    return f"{seconds / 60:.0f} min"


def make_login(config: Config, stop: threading.Event | None = None) -> Login:
    """The login smtp.auth asks for. Reads the key and decrypts a stored password now (a wrong
    key is a configuration error at start); commands and tokens wait for the first login."""
    smtp = config.smtp
    timeout = smtp.timeout

    def from_command() -> Password:
        return run_secret_command(smtp.password_command, timeout)

    if smtp.auth == "none":
        return Login()
    if smtp.auth == "xoauth2":
        if smtp.password_command:
            return XOAuth2Login(None, from_command)
        return XOAuth2Login(access_tokens_for(config, stop.wait if stop is not None else None))
    if smtp.password_command:
        return PasswordLogin(from_command, "the password from smtp.password_command")
    password = credentials.smtp_password(smtp)
    if password is None:
        return Login()
    return PasswordLogin(lambda: password, "a password")

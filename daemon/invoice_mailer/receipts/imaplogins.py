"""How the receipts stage logs in to the sender's mailbox when it has no password of its own:
as the sender does, with the output of smtp.password_command, or with XOAUTH2 and the same
access tokens (the stored sign-in, or smtp.password_command's). Each secret is fetched as a
connection logs in, never earlier; every failure is a MailboxError, which the receipts thread
retries and tells the admin of once, and which never touches the sending queue.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable, Sequence

from invoice_mailer.config.credentials import Password
from invoice_mailer.config.model import Config
from invoice_mailer.config.secretcommand import run_secret_command
from invoice_mailer.errors import SecretError
from invoice_mailer.oauth import xoauth2
from invoice_mailer.oauth.endpoints import MICROSOFT_IMAP
from invoice_mailer.oauth.tokens import LOGIN_ADVICE, AccessTokens, access_tokens_for
from invoice_mailer.oauth.wire import OAuthError, OAuthUnreachable
from invoice_mailer.receipts.imapconnect import (
    ImapAccount,
    MailboxError,
    MailboxLogin,
    password_login,
)


class CommandPassword:
    """The password smtp.password_command prints, asked for at each login."""

    def __init__(self, command: Sequence[str], timeout: float):
        self._command = tuple(command)
        self._timeout = timeout

    def perform(self, imap: imaplib.IMAP4, account: ImapAccount) -> None:
        password = _fetched(lambda: run_secret_command(self._command, self._timeout), account)
        password_login(imap, account, password.reveal())

    def describe(self) -> str:
        return "the password from smtp.password_command"

    def __repr__(self) -> str:
        return f"CommandPassword({self._command[0]})"


class XOAuth2MailboxLogin:
    """SASL XOAUTH2 with the sender's access token: from the stored sign-in (`tokens`, this
    thread's own: one AccessTokens serves one thread), else printed by `command`."""

    def __init__(self, tokens: AccessTokens | None, command: Callable[[], Password] | None = None):
        self._tokens = tokens
        self._command = command

    def perform(self, imap: imaplib.IMAP4, account: ImapAccount) -> None:
        token = self._token(account)
        try:
            xoauth2.imap_login(imap, account.username, token)
        except xoauth2.ImapLoginRefused as exc:
            if self._tokens is not None:
                self._tokens.forget(token)  # the next login asks for a new one
            raise MailboxError(f"{exc}{self._scope_hint()}") from None

    def _token(self, account: ImapAccount) -> str:
        if self._tokens is None:
            assert self._command is not None  # noqa: S101 (a type narrowing: one of the two)
            return _fetched(self._command, account).reveal()
        try:
            return self._tokens.token().token
        except OAuthUnreachable as exc:
            raise MailboxError(f"cannot refresh the access token for the mailbox: {exc}") from None
        except (OAuthError, SecretError) as exc:  # LoginNeeded among them
            raise MailboxError(f"no access token for the mailbox: {exc}") from None

    def _scope_hint(self) -> str:
        """A sign-in made before receipts were turned on has no IMAP access: say so."""
        tokens = self._tokens
        wanted = (tokens.endpoints.scope or "").lower().split() if tokens is not None else []
        if tokens is None or MICROSOFT_IMAP.lower() not in wanted:
            return ""
        if not tokens.lacks_scope(MICROSOFT_IMAP):
            return ""
        return (
            f" (the stored sign-in was granted without {MICROSOFT_IMAP}, as before receipts "
            f"were turned on: {LOGIN_ADVICE} again)"
        )

    def describe(self) -> str:
        source = "smtp.password_command" if self._tokens is None else "the stored sign-in"
        return f"XOAUTH2 (access token from {source})"

    def __repr__(self) -> str:
        return f"XOAuth2MailboxLogin({self._tokens!r})"


def _fetched(fetch: Callable[[], Password], account: ImapAccount) -> Password:
    try:
        return fetch()
    except SecretError as exc:  # the command failed: like a wrong password, a thing to fix
        raise MailboxError(f"{account.where}: no secret to log in with: {exc}") from None


def sender_login(config: Config, wait: Callable[[float], bool] | None) -> MailboxLogin | None:
    """The login of a mailbox without a password of its own: the sender's (smtp.auth). None:
    the account's password (smtp.password's, or none at all, which `check` refuses).
    Reads the key file now for the stored sign-in, so a missing one is refused at start."""
    smtp = config.smtp
    if smtp.auth == "xoauth2":
        if smtp.password_command:
            command, timeout = smtp.password_command, smtp.timeout
            return XOAuth2MailboxLogin(None, lambda: run_secret_command(command, timeout))
        return XOAuth2MailboxLogin(access_tokens_for(config, wait))
    if smtp.password_command:
        return CommandPassword(smtp.password_command, smtp.timeout)
    return None

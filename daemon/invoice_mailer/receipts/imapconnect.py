"""Opening the IMAP connection that reads the sender's mailbox: TLS always (implicit, or
STARTTLS before anything else), the certificate verified against the given CA file or the
system store, and no login unless the socket really is TLS.

Every line sent is checked against the few read-only commands the receipts stage uses, so a
mistake anywhere in it cannot store a flag, expunge, copy or move: EXAMINE, never SELECT; UID
FETCH of sizes and BODY.PEEK, never a fetch that sets \\Seen; LOGOUT, never CLOSE (which on a
read-write folder expunges).
"""

from __future__ import annotations

import imaplib
import re
import ssl
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from invoice_mailer.errors import InvoiceMailerError
from invoice_mailer.receipts import mail

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

DEFAULT_TIMEOUT = 60.0  # seconds a silent server may take on one read before we give up
_READ_ONLY = {"CAPABILITY", "STARTTLS", "LOGIN", "AUTHENTICATE", "EXAMINE", "UID", "NOOP"}
_READ_ONLY |= {"IDLE", "LOGOUT"}
# A fetch that would set \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT) is refused too.
_SETS_SEEN = re.compile(r"BODY\[|RFC822(?!\.SIZE)", re.IGNORECASE)
_COMMAND_LINE = re.compile(rb"([A-Za-z0-9]+) ([A-Za-z]+)(?: (.*))?\r\n", re.DOTALL)


class MailboxError(InvoiceMailerError):
    """The mailbox cannot be read now: unreachable, untrusted, login refused, no such folder."""


class Security(StrEnum):
    TLS = "tls"  # implicit TLS, port 993
    STARTTLS = "starttls"  # port 143, TLS started before the login


DEFAULT_PORTS = {Security.TLS: 993, Security.STARTTLS: 143}


class MailboxLogin(Protocol):
    """A login other than the account's fixed password (receipts/imaplogins.py): run on a
    connection whose TLS is up, raising MailboxError when it cannot log in."""

    def perform(self, imap: imaplib.IMAP4, account: ImapAccount) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ImapAccount:
    host: str
    username: str
    password: str = field(repr=False)  # used when `login` is None
    security: Security = Security.TLS
    port: int | None = None  # default by security
    ca_file: Path | None = None  # None: the system's trusted CAs
    timeout: float = DEFAULT_TIMEOUT
    max_message_size: int = mail.DEFAULT_MAX_SIZE  # larger messages are listed, not fetched
    # How to log in when not with `password`: a password command, or XOAUTH2.
    login: MailboxLogin | None = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port or DEFAULT_PORTS[self.security]}"

    def describe_login(self) -> str:
        return self.login.describe() if self.login is not None else "a password"


def connect(account: ImapAccount) -> imaplib.IMAP4:
    """A logged-in connection over verified TLS, or MailboxError saying what to do."""
    context = ssl.create_default_context(cafile=account.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    port = account.port or DEFAULT_PORTS[account.security]
    where = account.where
    imap: imaplib.IMAP4 | None = None
    try:
        if account.security is Security.TLS:
            imap = _ReadOnlyIMAP4_SSL(
                account.host, port, ssl_context=context, timeout=account.timeout
            )
        else:
            imap = _ReadOnlyIMAP4(account.host, port, timeout=account.timeout)
            imap.starttls(ssl_context=context)
        _login(imap, account)
        return imap
    except ssl.SSLCertVerificationError as exc:
        _close(imap)
        raise MailboxError(
            f"{where}: the server's certificate is not trusted ({exc.verify_message}); set "
            "receipts.imap.ca_file to the CA that signed it, or fix the host name"
        ) from None
    except imaplib.IMAP4.error as exc:
        _close(imap)
        raise MailboxError(f"{where}: {server_words(exc)}") from None
    except OSError as exc:
        _close(imap)
        raise MailboxError(f"cannot reach {where}: {exc}") from None
    except MailboxError:
        _close(imap)
        raise


def _login(imap: imaplib.IMAP4, account: ImapAccount) -> None:
    # The one check that matters: without it a failed STARTTLS could still lead to LOGIN.
    if not isinstance(imap.sock, ssl.SSLSocket):
        raise MailboxError(f"{account.where}: TLS is not up; refusing to send the password")
    if account.login is not None:
        account.login.perform(imap, account)
    else:
        password_login(imap, account, account.password)


def password_login(imap: imaplib.IMAP4, account: ImapAccount, password: str) -> None:
    """AUTHENTICATE PLAIN where offered (a UTF-8 password), else LOGIN; TLS is up."""
    if "LOGINDISABLED" in imap.capabilities:
        raise MailboxError(f"{account.where}: the server refuses logins (LOGINDISABLED)")
    try:
        if "AUTH=PLAIN" in imap.capabilities:  # takes a UTF-8 password, LOGIN only ASCII
            secret = f"\0{account.username}\0{password}".encode()
            imap.authenticate("PLAIN", lambda _challenge: secret)
        else:
            imap.login(account.username, password)
    except imaplib.IMAP4.error as exc:
        raise MailboxError(
            f"{account.where} refused the login of {account.username}: {server_words(exc)}; "
            "check receipts.imap.username and password"
        ) from None


def _close(imap: imaplib.IMAP4 | None) -> None:
    if imap is not None:
        with suppress(OSError):
            imap.shutdown()


def refuse_changes(data: bytes) -> None:
    """Raise unless a line sent to the server is one of the read-only commands used here."""
    match = _COMMAND_LINE.fullmatch(data)
    if match is None:  # a continuation (AUTHENTICATE's answer, DONE): no command in it
        return
    command = match.group(2).decode().upper()
    arguments = (match.group(3) or b"").decode("ascii", "replace")
    if command == "UID":
        fetch, _space, items = arguments.partition(" ")
        if fetch.upper() != "FETCH" or _SETS_SEEN.search(items.partition(" ")[2]):
            raise MailboxError(f"refused to send UID {fetch.upper()}: the mailbox is read-only")
    elif command not in _READ_ONLY:
        raise MailboxError(f"refused to send {command}: the mailbox is read-only")


class _ReadOnlyIMAP4(imaplib.IMAP4):
    def send(self, data: ReadableBuffer) -> None:
        refuse_changes(bytes(data))
        super().send(data)


class _ReadOnlyIMAP4_SSL(_ReadOnlyIMAP4, imaplib.IMAP4_SSL):
    pass


def server_words(value: object) -> str:
    """What the server or imaplib said, as text (imaplib passes the server's bytes along)."""
    if isinstance(value, BaseException):
        value = value.args[0] if value.args else type(value).__name__
    if isinstance(value, list):
        value = value[-1] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip() or "no reason given"

"""SASL XOAUTH2 (Google's and Microsoft's mechanism): `user=U^Aauth=Bearer T^A^A`, for SMTP
(delivery/smtp/logins.py) and for IMAP (the receipts stage: `imap_login`).
"""

from __future__ import annotations

import imaplib
import ssl

from invoice_mailer.errors import InvoiceMailerError


class ImapLoginRefused(InvoiceMailerError):
    """The IMAP server did not accept the access token (or cannot take one)."""


def initial_response(username: str, token: str) -> str:
    """The client's first (and only) message; the server answers 235 / OK, or an error."""
    if any(c in username for c in "\x01\r\n") or any(c in token for c in "\x01\r\n "):
        raise ValueError("a user name or token with control characters cannot be sent")
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def responder(username: str, token: str):
    """The callback smtplib.SMTP.auth and imaplib.IMAP4.authenticate call for each challenge:
    the credentials once; to a second challenge (the server's error, as JSON) an empty answer,
    after which the server sends its refusal (RFC 7628 §3.2.3, as Google documents it)."""
    sent = False

    def answer(challenge: bytes | None = None) -> str:
        nonlocal sent
        if sent:
            return ""
        sent = True
        return initial_response(username, token)

    return answer


def imap_login(imap: imaplib.IMAP4, username: str, token: str) -> None:
    """Log `imap` in with XOAUTH2: only over TLS, only where the server offers it."""
    where = f"{imap.host}:{imap.port}"
    if not isinstance(imap.sock, ssl.SSLSocket):
        raise ImapLoginRefused(f"{where}: TLS is not up; refusing to send the access token")
    if "AUTH=XOAUTH2" not in imap.capabilities:
        raise ImapLoginRefused(f"{where} does not offer XOAUTH2; it cannot take an access token")
    reply = responder(username, token)
    try:
        imap.authenticate("XOAUTH2", lambda challenge: reply(challenge).encode("ascii"))
    except imaplib.IMAP4.error as exc:
        # imaplib's text holds only the server's tagged NO line: never our token.
        said = exc.args[0] if exc.args else ""
        if isinstance(said, bytes):
            said = said.decode("utf-8", "replace")
        raise ImapLoginRefused(
            f"{where} refused the XOAUTH2 login of {username} ({str(said).strip()}); "
            "the access token is expired or not for this mailbox: run `invoice-mailer login`"
        ) from None

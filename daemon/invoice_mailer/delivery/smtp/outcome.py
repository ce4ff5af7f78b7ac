"""What an SMTP attempt came to: a SendResult, or an SmtpFailure classified by docs/DESIGN.md's
failure table with a sentence an admin understands. Pure: no sockets in here.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field

from invoice_mailer.errors import InvoiceMailerError

KINDS = ("transient", "permanent", "auth", "tls", "ambiguous")
PHASES = ("connect", "tls", "ehlo", "auth", "mail", "rcpt", "data", "end_of_data")
ENVELOPE_PHASES = frozenset({"mail", "rcpt", "data", "end_of_data"})
# A connection cut during the TLS handshake is worth retrying; a refused certificate is not.
CUT_SHORT = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    ConnectionError,
    TimeoutError,
    smtplib.SMTPServerDisconnected,
)
BASIC_AUTH_OFF = "5.7.139 "  # Microsoft 365: SMTP AUTH with a password is disabled
AUTH_REFUSED = "authentication refused (the server's text is not shown: it may quote the password)"
HINTS = {
    "tls": "nothing was sent; check smtp.host, smtp.port and smtp.security, or set "
    "smtp.ca_file for a relay with a private CA",
    "auth": "check smtp.username and the password (invoice-mailer encrypt-password)",
    "ambiguous": "the message may have been delivered",
}


class SmtpFailure(InvoiceMailerError):
    """A classified SMTP failure: the delivery stage retries, fails, pauses or re-sends by kind.

    kind: transient | permanent | auth | tls | ambiguous. phase: connect, tls, ehlo, auth,
    mail, rcpt, data, end_of_data. `refused` lists per-recipient replies when RCPT failed.
    """

    def __init__(
        self,
        kind: str,
        phase: str,
        code: int | None,
        reply: str,
        message: str,
        refused: dict[str, tuple[int, str]] | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.phase = phase
        self.code = code
        self.reply = reply
        self.refused = dict(refused or {})


@dataclass(frozen=True)
class SendResult:
    """The server took the message for `accepted`; `refused` maps the others to (code, text)."""

    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    reply: str = ""

    @property
    def deferred(self) -> dict[str, tuple[int, str]]:
        """The refused recipients worth sending later: 4xx, and 552 "too many recipients"."""
        return {
            rcpt: refusal
            for rcpt, refusal in self.refused.items()
            if classify("rcpt", refusal[0], None) == "transient"
        }


def classify(phase: str, code: int | None, error: BaseException | None) -> str:
    """Map where a failure happened and the server's code to what the service does about it.

    Every smtplib exception is an OSError: the phase and the code decide, not the type.
    """
    if code is None:
        if phase == "end_of_data":
            return "ambiguous"  # lost or timed out after the final ".": RFC 1047
        if isinstance(error, ssl.SSLCertVerificationError):
            return "tls"  # not trusted, or issued for another host name
        if isinstance(error, CUT_SHORT):
            return "transient"  # refused, reset, timed out, handshake cut
        if phase == "auth":
            return "auth"  # no AUTH offered, no mechanism in common
        if phase == "tls" or isinstance(error, ssl.SSLError):
            return "tls"  # STARTTLS not offered, TLS on a plain port, no common protocol
        return "transient"
    if 400 <= code < 500:
        return "transient"  # 421, greylisting, 452 too many recipients, 454 TLS unavailable
    if phase == "auth" or code in (530, 534, 535):
        return "auth"
    if phase == "tls":
        return "tls"
    if phase == "rcpt" and code == 552:
        return "transient"  # "too many recipients" (RFC 5321 §4.5.3.1.10): send the rest later
    if phase in ENVELOPE_PHASES:
        return "permanent"
    # 5xx in the greeting or EHLO says nothing about the document: retry, alert after max_age.
    return "transient"


def hint(failure: SmtpFailure, host: str, port: int) -> str | None:
    """What to do next, for `check --smtp` and `send-test` alike: why no server answered
    (DNS, nothing listening, a firewall), or what the server refused."""
    cause = failure.__cause__
    if failure.phase == "connect" and failure.code is None:
        if isinstance(cause, socket.gaierror):
            return (
                f"the name {host} cannot be found (DNS): check smtp.host for a typing error, "
                "and that this machine can resolve names (/etc/resolv.conf)"
            )
        if isinstance(cause, ConnectionRefusedError):
            return (
                f"nothing answers on {host} port {port}: check smtp.port and smtp.security "
                "(465 with tls, 587 with starttls, 25 with none)"
            )
        if isinstance(cause, TimeoutError):
            return (
                f"no answer from {host} port {port}: a firewall may block that port, or the "
                "host is wrong; check smtp.host and smtp.port"
            )
    if failure.kind == "transient":
        return (
            "the server is unreachable or busy: check smtp.host and smtp.port (and the "
            "firewall), then try again"
        )
    if failure.kind == "permanent":
        return (
            "the server refused this message: check the address and sender.address (PEC boxes "
            "often refuse ordinary addresses)"
        )
    return None


def failure_of(err: OSError, phase: str, doing: str) -> SmtpFailure:
    """What smtplib (or the socket) raised in `phase`, classified. In the AUTH phase the
    server's words are replaced: some servers echo the client's AUTH line (the password in
    base64), and they would reach the log, the ledger and the alert."""
    code = getattr(err, "smtp_code", None)
    code = code if isinstance(code, int) and code >= 100 else None
    text = reply_text(getattr(err, "smtp_error", "")) if code else ""
    if phase == "connect" and isinstance(err, ssl.SSLError):
        phase = "tls"  # the implicit-TLS handshake happens inside connect()
    kind = classify(phase, code, err)
    if phase == "auth":
        enhanced = enhanced_status(getattr(err, "smtp_error", b""))
        text = enhanced + AUTH_REFUSED if code else ""
        if enhanced == BASIC_AUTH_OFF:
            text += "; Microsoft 365 has password logins off here: use auth: xoauth2"
    return SmtpFailure(kind, phase, code, text, sentence(kind, code, text, doing, err))


# RFC 3463's enhanced status code at the start of a reply: "5.7.139 ". Safe to show even in
# the AUTH phase (digits only), and it tells e.g. Microsoft 365's "basic authentication is off".
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})(?:\s|$)")


def enhanced_status(reply: bytes | str) -> str:
    """'5.7.139 ' when the reply starts with an enhanced status code, else ''."""
    match = _ENHANCED.match(reply_text(reply))
    return f"{match.group(1)} " if match else ""


def reply_text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())  # multi-line replies on one line, no CR/LF in log lines


def sentence(
    kind: str, code: int | None, text: str, doing: str, err: BaseException | None = None
) -> str:
    """What the admin reads: '550 5.1.1 user unknown (RCPT TO mario@x.it)'."""
    if code:
        what = f"{code} {text} ({doing})"
    elif kind == "ambiguous":
        what = f"no readable reply after the final '.' ({doing}: {err})"
    elif isinstance(err, ssl.SSLCertVerificationError):
        reason = (err.verify_message or str(err)).rstrip(".")
        what = f"{doing}: TLS certificate not accepted: {reason}"
    else:
        what = f"{doing}: {err or 'failed'}"
    hint = HINTS.get(kind)
    return f"{what}; {hint}" if hint else what

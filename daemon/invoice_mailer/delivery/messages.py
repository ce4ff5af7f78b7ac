"""Building a message once, into a file: the bytes sent and the bytes archived are the same.

Headers and the text part come from the stdlib email package (policy.SMTP encodes and folds
them correctly); attachments are streamed from disk through C-speed base64 one chunk at a time,
so a 25 MB document never sits whole in memory and a month-end burst stays cheap. The words
that go into it are made safe in messagetext, its addresses checked in addresses.
"""

from __future__ import annotations

import binascii
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import BinaryIO

from invoice_mailer.delivery.addresses import check_address, needs_smtputf8
from invoice_mailer.delivery.messagetext import (
    compose_text,
    header_text,
    safe_filename,
    subject_text,
)
from invoice_mailer.errors import InvoiceMailerError

log = logging.getLogger(__name__)

MIME_TYPES = {"pdf": "application/pdf", "xml": "application/xml", "p7m": "application/pkcs7-mime"}
MAILER = "invoice-mailer"
CHUNK = 57 * 1024  # whole 76-character lines: chunks concatenate to the whole file's encoding
# Upper bounds for estimated_size: boundary and part headers (a 200-character non-ASCII name,
# percent-encoded per RFC 2231 and folded, stays under 3 KB); top-level headers; a text
# character (4 UTF-8 bytes quoted-printable are 12 characters, plus soft line breaks).
PART_OVERHEAD = 4096
HEADERS_OVERHEAD = 16384
TEXT_BYTES_PER_CHAR = 13

# cte_type="7bit": the text part is never sent as raw 8-bit, which some relays still mangle.


class _CachedHeaderRegistry(HeaderRegistry):
    """The stdlib builds a new header class with type() on every lookup; a month-end burst
    builds thousands of messages, so each class is made once (same classes, same bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if key not in self._classes:
            self._classes[key] = super().__getitem__(name)
        return self._classes[key]


POLICY = policy.SMTP.clone(cte_type="7bit", header_factory=_CachedHeaderRegistry())
UTF8_POLICY = POLICY.clone(utf8=True)  # headers with a UTF-8 address, sent with SMTPUTF8
CRLF = b"\r\n"

_BASE64_LINES = re.compile(rb".{1,76}")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")


@dataclass(frozen=True)
class Attachment:
    """A document to attach: where its bytes are, and the name the recipient sees."""

    path: Path
    filename: str
    kind: str  # pdf | xml | p7m

    def __post_init__(self) -> None:
        if self.kind not in MIME_TYPES:
            valid = ", ".join(MIME_TYPES)
            raise InvoiceMailerError(f"unknown attachment kind {self.kind!r} (valid: {valid})")


@dataclass(frozen=True)
class Envelope:
    """Who sends to whom, and what the text says; addresses are checked when it is written."""

    sender: str
    sender_name: str
    to: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    date: datetime  # aware
    cc: tuple[str, ...] = field(default=(), kw_only=True)
    bcc: tuple[str, ...] = field(default=(), kw_only=True)  # RCPT only, never a header

    @property
    def recipients(self) -> tuple[str, ...]:
        """The SMTP RCPT list: To, Cc and Bcc, each address once (first spelling kept)."""
        unique: dict[str, str] = {}
        for address in (*self.to, *self.cc, *self.bcc):
            unique.setdefault(address.lower(), address)
        return tuple(unique.values())


def encoded_length(size: int) -> int:
    """Bytes of `size` raw bytes in base64 with a CRLF after every 76 characters."""
    chars = 4 * ((size + 2) // 3)
    return chars + 2 * ((chars + 75) // 76)


def estimated_size(sizes: Iterable[int], *, text_chars: int = 4096) -> int:
    """A cheap upper bound of a message's size with attachments of these raw sizes, for
    planning bundles against smtp.max_message_size (text_chars: the longest expected text)."""
    overhead = HEADERS_OVERHEAD + TEXT_BYTES_PER_CHAR * text_chars
    return overhead + sum(encoded_length(size) + PART_OVERHEAD for size in sizes)


def message_size(envelope: Envelope, attachments: Sequence[Attachment], signature: str) -> int:
    """The exact size write_message will write, without reading the attachments."""
    total = 0
    for piece in _plan(envelope, attachments, signature):
        if isinstance(piece, Attachment):
            try:
                total += encoded_length(Path(piece.path).stat().st_size)
            except OSError as exc:
                raise _unreadable(piece, exc) from exc
        else:
            total += len(piece)
    return total


def write_message(
    envelope: Envelope, attachments: Sequence[Attachment], signature: str, out: BinaryIO
) -> int:
    """Write the whole message (CRLF, ready for DATA) to a buffered `out`; return its size.

    Headers are all checked before the first byte; an attachment that cannot be read raises
    midway (discard the partial file). Errors writing `out` stay OSError.
    """
    written = 0
    for piece in _plan(envelope, attachments, signature):
        if isinstance(piece, Attachment):
            written += _stream_base64(piece, out)
        else:
            out.write(piece)
            written += len(piece)
    log.debug("built %s: %d bytes, %d attachments", envelope.message_id, written, len(attachments))
    return written


def _plan(
    envelope: Envelope, attachments: Sequence[Attachment], signature: str
) -> list[bytes | Attachment]:
    """The message as literal bytes and attachments still to stream, all headers checked."""
    top = _top_headers(envelope)
    part = MIMEPart(policy=POLICY)
    part.set_content(compose_text(envelope.body, signature), subtype="plain", charset="utf-8")
    text = part.as_bytes(policy=POLICY)
    if not attachments:
        return [_fold(top) + text]
    # "=_" never occurs in base64 or quoted-printable; a 7bit text is checked.
    while (boundary := "=_" + secrets.token_hex(16)).encode("ascii") in text:
        pass
    top["Content-Type"] = f'multipart/mixed; boundary="{boundary}"'
    delimiter = b"--" + boundary.encode("ascii")
    plan: list[bytes | Attachment] = [_fold(top) + CRLF + delimiter + CRLF + text]
    for attachment in attachments:
        plan.append(CRLF + delimiter + CRLF + _attachment_headers(attachment) + CRLF)
        plan.append(attachment)
    plan.append(CRLF + delimiter + b"--" + CRLF)
    return plan


def _top_headers(envelope: Envelope) -> EmailMessage:
    for address in envelope.bcc:
        check_address(address)
    sender, to, cc = (
        check_address(envelope.sender),
        [check_address(a) for a in envelope.to],
        [check_address(a) for a in envelope.cc],
    )
    # A UTF-8 name before the @ is written as UTF-8 (RFC 6532); the stdlib's Address objects
    # refuse it, its parser of header text takes it.
    utf8 = any(needs_smtputf8(a) for a in (sender, *to, *cc))
    if not envelope.to:
        raise InvoiceMailerError(f"message {envelope.message_id} has no To address")
    date = envelope.date
    if date.tzinfo is None or date.utcoffset() is None:
        raise InvoiceMailerError(f"message date {date} has no time zone")
    if not _MESSAGE_ID.fullmatch(envelope.message_id):
        raise InvoiceMailerError(f"invalid Message-ID {envelope.message_id!r} (not <id@domain>)")
    top = EmailMessage(policy=UTF8_POLICY if utf8 else POLICY)
    name = header_text(envelope.sender_name)
    if needs_smtputf8(sender):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        top["From"] = f'"{quoted}" <{sender}>' if name else sender
    else:
        top["From"] = Address(display_name=name, addr_spec=sender)
    top["To"] = ", ".join(to) if utf8 else [Address(addr_spec=address) for address in to]
    if cc:
        top["Cc"] = ", ".join(cc) if utf8 else [Address(addr_spec=address) for address in cc]
    top["Subject"] = subject_text(envelope.subject)
    top["Date"] = date
    top["Message-ID"] = envelope.message_id
    top["MIME-Version"] = "1.0"
    top["X-Mailer"] = MAILER
    return top


def _attachment_headers(attachment: Attachment) -> bytes:
    part = MIMEPart(policy=POLICY)
    part["Content-Type"] = MIME_TYPES[attachment.kind]
    part["Content-Transfer-Encoding"] = "base64"
    # add_header encodes a non-ASCII name per RFC 2231; the policy folds long ones into pieces.
    part.add_header(
        "Content-Disposition", "attachment", filename=safe_filename(attachment.filename)
    )
    return _fold(part)


def _fold(message: EmailMessage | MIMEPart) -> bytes:
    return b"".join(message.policy.fold_binary(name, value) for name, value in message.items())


def _stream_base64(attachment: Attachment, out: BinaryIO) -> int:
    try:
        source = open(attachment.path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise _unreadable(attachment, exc) from exc
    written = 0
    with source:
        while True:
            try:
                chunk = source.read(CHUNK)
                # Only the last chunk may be short: a short read would put padding mid-stream.
                while 0 < len(chunk) < CHUNK and (more := source.read(CHUNK - len(chunk))):
                    chunk += more
            except OSError as exc:
                raise _unreadable(attachment, exc) from exc
            if not chunk:
                return written
            # base64.encodebytes loops in Python per 57-byte line; findall + join stay in C.
            lines = _BASE64_LINES.findall(binascii.b2a_base64(chunk, newline=False))
            encoded = CRLF.join(lines) + CRLF
            out.write(encoded)  # a buffered file (open(..., "wb")) writes it all
            written += len(encoded)


def _unreadable(attachment: Attachment, exc: OSError) -> InvoiceMailerError:
    reason = exc.strerror or str(exc)
    return InvoiceMailerError(f"cannot read attachment {attachment.path}: {reason}")

"""Building a message once, into a file: the bytes sent and the bytes archived are the same.

Headers and the text part are the bytes the stdlib email package writes (policy.SMTP encodes
and folds them correctly): written directly where headerfold and mimeparts know those bytes
(most of a month-end burst), else by the stdlib itself. reference_plan builds the whole
message through the stdlib, and the tests hold the two byte-identical. Attachments are
streamed from disk through C-speed base64 one chunk at a time, so a 25 MB document never sits
whole in memory. The words that go into it are made safe in messagetext, its addresses
checked in addresses.
"""

from __future__ import annotations

import binascii
import functools
import logging
import re
import secrets
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

from invoice_mailer.addresses import check_address, needs_smtputf8
from invoice_mailer.delivery import headerfold as fold
from invoice_mailer.delivery.headerfold import CRLF, POLICY, UTF8_POLICY
from invoice_mailer.delivery.messagetext import compose_text, safe_filename, subject_text
from invoice_mailer.delivery.mimeparts import (
    MIME_TYPES,
    attachment_head,
    stdlib_attachment_head,
    stdlib_text_part,
    text_part,
)
from invoice_mailer.errors import InvoiceMailerError

log = logging.getLogger(__name__)

MAILER = "invoice-mailer"
CHUNK = 57 * 1024  # whole 76-character lines: chunks concatenate to the whole file's encoding
# Upper bounds for estimated_size: boundary and part headers (a 200-character non-ASCII name,
# percent-encoded per RFC 2231 and folded, stays under 3 KB); top-level headers; a text
# character (4 UTF-8 bytes quoted-printable are 12 characters, plus soft line breaks).
PART_OVERHEAD = 4096
HEADERS_OVERHEAD = 16384
TEXT_BYTES_PER_CHAR = 13

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


Plan = list[bytes | Attachment]  # literal bytes, and attachments still to stream


def _plan(
    envelope: Envelope,
    attachments: Sequence[Attachment],
    signature: str,
    random_hex: Callable[[int], str] = secrets.token_hex,
) -> Plan:
    """The message as reference_plan makes it, all headers checked, at a fraction of the cost."""
    sender, to, cc, utf8 = _checked(envelope, _checked_address)
    head = [
        fold.from_line(envelope.sender_name, sender, utf8),
        fold.address_line("To", to, utf8),
        fold.address_line("Cc", cc, utf8) if cc else b"",
        fold.text_line("Subject", subject_text(envelope.subject), utf8),
        fold.date_line(envelope.date, utf8),
        fold.message_id_line(envelope.message_id, utf8),
        fold.constant_line("MIME-Version", "1.0", utf8),
        fold.constant_line("X-Mailer", MAILER, utf8),
    ]
    text = text_part(envelope.body, signature)
    if not attachments:
        return [b"".join(head) + text]
    boundary = _boundary(text, random_hex)
    head.append(fold.multipart_line(boundary, utf8))
    return _multipart(b"".join(head), text, boundary, attachments, attachment_head)


def reference_plan(
    envelope: Envelope,
    attachments: Sequence[Attachment],
    signature: str,
    random_hex: Callable[[int], str] = secrets.token_hex,
) -> Plan:
    """The same message with every header and the text part made by the stdlib email package:
    what _plan must equal byte for byte (tests and bench/building.py compare them)."""
    sender, to, cc, utf8 = _checked(envelope, check_address)
    top = EmailMessage(policy=UTF8_POLICY if utf8 else POLICY)
    top["From"] = fold.from_value(envelope.sender_name, sender)
    top["To"] = fold.addresses_value(to, utf8)
    if cc:
        top["Cc"] = fold.addresses_value(cc, utf8)
    top["Subject"] = subject_text(envelope.subject)
    top["Date"] = envelope.date
    top["Message-ID"] = envelope.message_id
    top["MIME-Version"] = "1.0"
    top["X-Mailer"] = MAILER
    text = stdlib_text_part(compose_text(envelope.body, signature))
    if not attachments:
        return [fold.stdlib_lines(top) + text]
    boundary = _boundary(text, random_hex)
    top["Content-Type"] = f'multipart/mixed; boundary="{boundary}"'
    return _multipart(fold.stdlib_lines(top), text, boundary, attachments, stdlib_attachment_head)


def _checked(
    envelope: Envelope, check: Callable[[str], str]
) -> tuple[str, list[str], list[str], bool]:
    """Sender, To and Cc as they go on the wire, and whether they need SMTPUTF8; or raise."""
    for address in envelope.bcc:
        check(address)
    sender, to, cc = (
        check(envelope.sender),
        [check(a) for a in envelope.to],
        [check(a) for a in envelope.cc],
    )
    utf8 = any(needs_smtputf8(a) for a in (sender, *to, *cc))
    if not envelope.to:
        raise InvoiceMailerError(f"message {envelope.message_id} has no To address")
    date = envelope.date
    if date.tzinfo is None or date.utcoffset() is None:
        raise InvoiceMailerError(f"message date {date} has no time zone")
    if not _MESSAGE_ID.fullmatch(envelope.message_id):
        raise InvoiceMailerError(f"invalid Message-ID {envelope.message_id!r} (not <id@domain>)")
    return sender, to, cc, utf8


_check_address_cached = functools.lru_cache(maxsize=1024)(check_address)


def _checked_address(address: str) -> str:
    """check_address, remembered: the same few senders and customers recur in a burst."""
    if type(address) is str:  # hashable (anything else check_address refuses itself)
        return _check_address_cached(address)
    return check_address(address)


def _boundary(text: bytes, random_hex: Callable[[int], str]) -> str:
    # "=_" never occurs in base64 or quoted-printable; a 7bit text is checked.
    while (boundary := "=_" + random_hex(16)).encode("ascii") in text:
        pass
    return boundary


def _multipart(
    head: bytes,
    text: bytes,
    boundary: str,
    attachments: Sequence[Attachment],
    part_head: Callable[[str, str], bytes],
) -> Plan:
    delimiter = b"--" + boundary.encode("ascii")
    plan: Plan = [head + CRLF + delimiter + CRLF + text]
    for attachment in attachments:
        head = part_head(attachment.kind, safe_filename(attachment.filename))
        plan.append(CRLF + delimiter + CRLF + head + CRLF)
        plan.append(attachment)
    plan.append(CRLF + delimiter + b"--" + CRLF)
    return plan


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
            encoded = _base64_lines(chunk)
            out.write(encoded)  # a buffered file (open(..., "wb")) writes it all
            written += len(encoded)


def _base64_lines(chunk: bytes) -> bytes:
    """base64 in 76-character lines, each ending in CRLF; base64.encodebytes loops in Python
    per line, this stays in C (one struct unpack cuts all the whole lines)."""
    encoded = binascii.b2a_base64(chunk, newline=False)
    whole = len(encoded) // 76
    lines = _line_cutter(whole)(encoded)
    if len(encoded) > 76 * whole:
        lines += (encoded[76 * whole :],)
    return CRLF.join(lines) + CRLF


@functools.lru_cache(maxsize=16)  # each up to 36 KB; the whole chunk's count always recurs
def _line_cutter(count: int) -> Callable[[bytes], tuple[bytes, ...]]:
    return struct.Struct("76s" * count).unpack_from


def _unreadable(attachment: Attachment, exc: OSError) -> InvoiceMailerError:
    reason = exc.strerror or str(exc)
    return InvoiceMailerError(f"cannot read attachment {attachment.path}: {reason}")

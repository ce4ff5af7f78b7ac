"""Building a message once, into a file: the bytes sent and the bytes archived are the same.

Headers and the text part come from the stdlib email package (policy.SMTP encodes and folds
them correctly); attachments are streamed from disk through C-speed base64 one chunk at a time,
so a 25 MB document never sits whole in memory and a month-end burst stays cheap.
"""

from __future__ import annotations

import binascii
import logging
import re
import secrets
import string
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import errors as email_errors
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import BinaryIO

from invoice_mailer.errors import InvoiceMailerError

log = logging.getLogger(__name__)

MIME_TYPES = {"pdf": "application/pdf", "xml": "application/xml", "p7m": "application/pkcs7-mime"}
MAILER = "invoice-mailer"
MAX_FILENAME = 200
# A subject longer than this is cut (with "…"): folding a header costs more than linear time
# in its longest word, and no mail client shows more. Document fields are bounded at intake.
MAX_SUBJECT = 200
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

# \s also covers \v, \f, \x1c-\x1e, \x85, \u2028, \u2029: all that str.splitlines() breaks on.
_BREAKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_SURROGATES = re.compile(r"[\ud800-\udfff]")  # undecodable bytes of a file name (surrogateescape)
_BIDI = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # "Fattura\u202efdp.exe" tricks
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # NUL, escapes: servers refuse them
_RESERVED = re.compile(r'[<>:"|?*]')  # names Windows refuses to save
_BASE64_LINES = re.compile(rb".{1,76}")
_EXTENSION = re.compile(r"(\.xml\.p7m|\.[^.]{1,10})$", re.IGNORECASE)
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


def check_address(address: str) -> str:
    """The address as it goes on the wire (see wire_address), or raise a sentence naming it:
    every address reaches the wire."""
    if not isinstance(address, str):
        reason = "not text"
    elif not address.isprintable() or " " in address:
        reason = "spaces or control characters"
    else:
        try:
            wire = wire_address(address)
            local, _, domain = wire.rpartition("@")
            # The stdlib parses only ASCII names before the @: a UTF-8 one (RFC 6531) is
            # checked through an ASCII stand-in of the same shape.
            stand_in = "".join(c if c.isascii() else "u" for c in local)
            parsed = Address(addr_spec=f"{stand_in}@{domain}")
        except (ValueError, TypeError, IndexError, email_errors.HeaderParseError) as exc:
            reason = str(exc)
        else:
            if parsed.username and parsed.domain:
                return wire
            reason = "expected name@domain"
    raise InvoiceMailerError(f"invalid e-mail address {address!r}: {reason}")


def wire_address(address: str) -> str:
    """The domain in its ASCII form (IDNA: perché.it -> xn--perch-fsa.it), for the envelope
    and the headers alike; the name before the @ as it is (see needs_smtputf8)."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        raise ValueError(f"the domain {domain!r} has no ASCII (IDNA) form") from None


def needs_smtputf8(address: str) -> bool:
    """A non-ASCII name before the @ can travel only where the server offers SMTPUTF8."""
    return not address.rpartition("@")[0].isascii()


def new_message_id(sender_address: str) -> str:
    """A fresh Message-ID in the sender's domain; stored before DATA, reused on a resend."""
    return f"<{uuid.uuid4().hex}@{check_address(sender_address).rpartition('@')[2]}>"


def render(template: str, fields: Mapping[str, object]) -> str:
    """Fill a configured template; a mistake in it becomes a sentence, not a traceback."""
    values = {name: str(value) for name, value in fields.items()}
    try:
        for _literal, name, _spec, _conversion in string.Formatter().parse(template):
            if name is not None and (not name or name[0].isdigit() or re.search(r"\._", name)):
                raise ValueError(f"field {{{name}}} is not allowed")
        return template.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError) as exc:
        reason = f"unknown field {{{exc.args[0]}}}" if isinstance(exc, KeyError) else str(exc)
        raise InvoiceMailerError(f"template {template!r} cannot be used: {reason}") from None


def header_text(value: str) -> str:
    """One line of text for a header (Subject, display names): no break can reach the wire.

    "=?" is broken up: the email package decodes RFC 2047 encoded words in the values it is
    given, and Python before 3.11.10 then writes the line breaks they hide (CVE-2024-6923).
    """
    text = _BREAKS.sub(" ", _SURROGATES.sub("\ufffd", str(value))).strip()
    return text.replace("=?", "= ?")


def subject_text(value: str) -> str:
    """The Subject: one line (header_text), at most MAX_SUBJECT characters."""
    text = header_text(value)
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1].rstrip() + "…"


def safe_filename(name: str) -> str:
    """The attachment name the recipient sees and saves: no path, no controls, never empty."""
    name = _SURROGATES.sub("_", str(name))
    name = _BIDI.sub("", unicodedata.normalize("NFC", name))
    name = _RESERVED.sub("_", name.replace("/", "-").replace("\\", "-"))
    name = header_text(name).strip(" .")  # a leading dot hides the file, a trailing one vanishes
    if not name:
        return "documento"
    if len(name) > MAX_FILENAME:
        extension = match.group() if (match := _EXTENSION.search(name)) else ""
        name = name[: MAX_FILENAME - len(extension)].rstrip(" .") + extension
    return name


def compose_text(body: str, signature: str) -> str:
    """The body, then the signature after one blank line; newlines as \\n, ending in one."""
    text, signature = _plain_text(body), _plain_text(signature)
    # RFC 3676's separator is "-- " with its space, which editors like to strip: put it back,
    # so mail programs recognise (and leave out of replies) the signature.
    signature = re.sub(r"\A(\n*)--[ \t]*(?=\n|\Z)", r"\1-- ", signature)
    if signature.strip():
        text = text.rstrip("\n") + "\n\n" + signature.strip("\n")
    return text if text.endswith("\n") else text + "\n"


def _plain_text(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_CONTROLS.sub("", _SURROGATES.sub("\ufffd", value))


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

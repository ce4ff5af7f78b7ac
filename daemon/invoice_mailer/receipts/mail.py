"""Reading a message that arrived in the sender's mailbox. Anyone may have written it, so the
lenient parser is used (compat32 keeps headers as text and does not raise when they are read),
sizes and part counts are capped, and a message embedded in another (message/rfc822) is never
taken for parts of the message that carries it: that is how a receipt forged inside someone's
PEC envelope would otherwise pass for the provider's own.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.errors
import email.header
import email.utils
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from asn1crypto import cms

DEFAULT_MAX_SIZE = 100 * 1024 * 1024  # a full receipt carries our message (25 MB by default)
_MAX_PARTS = 1000  # far more than any receipt or report has; past it, the walk stops
_BRACKETED_ID = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")
_HEADER_END = re.compile(rb"\n\r?\n")  # a line ending, then an empty line


@dataclass(frozen=True)
class Unrecognised:
    """Not what the parser was looking for; `reason` says why, in a sentence for the log."""

    reason: str


class Unreadable(ValueError):
    """A message or part that does not hold what its headers or its name promise."""


def read_message(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    if len(data) > max_size:
        raise Unreadable(f"too large: {len(data)} bytes, the limit is {max_size}")
    if not data.strip():
        raise Unreadable("the message is empty")
    return email.message_from_bytes(data, policy=compat32)


def read_headers(data: bytes) -> Message:
    """The message's header fields (its payload is not the body). Only the header block is
    handed to the parser: given the whole message, it splits every line of the body into a
    payload nobody reads, and a delivery receipt carries our whole message (bench/receipts.py:
    0.4 ms of a 115 KB receipt's 2.4 ms, twice per receipt)."""
    end = _HEADER_END.search(data)
    return BytesHeaderParser(policy=compat32).parsebytes(data[: end.end()] if end else data)


def header(message: Message, name: str) -> str | None:
    """A header's text with RFC 2047 words decoded and folding undone; None when absent or blank."""
    raw = message.get(name)
    if raw is None:
        return None
    text = " ".join(_decode_words(str(raw)).split())
    return text or None


def _decode_words(raw: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return raw  # an unknown charset or a broken word: the raw text still says something


def message_id(value: str | None) -> str | None:
    """`<id@host>` out of a header or a daticert value (where the brackets may be missing)."""
    if not value:
        return None
    match = _BRACKETED_ID.search(value)
    if match:
        return f"<{match.group(1)}>"
    bare = value.strip()
    if "@" in bare and not any(c.isspace() or c in "<>" for c in bare):
        return f"<{bare}>"
    return None


def address(value: str | None) -> str | None:
    """The bare address of a header or daticert value, lower-cased for comparison."""
    if not value:
        return None
    _name, addr = email.utils.parseaddr(value)
    return addr.strip().lower() or None


def body_parts(message: Message) -> list[Message]:
    """The leaf parts of the message's own body, in order. Containers (signed, mixed,
    alternative) are entered; an embedded message is one leaf, never opened here."""
    leaves: list[Message] = []
    pending = [message]
    visited = 0
    while pending:
        part = pending.pop()
        visited += 1
        if visited > _MAX_PARTS:
            raise Unreadable(f"more than {_MAX_PARTS} MIME parts")
        if part.get_content_maintype() == "multipart":
            children = part.get_payload()
            if isinstance(children, list):
                pending.extend(reversed([c for c in children if isinstance(c, Message)]))
            continue
        leaves.append(part)
    return leaves


def filename(part: Message) -> str | None:
    """The part's file name (Content-Disposition filename, else Content-Type name)."""
    name = part.get_filename() or part.get_param("name")
    if isinstance(name, tuple):  # RFC 2231 (charset, language, value)
        name = email.utils.collapse_rfc2231_value(name)
    if not isinstance(name, str):
        return None
    return _decode_words(name).strip() or None


def parts_named(parts: list[Message], name: str) -> list[Message]:
    wanted = name.lower()
    return [part for part in parts if (filename(part) or "").lower() == wanted]


def decoded(part: Message) -> bytes:
    """The part's body with its transfer encoding undone (b"" for a container)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def embedded_message(part: Message) -> Message | None:
    """The message a message/rfc822 part (or an attached .eml file) carries, else None."""
    if part.get_content_type() == "message/rfc822":
        return _parsed_inner(part)
    if (filename(part) or "").lower().endswith(".eml"):
        inner = decoded(part)
        return email.message_from_bytes(inner, policy=compat32) if inner.strip() else None
    return None


def raw_body(part: Message) -> bytes:
    """A leaf part's body as bytes, its transfer encoding undone; for a message/* part (which
    the parser has already read as a message) the text of that message."""
    if part.get_content_maintype() == "message" and isinstance(part.get_payload(), list):
        inner = _parsed_inner(part)
        return inner.as_bytes() if inner is not None else b""
    return decoded(part)


def _parsed_inner(part: Message) -> Message | None:
    payload = part.get_payload()
    if not (isinstance(payload, list) and payload and isinstance(payload[0], Message)):
        return None
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        return payload[0]
    # RFC 2046 forbids encoding a message/* part, yet some software does: the parser then read
    # the encoded text as a message, so it is taken back as text and decoded.
    text = payload[0].as_bytes()
    try:
        raw = base64.b64decode(text) if encoding == "base64" else quopri.decodestring(text)
    except (binascii.Error, ValueError):
        return None
    return email.message_from_bytes(raw, policy=compat32)


def signature_part(message: Message) -> Message | None:
    """The S/MIME signature of a multipart/signed message, else None (unsigned)."""
    if message.get_content_type() != "multipart/signed":
        return None
    children = message.get_payload()
    if not isinstance(children, list) or len(children) != 2:
        return None
    signature = children[1]
    if not isinstance(signature, Message):
        return None
    return signature if signature.get_content_type() in _SIGNATURE_TYPES else None


def signer(signature: Message) -> str | None:
    """Whom the signing certificate names (its subject), read without verifying anything;
    raises Unreadable when the part is not a CMS signature at all."""
    der = decoded(signature)
    # asn1crypto parses lazily: damage surfaces on access, as any of these.
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise Unreadable("the signature part is not CMS signed data")
        signed = info["content"]
        serials = {
            si["sid"].chosen["serial_number"].native
            for si in signed["signer_infos"]
            if si["sid"].name == "issuer_and_serial_number"
        }
        certificates = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
        for certificate in certificates:
            if not serials or certificate.serial_number in serials:
                return str(certificate.subject.human_friendly)
        return None
    except Unreadable:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise Unreadable("the signature part is damaged (not a CMS signature)") from None

"""Opens signed FatturaPA envelopes (`.xml.p7m`, CMS SignedData) to get the XML they carry.

Invoicing programs and signing tools write the same envelope as raw DER, as base64 of the DER
(sometimes base64 twice), or as PEM; the form is told apart by content, never by name. The
signature itself is not verified: the service forwards the envelope as it is, and only needs
the XML inside to check it and to find the customer.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re

from asn1crypto import cms

from invoice_mailer.errors import DocumentError

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 100 * 1024 * 1024  # Aruba PEC's largest message; no real invoice comes near
_MAX_BASE64_LAYERS = 2  # base64 once, or base64 of base64 (seen from some signing tools)
_PEM = re.compile(
    rb"-----BEGIN (PKCS7|CMS|PKCS #7 SIGNED DATA)-----(?P<body>.*?)-----END \1-----", re.DOTALL
)
_WHITESPACE = b" \t\r\n\x0b\x0c"


def unwrap(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Return the signed content (the XML bytes) of a p7m envelope in DER, base64 or PEM form."""
    check_size(len(data), max_size)
    der = _to_der(data)
    return _signed_content(der)


def check_size(size: int, max_size: int = DEFAULT_MAX_SIZE) -> None:
    """Refuse an envelope too large to open, before a byte of it is read into memory."""
    if size > max_size:
        raise DocumentError(f"p7m envelope too large: {_mb(size)}, the limit is {_mb(max_size)}")


def _to_der(data: bytes) -> bytes:
    """Peel PEM armour and up to two base64 layers until DER (an ASN.1 SEQUENCE) shows."""
    for _ in range(_MAX_BASE64_LAYERS + 1):
        # Only leading whitespace goes: DER may legitimately end in bytes that look like it.
        head = data.lstrip(_WHITESPACE)
        if not head:
            raise DocumentError("not a signed p7m envelope: the file is empty")
        if head[0] == 0x30:  # ASN.1 SEQUENCE tag: DER or BER (base64 of it starts with "M")
            return head
        stripped = head.rstrip(_WHITESPACE)
        if stripped.startswith(b"-----BEGIN"):
            match = _PEM.search(stripped)
            if match is None:
                raise DocumentError(
                    "not a signed p7m envelope: PEM text without a PKCS7 or CMS block"
                )
            data = _b64decode(match.group("body"), "the PEM block is not valid base64")
            continue
        data = _b64decode(stripped, "neither DER, base64 nor PEM")
    raise DocumentError("not a signed p7m envelope: too many layers of base64")


def _b64decode(text: bytes, reason: str) -> bytes:
    compact = text.translate(None, _WHITESPACE)
    compact += b"=" * (-len(compact) % 4)  # some tools drop the padding
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentError(f"not a signed p7m envelope: {reason}") from None


def _signed_content(der: bytes) -> bytes:
    # asn1crypto parses lazily: errors in a truncated or corrupt file surface on access, as
    # ValueError, TypeError, KeyError or IndexError, so all the access happens in this block.
    try:
        info = cms.ContentInfo.load(der)
        content_type = info["content_type"].native
        if content_type != "signed_data":
            raise DocumentError(
                f"not a signed p7m envelope: it holds {content_type!r}, not signed data"
            )
        content = info["content"]["encap_content_info"]["content"].native
    except DocumentError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        log.debug("p7m parse error: %s", exc)
        raise DocumentError(
            f"not a signed p7m envelope: the file is damaged or truncated ({_first_line(str(exc))})"
        ) from None
    if content is None:
        raise DocumentError(
            "not a signed p7m envelope: it carries no document (a detached signature)"
        )
    if not isinstance(content, bytes):
        raise DocumentError("not a signed p7m envelope: its content is not a document")
    return content


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unreadable ASN.1"
    return line[:120]


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 100 * 1024 else f"{size} bytes"

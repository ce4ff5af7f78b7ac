"""The parts of a message other than its top headers: the text part and each attachment's
head, as the stdlib email package writes them. The common shapes (an ASCII text, a short
ASCII file name) are written directly, the rest by the stdlib, whose bytes are remembered: a
burst repeats the same texts and names. The stdlib_ functions are the reference.
"""

from __future__ import annotations

import functools
import re
from email.message import MIMEPart

from invoice_mailer.delivery import headerfold as fold
from invoice_mailer.delivery.headerfold import CRLF, POLICY
from invoice_mailer.delivery.messagetext import compose_text

MIME_TYPES = {"pdf": "application/pdf", "xml": "application/xml", "p7m": "application/pkcs7-mime"}


def text_part(body: str, signature: str) -> bytes:
    """The text part (headers and body), as stdlib_text_part writes it."""
    if len(body) + len(signature) <= _REMEMBERED_TEXT:
        return _text_part_remembered(body, signature)
    return _text_part(body, signature)


_REMEMBERED_TEXT = 2048  # characters: a cache of 128 such texts stays within a few MB


@functools.lru_cache(maxsize=128)
def _text_part_remembered(body: str, signature: str) -> bytes:
    return _text_part(body, signature)


def _text_part(body: str, signature: str) -> bytes:
    text = compose_text(body, signature)
    if _PLAIN_7BIT.fullmatch(text):
        # ASCII lines of at most 78 characters: the stdlib picks 7bit and writes the text as it
        # is, with CRLF line ends, after the same head as for the shortest such text.
        return _TEXT_7BIT_HEAD + text.replace("\n", "\r\n").encode("ascii")
    return stdlib_text_part(text)


def stdlib_text_part(text: str) -> bytes:
    part = MIMEPart(policy=POLICY)
    part.set_content(text, subtype="plain", charset="utf-8")
    return part.as_bytes(policy=POLICY)


# Lines of what compose_text leaves (tab and printable ASCII), each ending in "\n".
_PLAIN_7BIT = re.compile(rf"(?:[\t\x20-\x7e]{{0,{fold.MAX_LINE}}}\n)+")
_TEXT_7BIT_HEAD = stdlib_text_part("\n").removesuffix(CRLF)


def attachment_head(kind: str, filename: str) -> bytes:
    """An attachment's part headers (the name already made safe), as stdlib_attachment_head
    writes them."""
    disposition = fold.disposition_line(filename)
    if disposition is None:
        return _stdlib_attachment_head_remembered(kind, filename)
    return _part_type_lines(kind) + disposition


@functools.lru_cache(maxsize=8)
def _part_type_lines(kind: str) -> bytes:
    return fold.constant_line("Content-Type", MIME_TYPES[kind]) + fold.constant_line(
        "Content-Transfer-Encoding", "base64"
    )


def stdlib_attachment_head(kind: str, filename: str) -> bytes:
    part = MIMEPart(policy=POLICY)
    part["Content-Type"] = MIME_TYPES[kind]
    part["Content-Transfer-Encoding"] = "base64"
    # add_header encodes a non-ASCII name per RFC 2231; the policy folds long ones into pieces.
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return fold.stdlib_lines(part)


_stdlib_attachment_head_remembered = functools.lru_cache(maxsize=256)(stdlib_attachment_head)

"""XML read safely: defusedxml with DTDs refused outright (no FatturaPA has one, and refusing it
stops entity bombs, XXE and external DTDs before anything expands or is fetched), the
FatturaPA schema's field limits checked as the document streams in, and every refusal a
sentence an office admin understands. Real exports are sometimes Windows-1252 bytes under a
UTF-8 (or no) declaration; those are read as Windows-1252 rather than refused.

The intake checks each XML with it (intake/content.py), the reader parses it (reader.py).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import BinaryIO
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers.expat import ErrorString

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from invoice_mailer.errors import DocumentError, UnsafeDocument
from invoice_mailer.fatturapa.fieldlimits import FieldLimits

_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def check_xml(stream: BinaryIO) -> None:
    """Check well-formedness under the safety rules, and a FatturaPA's fields against its
    schema's limits, streaming, without building a tree."""
    _parse(stream, FieldLimits)


def parse_xml(data: bytes) -> Element:
    """Parse XML bytes under the same safety and encoding rules as the intake check."""
    root = _parse(io.BytesIO(data), _CheckedTreeBuilder)
    if root is None:  # cannot happen with a TreeBuilder; keeps the type honest
        raise DocumentError("XML is empty")
    return root


class _CheckedTreeBuilder(TreeBuilder):
    """A tree, with the FatturaPA field limits checked as it grows."""

    def __init__(self) -> None:
        super().__init__()
        self._limits = FieldLimits()

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._limits.start(tag)
        return super().start(tag, attrs)

    def data(self, data: str) -> None:
        self._limits.data(data)
        super().data(data)

    def end(self, tag: str) -> Element:
        self._limits.end(tag)
        return super().end(tag)


def _parse(stream: BinaryIO, make_target: Callable[[], object]) -> Element | None:
    start = stream.tell()
    head = stream.read(_CHUNK)
    if not head.strip():
        raise DocumentError("XML is empty")
    try:
        return _feed(stream, head, make_target(), None)
    except ParseError as first:
        if not _may_be_windows_1252(head):
            raise _not_well_formed(first) from None
        # The common real-world mistake: Windows-1252 bytes written by a Windows program
        # under a UTF-8 declaration (or none). Read once more as Windows-1252.
        stream.seek(start)
        head = stream.read(_CHUNK).removeprefix(_BOM)
        try:
            return _feed(stream, head, make_target(), "cp1252")
        except ParseError:
            raise _not_well_formed(first) from None


def _feed(stream: BinaryIO, head: bytes, target: object, encoding: str | None) -> Element | None:
    """Feed the parser chunk by chunk; turn defusedxml's refusals into reasons for the admin."""
    parser = DefusedXMLParser(
        target=target,
        encoding=encoding,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        chunk = head
        while chunk:
            parser.feed(chunk)
            chunk = stream.read(_CHUNK)
        return parser.close()
    except DTDForbidden:
        raise UnsafeDocument("XML declares a DTD, which is refused for safety") from None
    except EntitiesForbidden:
        raise UnsafeDocument("XML declares entities, which are refused for safety") from None
    except ExternalReferenceForbidden:
        reason = "XML refers to an external file, which is refused for safety"
        raise UnsafeDocument(reason) from None


def _may_be_windows_1252(head: bytes) -> bool:
    match = _DECLARED_ENCODING.match(head.removeprefix(_BOM))
    if match is None:
        return True
    declared = match.group(1).decode("ascii", "replace").lower().replace("_", "-")
    return declared in ("utf-8", "utf8")


def _not_well_formed(exc: ParseError) -> DocumentError:
    line, column = getattr(exc, "position", (0, 0))
    code = getattr(exc, "code", None)
    what = ErrorString(code) if code else str(exc)
    # expat counts columns from 0; editors and people count from 1.
    return DocumentError(f"XML is not well-formed: line {line}, column {column + 1}: {what}")

"""The intake's look inside a document: is it really the PDF, XML or p7m its name promises?

A file that fails here goes to `failed/` with the reason, so every reason is a sentence an
office admin understands. XML (and the XML inside a p7m) is checked by
fatturapa/safexml.py: defusedxml, no DTD, the schema's field limits.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from invoice_mailer.errors import DocumentError
from invoice_mailer.fatturapa import p7m
from invoice_mailer.fatturapa.safexml import check_xml

KINDS = ("pdf", "xml", "p7m")
PDF_TAIL = 2048  # %%EOF must appear this close to the end; readers look in the last 1 KB


def kind_of(name: str) -> str | None:
    """Which check a file name calls for: "pdf", "xml", "p7m", or None for anything else."""
    lower = name.lower()
    if lower.endswith(".p7m"):
        return "p7m"
    if lower.endswith(".xml"):
        return "xml"
    if lower.endswith(".pdf"):
        return "pdf"
    return None


def check_document(
    kind: str, stream: BinaryIO, size: int, *, max_p7m_size: int = p7m.DEFAULT_MAX_SIZE
) -> None:
    """Raise DocumentError, with a reason for the admin, unless the open file is sendable."""
    if size <= 0:
        raise DocumentError("the file is empty")
    if kind == "pdf":
        _check_pdf(stream, size)
    elif kind == "xml":
        stream.seek(0)
        check_xml(stream)
    elif kind == "p7m":
        _check_p7m(stream, size, max_p7m_size)
    else:
        raise ValueError(f"unknown document kind {kind!r}; expected one of {KINDS}")


def _check_pdf(stream: BinaryIO, size: int) -> None:
    # Only the head and the tail: a 50 MB file is judged by reading 2 KB of it.
    stream.seek(0)
    if stream.read(5) != b"%PDF-":
        raise DocumentError("not a PDF (does not start with %PDF-)")
    stream.seek(max(0, size - PDF_TAIL))
    if b"%%EOF" not in stream.read(PDF_TAIL):
        raise DocumentError("PDF is incomplete (no %%EOF at the end)")


def _check_p7m(stream: BinaryIO, size: int, max_size: int) -> None:
    p7m.check_size(size, max_size)
    stream.seek(0)
    inner = p7m.unwrap(stream.read(max_size + 1), max_size)
    try:
        check_xml(io.BytesIO(inner))
    except DocumentError as exc:  # the same kind of refusal (final ones stay final)
        raise type(exc)(f"the signed envelope opens, but inside it: {exc}") from None

"""The intake's content check on real files: what passes, and the reason the admin reads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from invoice_mailer.errors import DocumentError
from invoice_mailer.intake.content import check_document, kind_of
from tests.support.fatturapa_samples import SAMPLES, make_p7m
from tests.support.hostile import BILLION_LAUGHS, QUADRATIC_BLOWUP, XXE

DTD_REFUSED = "XML declares a DTD, which is refused for safety"


class CountingReader(io.RawIOBase):
    """A real open file that remembers how many bytes were read from it."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def check(path: Path, kind: str | None = None, **kwargs: int) -> None:
    """Run the check as the intake does: on a file it already holds open."""
    with path.open("rb") as stream:
        check_document(kind or kind_of(path.name) or "?", stream, path.stat().st_size, **kwargs)


def reason(path: Path, kind: str | None = None, **kwargs: int) -> str:
    with pytest.raises(DocumentError) as caught:
        check(path, kind, **kwargs)
    return str(caught.value)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Fattura_123_2026_C042.pdf", "pdf"),
        ("SCAN.PDF", "pdf"),
        ("IT01234567890_0000A.xml", "xml"),
        ("IT01234567890_0000A.XML", "xml"),
        ("IT01234567890_0000A.xml.p7m", "p7m"),
        ("IT01234567890_0000A.XML.P7M", "p7m"),
        ("envelope.p7m", "p7m"),
        ("notes.txt", None),
        ("Fattura.pdf.tmp", None),
        ("pdf", None),
    ],
)
def test_kind_of(name: str, kind: str | None) -> None:
    assert kind_of(name) == kind


# --- PDF -----------------------------------------------------------------------------------


def test_a_real_pdf_passes(tmp_path: Path) -> None:
    check(write(tmp_path, "Fattura_1_2026_C1.pdf", make_pdf()))


def test_truncated_pdf_is_incomplete(tmp_path: Path) -> None:
    path = write(tmp_path, "Fattura_1_2026_C1.pdf", make_pdf(size=10_000)[:-200])
    assert reason(path) == "PDF is incomplete (no %%EOF at the end)"


def test_a_file_that_is_not_a_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "Fattura_1_2026_C1.pdf", b"<html>oops</html>\n%%EOF\n")
    assert reason(path) == "not a PDF (does not start with %PDF-)"


def test_empty_file(tmp_path: Path) -> None:
    assert reason(write(tmp_path, "Fattura_1_2026_C1.pdf", b"")) == "the file is empty"


def test_50_mb_of_zeros_is_refused_after_reading_its_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Fattura_1_2026_C1.pdf"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB of zeros without writing them
    with CountingReader(path) as stream:
        with pytest.raises(DocumentError, match="does not start with %PDF-"):
            check_document("pdf", stream, path.stat().st_size)
        assert stream.bytes_read <= 16


def test_large_pdf_is_judged_by_its_head_and_tail(tmp_path: Path) -> None:
    path = write(tmp_path, "Fattura_1_2026_C1.pdf", make_pdf(size=20 * 1024 * 1024))
    with CountingReader(path) as stream:
        check_document("pdf", stream, path.stat().st_size)
        assert stream.bytes_read <= 4096


# --- XML -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.xml")))
def test_official_samples_pass(sample: str) -> None:
    check(SAMPLES / sample)


@pytest.mark.parametrize(
    "xml",
    [
        make_fattura_xml(bom=True),
        make_fattura_xml(declaration=None),
        make_fattura_xml(customer_name="Caffè Società €", encoding="cp1252"),
        make_fattura_xml(customer_name="Caffè", encoding="cp1252", declaration=None),
        make_fattura_xml(customer_name="Caffè", encoding="cp1252", bom=True),
        make_fattura_xml(
            customer_name="Caffè",
            encoding="latin-1",
            declaration='<?xml version="1.0" encoding="ISO-8859-1"?>\n',
        ),
    ],
    ids=["bom", "no-declaration", "cp1252", "cp1252-undeclared", "cp1252-bom", "latin-1"],
)
def test_real_world_xml_quirks_pass(tmp_path: Path, xml: bytes) -> None:
    check(write(tmp_path, "IT01234567890_0000A.xml", xml))


def test_not_well_formed_xml_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, "a.xml", b"<a>\n  <b>\n    </c>\n</a>\n")
    assert reason(path) == "XML is not well-formed: line 3, column 7: mismatched tag"


def test_truncated_xml(tmp_path: Path) -> None:
    whole = make_fattura_xml()
    text = reason(write(tmp_path, "a.xml", whole[: len(whole) // 2]))
    assert text.startswith("XML is not well-formed: line 2, column ")


def test_cp1252_is_not_tried_when_another_encoding_is_declared(tmp_path: Path) -> None:
    xml = make_fattura_xml(declaration='<?xml version="1.0" encoding="US-ASCII"?>\n')
    path = write(tmp_path, "a.xml", xml.replace(b"DITTA BETA", b"Caff\xe8"))
    assert "not well-formed (invalid token)" in reason(path)


def test_a_pdf_named_xml(tmp_path: Path) -> None:
    assert reason(write(tmp_path, "a.xml", make_pdf())).startswith("XML is not well-formed:")


@pytest.mark.parametrize(
    "xml",
    [BILLION_LAUGHS, QUADRATIC_BLOWUP, XXE],
    ids=["billion-laughs", "quadratic-blowup", "xxe-etc-passwd"],
)
def test_entity_attacks_are_refused_before_expanding(tmp_path: Path, xml: bytes) -> None:
    text = reason(write(tmp_path, "IT01234567890_0000A.xml", xml))
    assert text == DTD_REFUSED
    assert "root:" not in text


def test_external_dtd_is_refused_without_being_read(tmp_path: Path) -> None:
    # Were the DTD read, &name; would expand to DITTA BETA and the file would pass.
    dtd = write(tmp_path, "evil.dtd", b'<!ENTITY name "DITTA BETA">')
    xml = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE FatturaElettronica SYSTEM "' + dtd.as_uri().encode() + b'">\n'
        b"<FatturaElettronica>&name;</FatturaElettronica>\n"
    )
    assert reason(write(tmp_path, "a.xml", xml)) == DTD_REFUSED


def test_dtd_hidden_behind_cp1252_bytes_is_still_refused(tmp_path: Path) -> None:
    xml = b"<!-- caff\xe8 -->" + XXE.split(b"\n", 1)[1]
    assert reason(write(tmp_path, "a.xml", xml)) == DTD_REFUSED


# --- p7m -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["der", "base64", "base64x2", "pem"])
def test_signed_invoice_passes(tmp_path: Path, form: str) -> None:
    check(write(tmp_path, "IT01234567890_0000A.xml.p7m", make_p7m(make_fattura_xml(), form)))


def test_garbage_p7m(tmp_path: Path) -> None:
    path = write(tmp_path, "IT01234567890_0000A.xml.p7m", b"\x00garbage" * 100)
    assert reason(path).startswith("not a signed p7m envelope: ")


def test_truncated_p7m(tmp_path: Path) -> None:
    whole = make_p7m(make_fattura_xml())
    path = write(tmp_path, "IT01234567890_0000A.xml.p7m", whole[:-300])
    assert reason(path).startswith("not a signed p7m envelope: the file is damaged or truncated")


def test_p7m_with_an_entity_bomb_inside(tmp_path: Path) -> None:
    path = write(tmp_path, "IT01234567890_0000A.xml.p7m", make_p7m(BILLION_LAUGHS))
    assert reason(path) == f"the signed envelope opens, but inside it: {DTD_REFUSED}"


def test_p7m_with_broken_xml_inside(tmp_path: Path) -> None:
    path = write(tmp_path, "IT01234567890_0000A.xml.p7m", make_p7m(b"<a><b></a>", "pem"))
    assert reason(path) == (
        "the signed envelope opens, but inside it: "
        "XML is not well-formed: line 1, column 9: mismatched tag"
    )


def test_p7m_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "IT01234567890_0000A.xml.p7m", make_p7m(make_fattura_xml()))
    with CountingReader(path) as stream:
        with pytest.raises(DocumentError, match="p7m envelope too large"):
            check_document("p7m", stream, path.stat().st_size, max_p7m_size=100)
        assert stream.bytes_read == 0


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown document kind"):
        check_document("docx", io.BytesIO(b"PK"), 2)

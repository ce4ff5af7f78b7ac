"""The FatturaPA schema's limits on the fields that reach subjects and lookups (issue 13.5)."""

from __future__ import annotations

import io
import re

import pytest

from invoice_mailer.demo.samples import make_fattura_xml
from invoice_mailer.fatturapa import safexml
from invoice_mailer.fatturapa.fieldlimits import SchemaLimit, check_name
from invoice_mailer.intake import content
from tests.support.fatturapa_samples import make_p7m

PATTERN = re.compile(
    r"^(?P<doc>Fattura)_(?P<number>[^_]+)_(?P<year>\d{4})_(?P<customer>[^_.]+)\.pdf$"
)


def refusal(xml: bytes) -> str | None:
    try:
        safexml.check_xml(io.BytesIO(xml))
    except SchemaLimit as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"number": "1" * 20}, None),
        ({"number": "1" * 21}, "Numero più lungo di 20 caratteri (schema FatturaPA)"),
        ({"customer_name": "B" * 80}, None),
        ({"customer_name": "B" * 81}, "Denominazione più lungo di 80 caratteri (schema FatturaPA)"),
        (
            {"customer_name": None, "first_name": "M" * 61, "last_name": "R"},
            "Nome più lungo di 60 caratteri (schema FatturaPA)",
        ),
        ({"customer_tax_code": "RSSMRA80A01H501U"}, None),
        ({"customer_tax_code": "01234567890"}, None),
        (
            {"customer_tax_code": "RSSMRA"},
            "CodiceFiscale più corto di 11 caratteri (schema FatturaPA)",
        ),
        (
            {"customer_tax_code": "R" * 17},
            "CodiceFiscale più lungo di 16 caratteri (schema FatturaPA)",
        ),
        (
            {"customer_vat": ("IT", "9" * 29)},
            "IdCodice più lungo di 28 caratteri (schema FatturaPA)",
        ),
        ({"date": "2014-12-18+01:00"}, None),
        (
            {"date": "2026-13-01"},
            "Data '2026-13-01' non è una data valida (schema FatturaPA: AAAA-MM-GG)",
        ),
        ({"doc_type": "TD1"}, "TipoDocumento 'TD1' non valido (schema FatturaPA: TD e due cifre)"),
        ({"number": " 12 ", "pad": "  "}, None),  # trailing-space exports: the value is trimmed
    ],
)
def test_schema_limits(fields, reason):
    assert refusal(make_fattura_xml(**fields)) == reason


def test_other_xml_is_not_bound_by_the_fatturapa_schema():
    assert refusal(b"<Ordine><DatiGeneraliDocumento><Numero>" + b"1" * 500 + b"</Numero>"
                   b"</DatiGeneraliDocumento></Ordine>") is None  # fmt: skip


def test_an_endless_field_is_refused_with_bounded_memory():
    assert refusal(make_fattura_xml(number="7" * 2_000_000)) == (
        "Numero più lungo di 20 caratteri (schema FatturaPA)"
    )


def test_inside_a_p7m_the_refusal_stays_final():
    envelope = make_p7m(make_fattura_xml(number="1" * 21))
    with pytest.raises(SchemaLimit, match="inside it: Numero più lungo di 20 caratteri"):
        content.check_document("p7m", io.BytesIO(envelope), len(envelope))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Fattura_12345678901234567890_2026_C042.pdf", None),
        (
            "Fattura_123456789012345678901_2026_C042.pdf",
            "il gruppo number del nome del file è più lungo di 20 caratteri (customers.filename)",
        ),
        (
            f"Fattura_1_2026_{'C' * 41}.pdf",
            "il gruppo customer del nome del file è più lungo di 40 caratteri (customers.filename)",
        ),
        ("è" * 128 + ".pdf", "nome del file più lungo di 255 byte (260)"),
    ],
)
def test_file_name_limits(name, reason):
    try:
        check_name(name, PATTERN)
    except SchemaLimit as exc:
        assert str(exc) == reason
    else:
        assert reason is None

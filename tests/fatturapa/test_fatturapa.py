"""FatturaPA parsing: the official samples, and every quirk real exports come with."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from invoice_mailer.demo.samples import make_fattura_xml
from invoice_mailer.errors import DocumentError
from invoice_mailer.fatturapa.reader import FatturaInfo, InvoiceInfo, parse, parse_file_bytes
from tests.support.fatturapa_samples import make_p7m, sample_bytes

FPR01 = sample_bytes("IT01234567890_FPR01.xml")
FPR02 = sample_bytes("IT01234567890_FPR02.xml")
INVOICE_123 = InvoiceInfo("TD01", "Fattura", "123", datetime.date(2014, 12, 18))


def test_official_sample_fpr01() -> None:
    assert parse(FPR01) == FatturaInfo(
        format="FPR12",
        customer_vat=None,
        customer_tax_code="09876543210",
        customer_name="DITTA BETA",
        codice_destinatario="ABC1234",
        pec_destinatario=None,
        invoices=(INVOICE_123,),
        customer_country="IT",  # no IdFiscaleIVA: the Sede's Nazione
    )
    assert not parse(FPR01).abroad


def test_official_sample_fpr02_addressed_by_pec() -> None:
    info = parse(FPR02)
    assert info.codice_destinatario == "0000000"
    assert info.pec_destinatario == "betagamma@pec.it"
    assert info.customer_tax_code == "09876543210"
    assert info.customer_name == "BETA GAMMA"
    assert info.invoices == (INVOICE_123,)


@pytest.mark.parametrize(
    ("variant", "country", "abroad"),
    [
        ({"customer_vat": ("FR", "12345678901")}, "FR", True),  # IdPaese
        ({"customer_vat": ("de", "123456789")}, "DE", True),  # written in lower case
        ({"customer_vat": None, "customer_nation": "AT"}, "AT", True),  # only the Sede
        ({"customer_vat": ("IT", "01234567890"), "customer_nation": "DE"}, "IT", False),
        ({"customer_vat": None, "codice_destinatario": "XXXXXXX"}, None, True),  # SdI's code
        ({"customer_vat": ("IT", "01234567890")}, "IT", False),
        ({"customer_vat": None, "customer_tax_code": "RSSMRA80A01H501U"}, None, False),
    ],
)
def test_a_customer_abroad_is_told_by_idpaese_sede_or_codice_destinatario(
    variant: dict, country: str | None, abroad: bool
) -> None:
    info = parse(make_fattura_xml(**variant))
    assert (info.customer_country, info.abroad) == (country, abroad)


def test_results_are_frozen() -> None:
    info = parse(FPR01)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.customer_name = "someone else"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.invoices[0].number = "999"  # type: ignore[misc]


@pytest.mark.parametrize("form", ["der", "base64", "base64x2", "pem", "cms-pem"])
def test_signed_file_is_opened_by_name(form: str) -> None:
    name = "IT01234567890_FPR01.xml.p7m"
    assert parse_file_bytes(name, make_p7m(FPR01, form)) == parse(FPR01)


def test_plain_file_by_name_is_parsed_as_is() -> None:
    assert parse_file_bytes("IT01234567890_FPR02.XML", FPR02) == parse(FPR02)


def test_batch_of_two_bodies_gives_two_invoices() -> None:
    xml = make_fattura_xml(
        invoices=[("TD01", "FT/2026/0001", "2026-03-01"), ("TD04", "NC/2026/0002", "2026-03-02")]
    )
    assert parse(xml).invoices == (
        InvoiceInfo("TD01", "Fattura", "FT/2026/0001", datetime.date(2026, 3, 1)),
        InvoiceInfo("TD04", "Nota di credito", "NC/2026/0002", datetime.date(2026, 3, 2)),
    )


@pytest.mark.parametrize("namespace", ["p", "ns2", "default", "legacy", "none"])
def test_every_namespace_style(namespace: str) -> None:
    info = parse(make_fattura_xml(namespace=namespace))
    assert info.customer_vat == "IT09876543210"
    assert info.customer_name == "DITTA BETA"
    assert info.codice_destinatario == "ABC1234"
    assert info.invoices == (INVOICE_123,)


def test_default_namespace_with_empty_xmlns_on_the_children() -> None:
    xml = make_fattura_xml(namespace="default")
    assert b'<FatturaElettronicaHeader xmlns="">' in xml  # the quirk is really there
    assert parse(xml).customer_vat == "IT09876543210"


def test_legacy_v11_reports_its_format() -> None:
    xml = make_fattura_xml(namespace="legacy", formato="SDI11")
    assert b"fatturapa/v1.1" in xml
    assert parse(xml).format == "SDI11"


def test_public_administration_format() -> None:
    assert parse(make_fattura_xml(formato="FPA12", codice_destinatario="UFY9MH")).format == "FPA12"


def test_format_falls_back_to_the_versione_attribute() -> None:
    xml = make_fattura_xml(formato="FPR12").replace(
        b"<FormatoTrasmissione>FPR12</FormatoTrasmissione>", b""
    )
    assert parse(xml).format == "FPR12"


def test_utf8_bom_and_missing_declaration() -> None:
    assert parse(make_fattura_xml(bom=True)).invoices == (INVOICE_123,)
    assert parse(make_fattura_xml(declaration=None)).invoices == (INVOICE_123,)


@pytest.mark.parametrize(
    "declaration",
    [None, '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0' encoding='utf8'?>"],
)
def test_windows_1252_bytes_are_read_as_windows_1252(declaration: str | None) -> None:
    xml = make_fattura_xml(
        customer_name="Caffè Società di Niccolò & C. – €",
        encoding="cp1252",
        declaration=declaration,
    )
    assert parse(xml).customer_name == "Caffè Società di Niccolò & C. – €"


def test_windows_1252_after_a_bom() -> None:
    xml = make_fattura_xml(customer_name="Caffè", encoding="cp1252", bom=True)
    assert parse(xml).customer_name == "Caffè"


def test_utf8_names_stay_utf8() -> None:
    assert parse(make_fattura_xml(customer_name="Società Caffè")).customer_name == "Società Caffè"


def test_spaces_around_values_are_trimmed() -> None:
    info = parse(make_fattura_xml(pad="  \n\t ", pec_destinatario="beta@pec.it"))
    assert info.customer_name == "DITTA BETA"
    assert info.customer_vat == "IT09876543210"
    assert info.codice_destinatario == "ABC1234"
    assert info.pec_destinatario == "beta@pec.it"
    assert info.invoices == (INVOICE_123,)


def test_number_with_slashes() -> None:
    assert parse(make_fattura_xml(number="12/A/2026")).invoices[0].number == "12/A/2026"


def test_person_with_nome_and_cognome() -> None:
    xml = make_fattura_xml(customer_name=None, first_name="Mario", last_name="Rossi")
    assert parse(xml).customer_name == "Mario Rossi"


def test_customer_with_both_vat_and_tax_code() -> None:
    xml = make_fattura_xml(customer_vat=("it", "01234567890"), customer_tax_code="RSSMRA80A01H501U")
    info = parse(xml)
    assert (info.customer_vat, info.customer_tax_code) == ("IT01234567890", "RSSMRA80A01H501U")


def test_customer_without_vat() -> None:
    info = parse(make_fattura_xml(customer_vat=None, customer_tax_code="RSSMRA80A01H501U"))
    assert (info.customer_vat, info.customer_tax_code) == (None, "RSSMRA80A01H501U")


@pytest.mark.parametrize(
    ("doc_type", "doc"),
    [
        ("TD01", "Fattura"),
        ("TD02", "Acconto/anticipo su fattura"),
        ("TD04", "Nota di credito"),
        ("TD05", "Nota di debito"),
        ("TD06", "Parcella"),
        ("TD24", "Fattura differita"),
        ("TD16", "Documento"),
        ("TD26", "Documento"),
    ],
)
def test_document_names(doc_type: str, doc: str) -> None:
    invoice = parse(make_fattura_xml(doc_type=doc_type)).invoices[0]
    assert (invoice.doc_type, invoice.doc) == (doc_type, doc)


def test_date_with_a_time_zone() -> None:
    assert parse(make_fattura_xml(date="2026-01-31+01:00")).invoices[0].date == datetime.date(
        2026, 1, 31
    )


# --- refusals --------------------------------------------------------------------------------


def refusal(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        parse(data)
    return str(caught.value)


def test_other_xml_is_not_an_invoice() -> None:
    assert refusal(b"<Invoice><ID>1</ID></Invoice>") == (
        "not a FatturaPA invoice: the root element is Invoice, not FatturaElettronica"
    )


def test_missing_body() -> None:
    xml = make_fattura_xml()
    cut = xml[: xml.index(b"<FatturaElettronicaBody>")] + b"</p:FatturaElettronica>"
    assert refusal(cut) == "not a FatturaPA invoice: no FatturaElettronicaBody"


def test_missing_header() -> None:
    xml = b'<FatturaElettronica versione="FPR12"><FatturaElettronicaBody/></FatturaElettronica>'
    assert refusal(xml) == "not a FatturaPA invoice: FatturaElettronicaHeader is missing"


def test_missing_number_in_the_second_body_of_a_batch() -> None:
    xml = make_fattura_xml(invoices=[("TD01", "1", "2026-01-01"), ("TD01", "", "2026-01-02")])
    assert refusal(xml) == "not a FatturaPA invoice: body 2 of 2 has no Numero"


def test_missing_date() -> None:
    assert refusal(make_fattura_xml(date=" ")) == "not a FatturaPA invoice: the body has no Data"


def test_impossible_date() -> None:
    assert refusal(make_fattura_xml(date="2026-02-30")) == (
        "Data '2026-02-30' non è una data valida (schema FatturaPA: AAAA-MM-GG)"
    )


def test_not_well_formed() -> None:
    assert refusal(make_fattura_xml()[:-5]).startswith("XML is not well-formed: line 2, column")


def test_dtd_is_refused() -> None:
    xml = b'<!DOCTYPE FatturaElettronica SYSTEM "http://example.invalid/x.dtd">' + (
        make_fattura_xml(declaration=None)
    )
    assert refusal(xml) == "XML declares a DTD, which is refused for safety"


def test_garbage_p7m_by_name() -> None:
    with pytest.raises(DocumentError, match=r"^not a signed p7m envelope: "):
        parse_file_bytes("IT01234567890_FPR01.xml.p7m", b"not signed at all")

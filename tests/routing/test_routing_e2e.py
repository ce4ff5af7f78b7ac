"""Routing end to end: the real service process, a real SMTP server, files dropped in the folder.

What a customer notices: which address each invoice reaches, what is attached, and that a held
invoice leaves as soon as the address book knows its customer.
"""

from __future__ import annotations

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from tests.support.fatturapa_samples import make_p7m, sample_bytes
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book

ROSSI = (
    "C042",
    "Mario Rossi S.p.A.",
    "mario@rossi.example",
    "rossi@pec.example",
    "IT01234567890",
    "",
)
BETA = ("C007", "Beta S.r.l.", "info@beta.example", "", "IT09876543210", "")


def attachments(received) -> list[tuple[str, str, bytes]]:
    return [
        (part.get_filename(), part.get_content_type(), part.get_content())
        for part in received.message.iter_attachments()
    ]


def test_pdf_named_by_the_pattern_reaches_the_customers_pec(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    pdf = make_pdf(text="Fattura 55")
    with ServiceProcess(config):
        drop(tmp_path / "export", "Ordine_55_2026_C042.pdf", pdf)
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
    assert received.rcpt_tos == ("rossi@pec.example",)
    assert received.message["Subject"].startswith("Ordine n. 55 del ")
    assert "Gentile Mario Rossi S.p.A.," in received.message.get_body().get_content()
    assert attachments(received) == [("Ordine_55_2026_C042.pdf", "application/pdf", pdf)]


def test_fatturapa_xml_reaches_the_customer_found_by_vat_or_codice_fiscale(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    config = service_config(
        tmp_path, smtp_server, customers={"address_book": str(book), "send": ["xml"]}
    )
    # No customer code in either name: a quirky export (BOM, default namespace) found by
    # P.IVA, and the tax agency's own sample, whose customer has only a Codice Fiscale.
    quirky = make_fattura_xml(
        customer_vat=("IT", "01234567890"),
        number="41",
        date="2026-04-01",
        namespace="default",
        bom=True,
    )
    with ServiceProcess(config):
        drop(tmp_path / "export", "IT01234567890_0000A.xml", quirky)
        drop(
            tmp_path / "export", "IT01234567890_FPR01.xml", sample_bytes("IT01234567890_FPR01.xml")
        )
        received = smtp_server.wait_for_messages(2, timeout=15)
    by_subject = {r.message["Subject"]: r for r in received}
    assert by_subject["Fattura n. 41 del 01/04/2026"].rcpt_tos == ("rossi@pec.example",)
    assert by_subject["Fattura n. 123 del 18/12/2014"].rcpt_tos == ("info@beta.example",)


def test_signed_p7m_reaches_the_customer_as_the_original_envelope(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    config = service_config(
        tmp_path, smtp_server, customers={"address_book": str(book), "send": ["xml"]}
    )
    p7m = make_p7m(make_fattura_xml(number="9", date="2026-02-01"), "base64")
    with ServiceProcess(config):
        drop(tmp_path / "export", "IT01234567890_0000B.xml.p7m", p7m)
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
    assert received.rcpt_tos == ("info@beta.example",)
    assert received.message["Subject"] == "Fattura n. 9 del 01/02/2026"
    assert attachments(received) == [("IT01234567890_0000B.xml.p7m", "application/pkcs7-mime", p7m)]


def test_pdf_and_xml_of_one_invoice_arrive_as_one_message(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI, BETA])
    # A long pair_wait: were they not paired, nothing would arrive within the deadline.
    customers = {"address_book": str(book), "send": ["pdf", "xml"], "pair_wait": "60s"}
    config = service_config(tmp_path, smtp_server, customers=customers)
    pdf = make_pdf()
    xml = make_fattura_xml(customer_vat=("IT", "01234567890"), number="123/2026", date="2026-03-10")
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_123_2026_C042.pdf", pdf)
        drop(tmp_path / "export", "IT01234567890_0000A.xml", xml)
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("rossi@pec.example",)
        assert received.message["Subject"] == "Fattura n. 123 del 10/03/2026"
        assert attachments(received) == [
            ("Fattura_123_2026_C042.pdf", "application/pdf", pdf),
            ("IT01234567890_0000A.xml", "application/xml", xml),
        ]
        deliveries = service.query("SELECT purpose FROM deliveries")
    assert deliveries == [{"purpose": "customer"}]


def test_held_document_is_sent_when_the_address_book_gains_its_customer(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", [ROSSI])
    config = service_config(tmp_path, smtp_server, customers={"address_book": str(book)})
    pdf = make_pdf()
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_8_2026_C007.pdf", pdf)
        held = wait_until(lambda: service.query("SELECT * FROM documents WHERE state = 'held'"), 15)
        assert held[0]["reason"] == "no customer found in the address book (looked up code C007)"
        assert smtp_server.messages == []
        write_address_book(book, [ROSSI, BETA])  # the admin adds the customer
        (received,) = smtp_server.wait_for_messages(1, timeout=10)
        assert received.rcpt_tos == ("info@beta.example",)
        assert attachments(received) == [("Fattura_8_2026_C007.pdf", "application/pdf", pdf)]
        assert "Fattura_8_2026_C007.pdf: held" in service.log()

"""End to end: the real service process, a real SMTP server, real files dropped in the folder."""

from __future__ import annotations

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.service_harness import ServiceProcess, service_config, write_address_book

CUSTOMERS = [
    ("C042", "Mario Rossi S.p.A.", "mario@rossi.example", "rossi@pec.example", "IT01234567890", ""),
    ("C007", "Beta S.r.l.", "info@beta.example", "", "IT09876543210", ""),
]


def test_pdf_by_file_name_reaches_the_customer(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book), "prefer": "email"},
        copy_to=["archivio@example.it"],
    )
    pdf = make_pdf(size=20_000)
    with ServiceProcess(config) as service:
        drop(tmp_path / "export", "Fattura_123_2026_C042.pdf", pdf)
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
        assert set(received.rcpt_tos) == {"mario@rossi.example", "archivio@example.it"}
        message = received.message
        assert message["Subject"] == f"Fattura n. 123 del {message['Subject'][-10:]}"
        assert message["Cc"] == "archivio@example.it"
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_filename() == "Fattura_123_2026_C042.pdf"
        assert attachment.get_content() == pdf
        wait_until(
            lambda: list((tmp_path / "state" / "sent").rglob("Fattura_123_2026_C042.pdf")), 10
        )
        assert not (tmp_path / "export" / "Fattura_123_2026_C042.pdf").exists()
        assert "sent Fattura_123_2026_C042.pdf to mario@rossi.example" in service.log()


def test_fatturapa_xml_found_by_vat(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book), "send": ["pdf", "xml"], "pair_wait": "1s"},
    )
    xml = make_fattura_xml(
        customer_vat=("IT", "09876543210"), invoices=[("TD01", "77", "2026-11-02")]
    )
    with ServiceProcess(config):
        drop(tmp_path / "export", "IT01234567890_0000A.xml", xml)
        (received,) = smtp_server.wait_for_messages(1, timeout=15)
        assert received.rcpt_tos == ("info@beta.example",)
        assert received.message["Subject"] == "Fattura n. 77 del 02/11/2026"
        (attachment,) = list(received.message.iter_attachments())
        assert attachment.get_content_type() == "application/xml"

"""Issue 13.5: document fields are bounded by the FatturaPA schema (a 400,000-character Numero
once delayed every other invoice and put megabytes into a subject); subjects stay short."""

from __future__ import annotations

from invoice_mailer.delivery import messagetext
from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from tests.support.helpers import drop, wait_until
from tests.support.reliability_harness import Supervisor, query
from tests.support.service_harness import service_config, write_address_book

LONG_NAME = "Mario Rossi S.p.A. " * 300  # a pasted-in block of text in the address book
CUSTOMERS = [("C042", LONG_NAME, "mario@rossi.example", "", "IT01234567890", "")]
FAILED = "SELECT name, reason FROM documents WHERE state = 'failed' ORDER BY name"


def test_fields_beyond_the_schema_fail_and_the_rest_is_sent(tmp_path, smtp_server):
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book), "send": ["pdf", "xml"], "pair_wait": "0.5s"},
        templates={"customer_subject": "{doc} n. {number} - {customer_name}"},
    )
    vat = ("IT", "01234567890")
    huge = make_fattura_xml(customer_vat=vat, invoices=[("TD01", "9" * 400_000, "2026-11-02")])
    bad_date = make_fattura_xml(customer_vat=vat, invoices=[("TD01", "10", "2026-02-30")])
    with Supervisor(config) as service:
        export = tmp_path / "export"
        drop(export, "IT01234567890_0000A.xml", huge)
        drop(export, "IT01234567890_0000B.xml", bad_date)
        drop(export, f"Fattura_{'1' * 21}_2026_C042.pdf", make_pdf(text="Fattura lunga"))
        drop(export, "Fattura_12_2026_C042.pdf", make_pdf(text="Fattura 12"))
        (received,) = smtp_server.wait_for_messages(1, timeout=30)
        failed = wait_until(lambda: len(query(service.state_dir, FAILED)) == 3 and FAILED, 20)
        assert query(service.state_dir, failed) == [
            {
                "name": f"Fattura_{'1' * 21}_2026_C042.pdf",
                "reason": "il gruppo number del nome del file è più lungo di 20 caratteri "
                "(customers.filename)",
            },
            {
                "name": "IT01234567890_0000A.xml",
                "reason": "Numero più lungo di 20 caratteri (schema FatturaPA)",
            },
            {
                "name": "IT01234567890_0000B.xml",
                "reason": "Data '2026-02-30' non è una data valida (schema FatturaPA: AAAA-MM-GG)",
            },
        ]
        assert service.stop() == 0
    subject = received.message["Subject"]
    assert subject.startswith("Fattura n. 12 - Mario Rossi S.p.A.")
    assert len(subject) <= messagetext.MAX_SUBJECT and subject.endswith("…")
    header, _body = received.data.split(b"\r\n\r\n", 1)
    assert len(header) < 2000  # the whole header block, folded lines and all
    assert "Numero più lungo di 20 caratteri" in (tmp_path / "state" / "failed").joinpath(
        "IT01234567890_0000A.xml.reason.txt"
    ).read_text(encoding="utf-8")

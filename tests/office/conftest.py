"""The office's documents, written by the real service through a real SMTP server: invoices
201, 2010 and 2026 (a number inside another), an XML with its customer's P.IVA inside, a
customer with an accented name, and a held file whose name is HTML. Then what came back to the
sender's mailbox, recorded as the receipts thread records it: invoice 201's PEC receipts and
the XML's SdI notice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from invoice_mailer.config.load import load_config
from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.receipts.mailbox import Fetched
from invoice_mailer.receipts.recording import ProofKeeper
from tests.support.helpers import drop, wait_until
from tests.support.receiptmail import SENDER, pec_receipt
from tests.support.sdimail import sdi_mail, sdi_notice
from tests.support.service_harness import ServiceProcess, service_config, write_address_book
from tests.support.smtpserver import SmtpTestServer

CUSTOMERS = [
    ("C042", "Società Rossi S.p.A.", "", "rossi@pec.rossi.example", "", ""),
    ("C050", "Verdi Impianti S.r.l.", "amministrazione@verdi.example", "", "IT05556667770", ""),
]
HOSTILE = "Fattura_9_2026_<img src=x onerror=alert(1)>.pdf"
PDFS = ("Fattura_201_2026_C042.pdf", "Fattura_2010_2026_C042.pdf", "Fattura_2026_2026_C050.pdf")
XML = "IT01234567890_00A77.xml"
ROSSI, COPY = "rossi@pec.rossi.example", "archivio@ufficio.example"
SDI_ID = "4501237"


@dataclass(frozen=True)
class FilledOffice:
    config: Path
    state_dir: Path
    received: dict[str, bytes]  # Message-ID -> the bytes the SMTP server received
    receipts: dict[str, bytes]  # accettazione, consegna (invoice 201), sdi (the XML): as read


@pytest.fixture(scope="package")
def filled_office(tmp_path_factory) -> FilledOffice:
    tmp_path = tmp_path_factory.mktemp("office")
    book = write_address_book(tmp_path / "clienti.csv", CUSTOMERS)
    with SmtpTestServer("none") as server:
        config = service_config(
            tmp_path,
            server,
            sender={"address": SENDER, "name": "Studio Rossi"},
            customers={"address_book": str(book), "pair_wait": "0.5s"},
            copy_to=["archivio@ufficio.example"],
        )
        with ServiceProcess(config) as service:
            for name in PDFS:
                drop(tmp_path / "export", name, make_pdf(text=name))
            xml = make_fattura_xml(number="77", customer_vat=("IT", "05556667770"))
            drop(tmp_path / "export", XML, xml)
            drop(tmp_path / "export", HOSTILE, make_pdf(text="hostile"))
            messages = server.wait_for_messages(len(PDFS), timeout=20)

            def settled() -> bool:
                states = {r["name"]: r["state"] for r in service.query("SELECT * FROM documents")}
                return (
                    len(states) == 5
                    and states.get(HOSTILE) == "held"
                    and all(states.get(n) == "done" for n in (*PDFS, XML))
                )

            wait_until(settled, 20)
    received = {m.message["Message-ID"]: m.data for m in messages}
    return FilledOffice(config, tmp_path / "state", received, _read_receipts(config, received))


def _read_receipts(config: Path, received: dict[str, bytes]) -> dict[str, bytes]:
    """Invoice 201's accettazione (Rossi is PEC, the copy is not) and Rossi's consegna, and
    SdI's ricevuta di consegna for the XML: stored and recorded by the receipts thread's own
    ProofKeeper, as if read from the mailbox (tests/receipts/ reads them over real IMAP)."""
    (mid,) = [m for m, data in received.items() if b"Fattura_201_2026_C042.pdf" in data]
    notice = sdi_notice("RC", XML, SDI_ID)
    came = {
        "accettazione": pec_receipt("accettazione", mid, addressees={ROSSI: True, COPY: False}),
        "consegna": pec_receipt("avvenuta-consegna", mid, recipient=ROSSI),
        "sdi": sdi_mail(notice, XML.replace(".xml", "_RC_001.xml"), "RC"),
    }
    loaded = load_config(config)
    with Ledger(loaded.state_dir) as ledger:
        keeper = ProofKeeper(loaded, ledger)
        for uid, data in enumerate(came.values(), start=1):
            keeper.look_at(Fetched("INBOX", 1, uid, len(data), data))
        assert keeper.counts == {"receipts": 3, "ignored": 0}
    return came

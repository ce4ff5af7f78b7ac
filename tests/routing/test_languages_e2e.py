"""Customers abroad, end to end: the real service, a real SMTP server, files dropped in the folder,
and the received messages parsed as a mail program would.

A German customer with `Lingua: de` and German templates reads German; a FatturaPA XML for a
French customer with no language reads English; the accountant's bundle stays Italian.
"""

from __future__ import annotations

import re

from invoice_mailer.demo.samples import make_fattura_xml, make_pdf
from tests.support.helpers import drop
from tests.support.service_harness import ServiceProcess, service_config

STUDIO = "studio@commercialista.example"
GERMAN = {
    "customer_subject": "{doc} Nr. {number} vom {date}",
    "customer_body": "Sehr geehrte Damen und Herren,\nanbei erhalten Sie {doc} Nr. {number} "
    "vom {date}.\n",
    "signature": "-- \nRossi S.r.l. - Buchhaltung\n",
    "doc_names": {"Fattura": "Rechnung", "Nota di credito": "Gutschrift", "Ordine": "Bestellung"},
}
SIGNATURE = "-- \nRossi S.r.l. - Amministrazione\n"


def write_book(path, rows: list[str]):
    header = "Codice;RagioneSociale;Email;PEC;PartitaIVA;CodiceFiscale;Invio;Lingua\n"
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def text_of(received) -> str:
    return received.message.get_body(("plain",)).get_content()


def by_recipient(messages) -> dict[str, object]:
    return {message.rcpt_tos[0]: message for message in messages}


def test_a_german_customer_with_lingua_de_gets_a_german_message(tmp_path, smtp_server):
    book = write_book(
        tmp_path / "clienti.csv",
        [
            "C001;Müller Maschinenbau GmbH;einkauf@mueller.example;;DE123456789;;;de",
            "C002;Rossi S.r.l.;amministrazione@rossi.example;;IT01234567890;;;",
            "C003;Kowalski Sp. z o.o.;biuro@kowalski.example;;PL1234567890;;;pl",
        ],
    )
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book)},
        templates={"de": GERMAN},
        signature=SIGNATURE,
        all_to={"address": STUDIO, "session_gap": "1s"},
    )
    with ServiceProcess(config) as service:
        for name in (
            "Fattura_7_2026_C001.pdf",
            "Ordine_8_2026_C002.pdf",
            "Fattura_9_2026_C003.pdf",
        ):
            drop(tmp_path / "export", name, make_pdf(text=name))
        received = by_recipient(smtp_server.wait_for_messages(4, timeout=20))
        log = service.log()

    german = received["einkauf@mueller.example"]
    # The day it was taken (no date in the name), as German writes dates: dd.mm.yyyy.
    assert re.fullmatch(r"Rechnung Nr\. 7 vom \d\d\.\d\d\.\d{4}", german.message["Subject"])
    text = text_of(german)
    assert text.startswith("Sehr geehrte Damen und Herren,\nanbei erhalten Sie Rechnung Nr. 7 vom")
    assert text.endswith("\n-- \nRossi S.r.l. - Buchhaltung\n")  # its own signature
    assert [a.get_filename() for a in german.message.iter_attachments()] == [
        "Fattura_7_2026_C001.pdf"
    ]

    italian = received["amministrazione@rossi.example"]
    assert italian.message["Subject"].startswith("Ordine n. 8 del ")
    assert text_of(italian).startswith("Gentile Rossi S.r.l.,\nin allegato Ordine n. 8 del ")
    assert text_of(italian).endswith("\n-- \nRossi S.r.l. - Amministrazione\n")

    # Polish has no templates: Italian, and the log says so once.
    polish = received["biuro@kowalski.example"]
    assert polish.message["Subject"].startswith("Fattura n. 9 del ")
    assert log.count("no templates for pl (Polish)") == 1
    assert "Fattura_7_2026_C001.pdf: routed to einkauf@mueller.example, in German" in log
    assert "Fattura_9_2026_C003.pdf: routed to biuro@kowalski.example\n" in log

    # The accountant's bundle is Italian whatever the customers read.
    bundle = received[STUDIO]
    assert bundle.message["Subject"].startswith("Documenti emessi - sessione del ")
    body = text_of(bundle)
    assert "Fattura_7_2026_C001.pdf (PDF) - Fattura n. 7" in body
    assert body.endswith("\n-- \nRossi S.r.l. - Amministrazione\n")


def test_an_xml_for_a_french_customer_with_no_language_gets_the_english_fallback(
    tmp_path, smtp_server
):
    book = write_book(
        tmp_path / "clienti.csv",
        [
            "C010;Dupont Import SARL;compta@dupont.example;;FR12345678901;;pdf,xml;",
            "C012;Lefèvre SA;factures@lefevre.example;;FR98765432109;;xml;",
            "C011;Bianchi S.p.A.;fatture@bianchi.example;;IT09876543210;;xml;",
        ],
    )
    config = service_config(
        tmp_path,
        smtp_server,
        customers={"address_book": str(book), "send": ["xml"], "pair_wait": "60s"},
    )
    french = make_fattura_xml(
        number="FPR 12/2026",
        date="2026-03-05",
        customer_vat=("FR", "98765432109"),
        customer_name="Lefèvre SA",
        codice_destinatario="XXXXXXX",
        customer_nation="FR",
    )
    credit_note = make_fattura_xml(
        number="NC 3/2026",
        date="2026-03-06",
        doc_type="TD04",
        customer_vat=("IT", "09876543210"),
    )
    pdf = make_pdf(text="Fattura 13")
    paired = make_fattura_xml(
        number="13",
        date="2026-03-07",
        customer_vat=("FR", "12345678901"),
        customer_name="Dupont Import SARL",
        codice_destinatario="XXXXXXX",
    )
    with ServiceProcess(config):
        drop(tmp_path / "export", "IT01234567890_00012.xml", french)
        drop(tmp_path / "export", "IT01234567890_00013.xml", credit_note)
        # A PDF and its XML of the same invoice: one message, in the XML's language.
        drop(tmp_path / "export", "Fattura_13_2026_C010.pdf", pdf)
        drop(tmp_path / "export", "IT01234567890_00014.xml", paired)
        messages = smtp_server.wait_for_messages(3, timeout=20)

    subjects = {m.message["Subject"]: m for m in messages}
    english = subjects["Invoice no. FPR 12/2026 dated 5 March 2026"]
    assert english.rcpt_tos == ("factures@lefevre.example",)
    assert text_of(english) == (
        "Dear Lefèvre SA,\nplease find attached Invoice no. FPR 12/2026 dated 5 March 2026.\n"
    )
    # The Italian customer of the same office still reads Italian.
    assert subjects["Nota di credito n. NC 3/2026 del 06/03/2026"].rcpt_tos == (
        "fatture@bianchi.example",
    )
    pair = subjects["Invoice no. 13 dated 7 March 2026"]
    assert pair.rcpt_tos == ("compta@dupont.example",)
    assert [a.get_filename() for a in pair.message.iter_attachments()] == [
        "Fattura_13_2026_C010.pdf",
        "IT01234567890_00014.xml",
    ]

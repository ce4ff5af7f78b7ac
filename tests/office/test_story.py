"""Each document's story, from a real ledger: why it went or did not go, and what became of it.
(What the real service writes is in test_web_browser.py and tests/admin/test_status.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

from invoice_mailer.config.load import load_config
from invoice_mailer.ledger import document_changes
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose
from invoice_mailer.office.story import tell
from invoice_mailer.office.wording import reason
from invoice_mailer.receipts.mailbox import Fetched
from invoice_mailer.receipts.recording import ProofKeeper
from tests.support.bouncemail import postfix_bounce
from tests.support.configs import write_config
from tests.support.receiptmail import SENDER, WHEN, our_message, pec_receipt
from tests.support.sdimail import sdi_mail, sdi_notice


def add(ledger, name, state, *, reason_text=None, facts=None, kind="pdf"):
    with ledger.transaction() as db:
        document = document_changes.add(
            db,
            name=name,
            source=f"/export/{name}",
            location=f"spool/{name}",
            kind=kind,
            size=2048,
            mtime_ns=1,
            sha256="ab" * 32,
            state=DocumentState.TAKEN,
            reason=None,
            now=1000.0,
        )
        document_changes.record_route(db, document, state, reason_text, facts or {}, 1001.0)
    return document


def message(ledger, document, purpose, state, *, to, cc=(), error=None, **extra):
    with ledger.transaction() as db:
        delivery = db.execute(
            "INSERT INTO deliveries(purpose, state, to_addrs, cc_addrs, message_id, created_at, "
            "next_attempt_at, attempts, last_error, reply, sent_at, session_id, part, parts) "
            "VALUES (?, ?, ?, ?, ?, 1002, 1500, 1, ?, ?, ?, ?, ?, ?)",
            (
                purpose,
                state,
                json.dumps(list(to)),
                json.dumps(list(cc)),
                f"<{document}.{purpose}@example.it>",
                error,
                extra.get("reply"),
                extra.get("sent_at"),
                extra.get("session_id"),
                extra.get("part"),
                extra.get("parts"),
            ),
        ).lastrowid
        db.execute(
            "INSERT INTO attachments(delivery_id, document_id, position) VALUES (?, ?, 0)",
            (delivery, document),
        )
    return delivery


def story_of(ledger, document):
    row = ledger.one("SELECT * FROM documents WHERE id = ?", document)
    return tell(ledger, row)


def texts(told):
    return [step.text for step in told.steps]


def test_sent_to_the_customer_with_its_copy_and_the_bundle(tmp_path):
    with Ledger(tmp_path) as ledger:
        facts = {"customer_code": "C042", "customer_name": "Rossi", "found_by": "code C042"}
        doc = add(ledger, "Fattura_1_2026_C042.pdf", DocumentState.DONE, facts=facts)
        message(
            ledger,
            doc,
            Purpose.CUSTOMER,
            DeliveryState.SENT,
            to=["r@pec.example"],
            cc=["archivio@ufficio.example"],
            reply="250 2.0.0 Ok",
            sent_at=1003.0,
        )
        message(
            ledger,
            doc,
            Purpose.BUNDLE,
            DeliveryState.SENT,
            to=["studio@example.it"],
            reply="250 Ok",
            sent_at=1004.0,
            session_id=3,
            part=1,
            parts=2,
        )
        told = story_of(ledger, doc)
    kinds = [step.kind for step in told.steps]
    assert kinds == ["taken", "routed", "message", "message"]
    said = texts(told)
    assert said[1] == "Cliente C042 Rossi, trovato per codice C042: da inviare a r@pec.example"
    assert said[2] == (
        "Messaggio al cliente inviato a r@pec.example (Cc archivio@ufficio.example); "
        "il server ha risposto «250 2.0.0 Ok»"
    )
    assert said[3].startswith(
        "Nel pacchetto per il commercialista (Tutto a), sessione 3, parte 1 di 2"
    )
    customer = told.messages[0]
    assert [(r["address"], r["role"]) for r in customer["recipients"]] == [
        ("r@pec.example", "A"),
        ("archivio@ufficio.example", "Cc"),
    ]
    assert customer["eml"] is False  # no message file recorded: nothing to download


def test_why_not_sent_held_ambiguous_refused_not_for_the_customer(tmp_path):
    with Ledger(tmp_path) as ledger:
        held = add(
            ledger,
            "a.pdf",
            DocumentState.HELD,
            reason_text="no customer found in the address book (looked up code C999)",
        )
        ambiguous = add(
            ledger,
            "b.pdf",
            DocumentState.HELD,
            reason_text="ambiguous: P.IVA IT01234567890 is on 2 rows of the address book: "
            "C001 Rossi (line 2) and C002 Rossi bis (line 3); correct the address book "
            "(reloaded by itself)",
        )
        refused = add(
            ledger,
            "c.pdf",
            DocumentState.FAILED,
            reason_text="not a PDF (it does not start with %PDF-)",
        )
        xml = add(
            ledger,
            "IT01234567890_1.xml",
            DocumentState.DONE,
            kind="xml",
            facts={"customer_code": "C001", "customer_name": "Rossi"},
        )
        stories = {
            k: texts(story_of(ledger, d))[1]
            for k, d in (
                ("held", held),
                ("ambiguous", ambiguous),
                ("refused", refused),
                ("xml", xml),
            )
        }
    assert stories["held"] == "In attesa: cliente sconosciuto (cercato per codice C999)"
    assert stories["ambiguous"] == (
        "In attesa, ambiguo: P.IVA IT01234567890 è su 2 righe dell'anagrafica: C001 Rossi "
        "(riga 2) and C002 Rossi bis (riga 3); va corretta l'anagrafica (si ricarica da sola)"
    )
    assert stories["refused"] == "Scartato all'arrivo: non è un PDF (non inizia con %PDF-)"
    assert stories["xml"] == "XML non previsto per il cliente (customers.send); cliente C001 Rossi"


def test_a_failure_and_the_later_file_that_superseded_it(tmp_path):
    with Ledger(tmp_path) as ledger:
        old = add(ledger, "Fattura_1_2026_C9.pdf", DocumentState.ROUTED)
        message(
            ledger,
            old,
            Purpose.CUSTOMER,
            DeliveryState.FAILED,
            to=["x@example.it"],
            error="550 5.1.1 user unknown (RCPT TO x@example.it)",
        )
        new = add(ledger, "Fattura_1_2026_C042.pdf", DocumentState.DONE)
        with ledger.transaction() as db:  # as archive/closing.py leaves it
            db.execute(
                "UPDATE documents SET state = ?, reason = ? WHERE id = ?",
                (
                    DocumentState.SUPERSEDED,
                    f"superseded by document {new} (Fattura_1_2026_C042.pdf), which was sent",
                    old,
                ),
            )
        before, after = story_of(ledger, old), story_of(ledger, new)
    assert (
        "rifiutato dal server di posta: «550 5.1.1 user unknown» (1 tentativo)" in texts(before)[2]
    )
    assert texts(before)[-1] == (
        f"Sostituito dal documento {new} (Fattura_1_2026_C042.pdf), che è stato inviato"
    )
    assert before.steps[-1].document_id == new
    assert (
        texts(after)[-1] == f"Ha sostituito il documento {old} (Fattura_1_2026_C9.pdf), non inviato"
    )


def on(moment: float) -> str:
    """How admin/proofs.py words a time: "il 12/03/2026 alle 10:15" (local time)."""
    return time.strftime("il %d/%m/%Y alle %H:%M", time.localtime(moment))


def test_each_recipients_proof_each_receipt_and_the_sdi_outcome(tmp_path):
    """Receipts recorded as the receipts thread records them (ProofKeeper, real files): the
    PEC customer's accettazione and consegna, a bounce for the ordinary Cc, SdI's scarto."""
    imap = {"host": "imap.example.it", "password": "x"}
    config = load_config(
        write_config(tmp_path, sender={"address": SENDER}, receipts={"imap": imap, "pec": True})
    )
    name, pec, copy = (
        "IT01234567890_00001.xml",
        "Cliente@PEC.bianchi.it",
        "archivio@ufficio.example",
    )
    read_at = WHEN.timestamp() + 3600
    with Ledger(config.state_dir) as ledger:
        doc = add(ledger, name, DocumentState.DONE, kind="xml")
        sent = message(ledger, doc, Purpose.CUSTOMER, DeliveryState.SENT, to=[pec], cc=[copy],
                       reply="250 Ok", sent_at=WHEN.timestamp() - 60)  # fmt: skip
        mid = f"<{doc}.customer@example.it>"
        came = {
            "accettazione": pec_receipt("accettazione", mid, addressees={pec: True, copy: False}),
            "consegna": pec_receipt("avvenuta-consegna", mid, recipient=pec.lower()),
            "bounce": postfix_bounce(our_message(mid, copy), copy),
            "scarto": sdi_mail(sdi_notice("NS", name, "4501237"), f"{name[:-4]}_NS_001.xml", "NS"),
        }
        keeper = ProofKeeper(config, ledger, clock=lambda: read_at)
        for uid, data in enumerate(came.values(), start=1):
            keeper.look_at(Fetched("INBOX", 7, uid, len(data), data))
        assert keeper.counts == {"receipts": 4, "ignored": 0}
        told = story_of(ledger, doc)
    kinds = [step.kind for step in told.steps]
    assert kinds == ["taken", "routed", "message", "receipt", "receipt",
                     "not-delivered", "sdi"]  # fmt: skip
    provider = on(WHEN.timestamp())
    said = texts(told)
    assert said[3] == (f"Ricevuta di accettazione per {pec}, {copy}: accettata {provider}")
    assert said[4] == f"Ricevuta di avvenuta consegna per {pec.lower()}: consegnata {provider}"
    assert said[5].startswith(
        f"Messaggio di ritorno (mancata consegna) per {copy}: non consegnata: bounced by "
        "mx1.example.net: 5.1.1"
    )
    assert said[6] == (
        "SdI: NS, scartata (notifica di scarto), il 12/03/2026 alle "
        f"{time.strftime('%H:%M', time.localtime(told.steps[6].at))}: 00404 Fattura duplicata; "
        "identificativo SdI 4501237"
    )
    # Each step names its stored receipt by id; the story knows where its exact bytes lie.
    stored = {r["id"]: r for r in told.receipts}
    by_step = [Path(stored[step.receipt_id]["path"]).read_bytes() for step in told.steps[3:]]
    assert by_step == list(came.values())
    assert all(step.delivery_id == sent for step in told.steps[3:6])
    assert told.steps[5].at == read_at  # a bounce has no provider's time: when it was read
    # Per recipient: the proof in words, and the receipt behind it.
    (customer,) = told.messages
    words = {
        r["address"]: (r["proof"], r["words"], r["receipt_id"]) for r in customer["recipients"]
    }
    assert words[pec] == ("delivered", f"consegnata {provider}", told.steps[4].receipt_id)
    assert words[copy][0] == "not-delivered" and words[copy][2] == told.steps[5].receipt_id
    assert words[copy][1].startswith("non consegnata: bounced by mx1.example.net: 5.1.1")
    assert customer["recipients"][0]["role"] == "A" and customer["recipients"][1]["role"] == "Cc"
    # The XML's SdI outcome, with its IdentificativoSdI and the notice.
    document = told.document
    assert (document["sdi"], document["sdi_reason"], document["sdi_id"]) == (
        "NS",
        "00404 Fattura duplicata",
        "4501237",
    )
    assert document["sdi_receipt_id"] == told.steps[6].receipt_id
    assert document["sdi_words"].startswith("SdI: NS, scartata (notifica di scarto), il ")


def test_a_message_sent_before_receipts_were_read_and_one_never_sent(tmp_path):
    with Ledger(tmp_path) as ledger:
        doc = add(ledger, "Fattura_3_2026_C042.pdf", DocumentState.DONE)
        message(ledger, doc, Purpose.CUSTOMER, DeliveryState.SENT, to=["r@example.it"],
                sent_at=1003.0)  # fmt: skip
        message(ledger, doc, Purpose.COPY, DeliveryState.FAILED, to=["c@example.it"],
                error="550 5.1.1 user unknown")  # fmt: skip
        told = story_of(ledger, doc)
    sent, failed = (m["recipients"][0] for m in told.messages)
    assert (sent["proof"], sent["words"], sent["receipt_id"]) == (
        "sent",
        "inviata (nessuna ricevuta)",
        None,
    )
    assert (failed["proof"], failed["words"]) == (None, "")
    assert told.receipts == [] and "receipt" not in [step.kind for step in told.steps]


def test_a_reason_nobody_translated_is_shown_as_written():
    assert reason("disk on fire") == "disk on fire"
    assert reason(None) == ""

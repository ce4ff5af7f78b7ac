"""Each document's story, from a real ledger: why it went or did not go, and what became of it.
(What the real service writes is in test_web_browser.py and tests/admin/test_status.py.)"""

from __future__ import annotations

import json

from invoice_mailer.ledger import document_changes
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose
from invoice_mailer.office.story import tell
from invoice_mailer.office.wording import reason


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


def message(ledger, document, purpose, state, *, to, cc=(), error=None, proof=None, **extra):
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


def test_receipts_and_the_sdi_outcome_appear_once_the_ledger_has_them(tmp_path):
    """The hook for proof of delivery: a `proof` per message and an `sdi` per document."""
    with Ledger(tmp_path) as ledger:
        ledger.db.execute("ALTER TABLE deliveries ADD COLUMN proof TEXT")
        ledger.db.execute("ALTER TABLE documents ADD COLUMN sdi TEXT")
        doc = add(ledger, "IT01234567890_2.xml", DocumentState.DONE, kind="xml")
        delivery = message(ledger, doc, Purpose.CUSTOMER, DeliveryState.SENT, to=["R@pec.example"])
        proof = {
            "r@pec.example": {
                "proof": "delivered",
                "proof_at": 1100.0,
                "receipt": "receipts/2026/12/1.eml",
            }
        }
        ledger.db.execute(
            "UPDATE deliveries SET proof = ? WHERE id = ?", (json.dumps(proof), delivery)
        )
        ledger.db.execute("UPDATE documents SET sdi = 'RC' WHERE id = ?", (doc,))
        told = story_of(ledger, doc)
    (recipient,) = told.messages[0]["recipients"]
    assert (recipient["proof"], recipient["proof_at"], recipient["receipt"]) == (
        "delivered",
        1100.0,
        True,
    )
    assert texts(told)[-1] == "Esito SdI: RC - consegnata al cliente (ricevuta di consegna)"


def test_a_reason_nobody_translated_is_shown_as_written():
    assert reason("disk on fire") == "disk on fire"
    assert reason(None) == ""

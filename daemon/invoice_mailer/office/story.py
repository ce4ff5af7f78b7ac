"""One document's whole story, from the ledger: taken, routed (to whom and why, or why not),
each message with its recipients, attempts and the server's words, the accountant's bundle it
travelled in, the receipts, bounces and SdI notices that came back (receiptstory.py), failures
and what superseded them. `status --find` prints it, `--json` and the web page show the same
data.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from invoice_mailer.ledger import attachments, deliveries, delivery_recipients, documents, receipts
from invoice_mailer.ledger import search as queries
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose
from invoice_mailer.office import receiptstory, wording
from invoice_mailer.office.steps import Step, Story

__all__ = ["Step", "Story", "message", "summary", "tell"]


def tell(ledger: Ledger, row: sqlite3.Row) -> Story:
    """The story of the document `row`, read from the ledger."""
    db, state_dir = ledger.db, ledger.state_dir
    facts = documents.info_of(row)
    rows = deliveries.of_document(db, row["id"])
    ids = [d["id"] for d in rows]
    names = attachments.names_by_delivery(db, ids)
    known = delivery_recipients.of_deliveries(db, ids)
    told = receiptstory.receipts(receipts.of_document(db, row["id"], ids), state_dir)
    messages = []
    for delivery in rows:
        its = receiptstory.recipients(delivery, known.get(delivery["id"], []), state_dir)
        messages.append(message(delivery, names.get(delivery["id"], []), its))
    document = {**summary(row, facts), **receiptstory.sdi(row, told)}
    steps = [_taken(row)]
    steps += _routing(row, facts, messages)
    for entry in messages:
        steps.append(_message_step(entry))
        steps += receiptstory.message_steps(entry, told)
    steps += receiptstory.sdi_steps(document, told)
    steps += _closing(db, row)
    return Story(document, steps, messages, told)


def summary(row: sqlite3.Row, facts: dict[str, Any]) -> dict[str, Any]:
    """What the document is: its file, kind, number, date, customer and where it lies now."""
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "kind_label": wording.KINDS.get(row["kind"], row["kind"].upper()),
        "state": row["state"],
        "state_label": wording.DOCUMENT_STATES.get(row["state"], row["state"]),
        "doc": facts.get("doc", ""),
        "number": facts.get("number") or row["number"] or "",
        "date": facts.get("date", ""),
        "customer_code": row["customer_code"] or "",
        "customer_name": row["customer_name"] or facts.get("xml_name", ""),
        "vat": facts.get("xml_vat") or facts.get("customer_vat") or "",
        "tax_code": facts.get("xml_tax_code") or facts.get("customer_tax_code") or "",
        "size": row["size"],
        "sha256": row["sha256"],
        "source": row["source"],
        "location": row["location"],
        "taken_at": row["taken_at"],
        "updated_at": row["updated_at"],
        "reason": row["reason"],
    }


def message(row: sqlite3.Row, carried: list[str], recipients: list[dict]) -> dict[str, Any]:
    """One message about the document: its recipients (each with its proof, receiptstory.py),
    Message-ID, attempts, the server's words, times, and the files it carried."""
    return {
        "id": row["id"],
        "purpose": row["purpose"],
        "purpose_label": wording.PURPOSES.get(row["purpose"], row["purpose"]),
        "state": row["state"],
        "state_label": wording.DELIVERY_STATES.get(row["state"], row["state"]),
        "recipients": recipients,
        "message_id": row["message_id"],
        "subject": row["subject"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "reply": row["reply"],
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
        "next_attempt_at": row["next_attempt_at"],
        "eml": bool(row["eml"]) and row["state"] in (DeliveryState.SENT, DeliveryState.UNCONFIRMED),
        "session_id": row["session_id"],
        "part": row["part"],
        "parts": row["parts"],
        "documents": carried,
    }


def _taken(row: sqlite3.Row) -> Step:
    kind = wording.KINDS.get(row["kind"], row["kind"].upper())
    return Step(
        "taken",
        row["taken_at"],
        f"Preso in carico ({kind}, {wording.size(row['size'])}) da {row['source']}",
    )


def _routing(row: sqlite3.Row, facts: dict[str, Any], messages: list[dict]) -> list[Step]:
    """To whom and why, or why not."""
    state, reason, at = row["state"], row["reason"] or "", row["updated_at"]
    customer = [m for m in messages if m["purpose"] == Purpose.CUSTOMER]
    found_by = facts.get("found_by")
    who = " ".join(x for x in (row["customer_code"], row["customer_name"]) if x)
    if row["duplicate_of"] is not None:
        return [Step("duplicate", at, wording.reason(reason), document_id=row["duplicate_of"])]
    if customer:
        to = ", ".join(r["address"] for r in customer[0]["recipients"] if r["role"] == "A")
        how = f", trovato per {wording.key_label(found_by)}" if found_by else ""
        return [Step("routed", customer[0]["created_at"], f"Cliente {who}{how}: da inviare a {to}")]
    if state == DocumentState.WAITING:
        return [
            Step(
                "waiting",
                at,
                f"Aspetta l'altra metà della fattura {facts.get('number', '')} (PDF e XML "
                f"viaggiano insieme) fino alle {wording.when(row['wait_until'])}",
            )
        ]
    if state == DocumentState.TAKEN:
        return [Step("taken", None, "Da instradare: il servizio lo esamina a momenti")]
    if reason.startswith("ambiguous"):
        return [Step("ambiguous", at, f"In attesa, {wording.reason(reason)}")]
    if state == DocumentState.HELD:
        return [Step("held", at, f"In attesa: {wording.reason(reason)}")]
    if reason.startswith("customer unknown"):
        text = f"Non inviato al cliente: {wording.reason(reason)}; solo a Tutto a"
        return [Step("held", at, text)]
    if state == DocumentState.FAILED and not messages:
        return [Step("refused", at, f"Scartato all'arrivo: {wording.reason(reason)}")]
    if state in (DocumentState.ROUTED, DocumentState.DONE) and not reason:
        kind = wording.KINDS.get(row["kind"], row["kind"].upper())
        text = f"{kind} non previsto per il cliente (customers.send)"
        if who:
            text += f"; cliente {who}"
        return [Step("not-for-customer", at, text)]
    return []


def _message_step(entry: dict[str, Any]) -> Step:
    to = ", ".join(r["address"] for r in entry["recipients"] if r["role"] == "A")
    cc = ", ".join(r["address"] for r in entry["recipients"] if r["role"] != "A")
    whom = f"{to} (Cc {cc})" if cc else to
    purpose = entry["purpose"]
    what = "Messaggio " + entry["purpose_label"]
    if purpose == Purpose.BUNDLE:
        part = f", parte {entry['part']} di {entry['parts']}" if entry["parts"] else ""
        what = (
            f"Nel pacchetto per il commercialista (Tutto a), sessione {entry['session_id']}"
            f"{part}, {len(entry['documents'])} documenti,"
        )
    state = entry["state"]
    tries = f"{entry['attempts']} tentativ{'o' if entry['attempts'] == 1 else 'i'}"
    if state == DeliveryState.SENT:
        text = f"{what} inviato a {whom}; il server ha risposto «{entry['reply'] or '250'}»"
        at = entry["sent_at"]
    elif state == DeliveryState.DEFERRED:
        text = (
            f"{what} per {whom}: rimandato ({tries}), prossimo tentativo "
            f"{wording.when(entry['next_attempt_at'])}; {wording.reason(entry['last_error'])}"
        )
        at = entry["next_attempt_at"]
    elif state in (DeliveryState.FAILED, DeliveryState.RETRIED):
        text = f"{what} per {whom}: {wording.reason(entry['last_error'])} ({tries})"
        if state == DeliveryState.RETRIED:
            text += "; poi rimandato con un nuovo invio"
        at = entry["created_at"]
    elif state == DeliveryState.UNCONFIRMED:
        text = (
            f"{what} per {whom}: inviato due volte, la risposta del server non è arrivata; "
            "controllare la posta inviata"
        )
        at = entry["sent_at"] or entry["created_at"]
    else:
        text, at = f"{what} per {whom}: in coda", entry["created_at"]
    return Step("message", at, text, delivery_id=entry["id"])


def _closing(db: sqlite3.Connection, row: sqlite3.Row) -> list[Step]:
    """Failed, superseded, dismissed; and what this document replaced or had copied."""
    steps = []
    state, reason, at = row["state"], row["reason"] or "", row["updated_at"]
    if state == DocumentState.FAILED and reason and deliveries.of_document(db, row["id"]):
        steps.append(Step("failed", at, f"Non inviato: {wording.reason(reason)}"))
    if state == DocumentState.SUPERSEDED:
        later = wording.superseded(reason)
        text = reason
        if later:
            text = f"Sostituito dal documento {later[0]} ({later[1]}), che è stato inviato"
        steps.append(Step("superseded", at, text, document_id=later[0] if later else None))
    if state == DocumentState.DISMISSED:
        note = reason.removeprefix("dismissed by hand: ")
        steps.append(Step("dismissed", at, f"Chiuso a mano, senza inviarlo: {note}"))
    for old in queries.superseded_by(db, row["id"]):
        steps.append(
            Step(
                "replaced",
                old["updated_at"],
                f"Ha sostituito il documento {old['id']} ({old['name']}), non inviato",
                document_id=old["id"],
            )
        )
    for copy in queries.duplicates_of(db, row["id"]):
        steps.append(
            Step(
                "copy-skipped",
                copy["taken_at"],
                f"Una copia identica ({copy['name']}) non è stata inviata di nuovo",
                document_id=copy["id"],
            )
        )
    return steps

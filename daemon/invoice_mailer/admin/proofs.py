"""What `status` says about proof of delivery: per recipient of a message, its proof (from the
receipts read in the sender's mailbox), when, and the stored receipt; for a FatturaPA XML, its
SdI outcome. Plain data here; the words an office reads in proof_words() and sdi_words().
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from invoice_mailer.ledger import delivery_recipients
from invoice_mailer.ledger.states import DeliveryState, Proof

SDI_WORDS = {
    "RC": "ricevuta di consegna",
    "NS": "scartata (notifica di scarto)",
    "MC": "mancata consegna: a disposizione nell'area riservata del cliente",
    "NE": "esito del committente",
    "DT": "decorrenza termini",
    "AT": "trasmessa, consegna impossibile (attestazione)",
}


def add_recipients(db: sqlite3.Connection, state_dir: Path, entries: list[dict[str, Any]]) -> None:
    """Give each delivery entry (status.delivery_entry) its `recipients` with their proof."""
    known = delivery_recipients.of_deliveries(db, [entry["id"] for entry in entries])
    for entry in entries:
        rows = known.get(entry["id"], [])
        recipients = [recipient_entry(row, state_dir) for row in rows]
        listed = {r["address"] for r in recipients}
        if entry["state"] == DeliveryState.SENT:  # sent before the ledger kept recipients
            for key in ("to", "cc", "bcc"):
                for address in entry[key]:
                    if address.lower() not in listed:
                        listed.add(address.lower())
                        recipients.append(sent_entry(address.lower(), entry["sent_at"]))
        if recipients:
            entry["recipients"] = recipients


def recipient_entry(row: sqlite3.Row, state_dir: Path) -> dict[str, Any]:
    path = row["receipt_path"]
    return {
        "address": row["address"],
        "proof": row["proof"],
        "proof_at": row["proof_at"],
        "receipt": str(state_dir / path) if path else None,
        "receipt_id": row["receipt_id"],
        "reason": row["reason"],
        "provider_id": row["provider_id"],
    }


def sent_entry(address: str, when: float | None) -> dict[str, Any]:
    """A recipient of a message sent before the ledger kept recipients: the server took it."""
    return {"address": address, "proof": Proof.SENT, "proof_at": when, "receipt": None,
            "receipt_id": None, "reason": None, "provider_id": None}  # fmt: skip


def add_sdi(entry: dict[str, Any], row: sqlite3.Row) -> None:
    """The XML document's SdI outcome, when a notice came."""
    if "sdi" in row.keys() and row["sdi"]:  # noqa: SIM118 (on a Row, `in` looks at values)
        entry.update(sdi=row["sdi"], sdi_at=row["sdi_at"], sdi_reason=row["sdi_reason"])


def not_delivered(db: sqlite3.Connection, state_dir: Path, limit: int) -> list[dict[str, Any]]:
    """The latest recipients a message did not reach, with the documents' names."""
    found = []
    for row in delivery_recipients.latest_not_delivered(db, limit):
        entry = recipient_entry(row, state_dir)
        entry.update(delivery_id=row["delivery_id"], message_id=row["message_id"])
        found.append(entry)
    return found


# -- words --------------------------------------------------------------------------------


def proof_words(recipient: dict[str, Any]) -> str:
    """ "consegnata il 12/03/2026 alle 10:15", "accettata", "non consegnata: …", "inviata"."""
    proof, when = recipient["proof"], recipient["proof_at"]
    if proof == Proof.DELIVERED:
        return "consegnata" + (f" {_on(when)}" if when else "")
    if proof == Proof.ACCEPTED:
        return "accettata" + (f" {_on(when)}" if when else "")
    if proof == Proof.NOT_DELIVERED:
        return f"non consegnata: {recipient['reason'] or 'motivo non indicato'}"
    return "inviata (nessuna ricevuta)"


def sdi_words(entry: dict[str, Any]) -> str:
    """ "SdI: RC, ricevuta di consegna, il 12/03/2026 alle 10:25", with NS's reasons."""
    kind = entry["sdi"]
    text = f"SdI: {kind}, {SDI_WORDS.get(kind, kind)}"
    if entry.get("sdi_at"):
        text += f", {_on(entry['sdi_at'])}"
    if entry.get("sdi_reason"):
        text += f": {entry['sdi_reason']}"
    return text


def _on(moment: float) -> str:
    local = time.localtime(moment)
    return f"il {time.strftime('%d/%m/%Y', local)} alle {time.strftime('%H:%M', local)}"

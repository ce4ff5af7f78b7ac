"""The proof of delivery in a document's story (docs/DESIGN.md, "Proof of delivery"): each
recipient's proof with the receipt behind it, each receipt, bounce and SdI notice as a step at
its time, and the XML's SdI outcome. In admin/proofs.py's words, so that `status` and the page
say it the same way. Each receipt carries its id in the ledger: the page downloads it by that id,
never by a path; `status --find` prints the path for the admin to open.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from invoice_mailer.admin.proofs import proof_words, recipient_entry, sdi_words, sent_entry
from invoice_mailer.ledger.states import DeliveryState, Proof
from invoice_mailer.office import wording
from invoice_mailer.office.steps import Step

# What each kind of receipt says of the recipients it is about (as receipts/matching.py
# records it); a preavviso says "not yet", and changes no proof.
_PROOF_OF = {
    "accettazione": Proof.ACCEPTED,
    "presa-in-carico": Proof.ACCEPTED,
    "avvenuta-consegna": Proof.DELIVERED,
    "non-accettazione": Proof.NOT_DELIVERED,
    "errore-consegna": Proof.NOT_DELIVERED,
    "rilevazione-virus": Proof.NOT_DELIVERED,
    "bounce": Proof.NOT_DELIVERED,
}
# The provider's word on the whole message, for every addressee at once.
_ABOUT_THE_MESSAGE = ("accettazione", "non-accettazione")
_NOTHING_KNOWN = {
    "proof": None,
    "proof_at": None,
    "receipt": None,
    "receipt_id": None,
    "reason": None,
    "provider_id": None,
}


def recipients(
    delivery: sqlite3.Row, known: list[sqlite3.Row], state_dir: Path
) -> list[dict[str, Any]]:
    """Each address of the message, with its role (A, Cc, Ccn) and its proof in words: from
    `known` (its delivery_recipients rows), else "sent" once the server took it."""
    by_address = {row["address"]: recipient_entry(row, state_dir) for row in known}
    found = []
    for column, role in (("to_addrs", "A"), ("cc_addrs", "Cc"), ("bcc_addrs", "Ccn")):
        for address in json.loads(delivery[column] or "[]"):
            entry = by_address.get(address.lower())
            if entry is None and delivery["state"] == DeliveryState.SENT:
                entry = sent_entry(address.lower(), delivery["sent_at"])
            entry = {**(entry or _NOTHING_KNOWN), "address": address, "role": role}
            entry["words"] = proof_words(entry) if entry["proof"] else ""
            found.append(entry)
    return found


def receipts(rows: list[sqlite3.Row], state_dir: Path) -> list[dict[str, Any]]:
    """The stored receipts about a document, as plain data, in the order they happened."""
    return [
        {
            "id": row["id"],
            "kind": row["kind"],
            "label": _label(row["kind"]),
            "delivery_id": row["delivery_id"],
            "document_id": row["document_id"],
            "recipient": row["recipient"],
            "provider_id": row["provider_id"],
            "at": row["provider_at"] or row["received_at"],
            "reason": row["reason"],
            "path": str(state_dir / row["path"]),
            "sha256": row["sha256"],
        }
        for row in rows
    ]


def message_steps(message: dict[str, Any], told: list[dict[str, Any]]) -> list[Step]:
    """The receipts and bounces of one message, each a step at its time."""
    steps = []
    for receipt in told:
        if receipt["delivery_id"] == message["id"]:
            text = _receipt_text(receipt, message["recipients"])
            refused = _PROOF_OF.get(receipt["kind"]) == Proof.NOT_DELIVERED
            kind = "not-delivered" if refused else "receipt"
            steps.append(Step(kind, receipt["at"], text, message["id"], receipt_id=receipt["id"]))
    return steps


def sdi(row: sqlite3.Row, told: list[dict[str, Any]]) -> dict[str, Any]:
    """The XML's SdI outcome (its latest notice), in words, with the notice's IdentificativoSdI."""
    if not row["sdi"]:
        return {"sdi": None}
    outcome = {"sdi": row["sdi"], "sdi_at": row["sdi_at"], "sdi_reason": row["sdi_reason"]}
    notice = next((r for r in told if r["id"] == row["sdi_receipt_id"]), None)
    return {
        **outcome,
        "sdi_receipt_id": notice["id"] if notice else None,
        "sdi_id": notice["provider_id"] if notice else None,
        "sdi_words": sdi_words(outcome),
    }


def sdi_steps(document: dict[str, Any], told: list[dict[str, Any]]) -> list[Step]:
    """Each SdI notice about the document, a step at its time."""
    steps = []
    for notice in told:
        if notice["delivery_id"] is None and notice["kind"].startswith("sdi"):
            outcome = notice["kind"].rpartition("-")[2]  # sdi-RC; sdi-RC-NS: the latest's
            text = sdi_words(
                {"sdi": outcome, "sdi_at": notice["at"], "sdi_reason": notice["reason"]}
            )
            if notice["provider_id"]:
                text += f"; identificativo SdI {notice['provider_id']}"
            steps.append(Step("sdi", notice["at"], text, receipt_id=notice["id"]))
    if document["sdi"] and not steps:  # a notice recorded without its receipt: the outcome alone
        steps.append(Step("sdi", document["sdi_at"], document["sdi_words"]))
    return steps


def _label(kind: str) -> str:
    if kind.startswith("sdi"):
        return "Notifica SdI"
    return wording.RECEIPT_KINDS.get(kind, kind)


def _receipt_text(receipt: dict[str, Any], its_recipients: list[dict[str, Any]]) -> str:
    """ "Ricevuta di avvenuta consegna per r@pec.it: consegnata il 12/03/2026 alle 10:15"."""
    about = [receipt["recipient"]] if receipt["recipient"] else []
    if not about and receipt["kind"] not in _ABOUT_THE_MESSAGE:
        # A bounce about several: those whose proof it is.
        about = [r["address"] for r in its_recipients if r["receipt_id"] == receipt["id"]]
    about = about or [r["address"] for r in its_recipients]
    head = f"{receipt['label']} per {', '.join(about)}"
    if receipt["kind"] == "preavviso-errore-consegna":
        said = f" ({receipt['reason']})" if receipt["reason"] else ""
        return f"{head}: non ancora consegnata, il gestore del destinatario ritenta{said}"
    proof = _PROOF_OF.get(receipt["kind"])
    if proof is None:
        return head
    return f"{head}: " + proof_words(
        {"proof": proof, "proof_at": receipt["at"], "reason": receipt["reason"]}
    )

"""The demo's closing table: each document, who received it and as what, and why a document
did not go to its customer; a legend says what the roles mean."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from invoice_mailer.admin.statusview import purpose_label
from invoice_mailer.bundles.plan import KIND_LABELS, customer_status
from invoice_mailer.config.languages import ITALIAN, LANGUAGE_NAMES
from invoice_mailer.config.texts import TemplatesConfig
from invoice_mailer.ledger import documents
from invoice_mailer.ledger.states import Purpose

LEGEND = (
    "as: customer = the message to the customer (address book);\n"
    '    cc = the copy of that same message (copy_to, "Copia a");\n'
    "    Tutto a = the accountant's bundle of the session (all_to).\n"
    "in English: the customer's language (column Lingua), Italian otherwise.\n"
    "state: consegnata = the provider's avvenuta consegna is in the mailbox (receipts)."
)
PROOF_WORDS = {
    "delivered": "consegnata",
    "accepted": "accettata",
    "not-delivered": "non consegnata",
}


@dataclass(frozen=True)
class DemoRow:
    document: str
    recipient: str
    how: str  # customer, cc, bcc, copy, Tutto a
    state: str


def table_rows(
    document: sqlite3.Row,
    deliveries: list[sqlite3.Row],
    templates: TemplatesConfig,
    proofs: dict[tuple[int, str], str] | None = None,
) -> list[DemoRow]:
    """Who received one document, each (recipient, role, state) once: the copy address is
    on every message about it. A document with no customer message says why, and one in
    another language than Italian says which. `proofs` ((delivery id, address) → proof)
    turns "sent" into what the receipts say."""
    proofs = proofs or {}
    rows: dict[DemoRow, None] = {}
    if not any(delivery["purpose"] == Purpose.CUSTOMER for delivery in deliveries):
        why = customer_status(document["state"], document["reason"], [])
        if why == "non previsto per il cliente":
            kind = KIND_LABELS.get(document["kind"], document["kind"].upper())
            why = f"{kind} {why} (customers.send)"
        rows[DemoRow(document["name"], "-", "customer", f"not sent: {why}")] = None
    language = templates.for_language(documents.info_of(document).get("language")).language
    for delivery in deliveries:
        purpose = purpose_label(delivery["purpose"])
        state = delivery["state"]
        for column, how in (("to_addrs", purpose), ("cc_addrs", "cc"), ("bcc_addrs", "bcc")):
            # The customer's row says the language; the copy rows stay one per address.
            said = state
            if language != ITALIAN and how == "customer":
                said = f"{state} in {LANGUAGE_NAMES.get(language, language)}"
            for address in json.loads(delivery[column]):
                # What the receipts say, where they said something; the language stays.
                proof = proofs.get((delivery["id"], address.lower()), "")
                shown = PROOF_WORDS.get(proof, state) + said[len(state) :]
                rows[DemoRow(document["name"], address, how, shown)] = None
    return list(rows)


def render_table(rows: list[DemoRow]) -> str:
    """document → recipient → state, as an office would check it, in 80 columns."""
    from invoice_mailer.admin.statusview import fit

    lines = [f"{'document':<28}  {'recipient':<30}  {'as':<8}  state", "-" * 78]
    previous = None
    for row in rows:
        name = fit(row.document, 28) if row.document != previous else ""
        previous = row.document
        lines.append(f"{name:<28}  {fit(row.recipient, 30):<30}  {row.how:<8}  {row.state}")
    return "\n".join(lines) + "\n\n" + LEGEND

"""The month's register as CSV for Excel on an Italian Windows: `;` between fields, UTF-8 with
a BOM (so accents survive a double click), CRLF, dates as dd/mm/yyyy hh:mm.

A cell that starts with = + - @ (or a tab or CR) is what Excel runs as a formula: such a value,
a hostile file name for instance, gets a leading apostrophe and is shown as text.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Sequence

from invoice_mailer.ledger import deliveries, documents
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, Purpose
from invoice_mailer.office import wording

HEADINGS = (
    "Preso in carico il",
    "File",
    "Tipo",
    "Documento",
    "Numero",
    "Data",
    "Codice cliente",
    "Cliente",
    "P.IVA",
    "Stato",
    "Inviato a",
    "Copia a",
    "Inviato il",
    "Message-ID",
    "Motivo",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 500  # ids per query: well under SQLite's limit of parameters


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def register_csv(ledger: Ledger, rows: Sequence[sqlite3.Row]) -> bytes:
    """The register's rows, one line each, with the customer message that went (if any)."""
    sent = _customer_messages(ledger, [row["id"] for row in rows])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADINGS)
    for row in rows:
        facts = documents.info_of(row)
        message = sent.get(row["id"])
        to = cc = when = message_id = ""
        if message is not None:
            to = ", ".join(json.loads(message["to_addrs"]))
            cc = ", ".join(json.loads(message["cc_addrs"]) + json.loads(message["bcc_addrs"]))
            when, message_id = wording.when(message["sent_at"]), message["message_id"]
        values = (
            wording.when(row["taken_at"]),
            row["name"],
            wording.KINDS.get(row["kind"], row["kind"]),
            facts.get("doc", ""),
            facts.get("number") or row["number"],
            facts.get("date", ""),
            row["customer_code"],
            row["customer_name"],
            facts.get("xml_vat") or facts.get("customer_vat", ""),
            wording.DOCUMENT_STATES.get(row["state"], row["state"]),
            to,
            cc,
            when,
            message_id,
            wording.reason(row["reason"]),
        )
        writer.writerow([cell(v) for v in values])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _customer_messages(ledger: Ledger, ids: list[int]) -> dict[int, sqlite3.Row]:
    """Each document's latest sent customer message."""
    found: dict[int, sqlite3.Row] = {}
    for start in range(0, len(ids), _CHUNK):
        for row in deliveries.of_documents(ledger.db, ids[start : start + _CHUNK]):
            if row["purpose"] == Purpose.CUSTOMER and row["state"] == DeliveryState.SENT:
                found[row["document_id"]] = row
    return found

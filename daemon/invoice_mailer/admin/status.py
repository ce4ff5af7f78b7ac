"""What `invoice-mailer status` reports, read from the ledger (read-only, service running or not).

`gather` reads rows and turns them into plain data with pure helpers; `render_text` (80
columns, local times) and `render_json` (ISO 8601 times with offset) show the same data.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from typing import Any

from invoice_mailer.addressbook.book import AddressBook, load_address_book
from invoice_mailer.admin import proofs
from invoice_mailer.bundles import sessions
from invoice_mailer.config.model import Config
from invoice_mailer.errors import ConfigError
from invoice_mailer.ledger import attachments, deliveries, documents, pauses
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DocumentState
from invoice_mailer.office import search, story
from invoice_mailer.service.lock import is_running

LIST_LIMIT = 20  # per section: enough to act on, short enough to read
SENT_LIMIT = 10
FIND_LIMIT = 50
WIDTH = 80
_DELIVERY_KEYS = ("message_id", "subject", "attempts", "last_error", "reply")
_DELIVERY_TIMES = ("created_at", "sent_at", "next_attempt_at")


# -- reading ------------------------------------------------------------------------------


def gather(
    config: Config,
    find: str | None = None,
    now: float | None = None,
    within: search.Search | None = None,
) -> dict[str, Any]:
    """Everything `status` shows (or, with `find`, the matching documents with their story),
    as plain data. `within`: the dates and states that narrow `find`."""
    state_dir = config.state_dir
    report: dict[str, Any] = {
        "state_dir": str(state_dir),
        "service": "running" if is_running(state_dir) else "stopped",
        "ledger": (state_dir / "ledger.db").exists(),
        "now": time.time() if now is None else now,
    }
    if find is not None:
        report.update(find=find, documents=[], more=False)
    else:
        report.update(counts={"documents": {}, "deliveries": {}}, session=None, paused=None)
        report["failed_count"] = 0
        report.update(
            {
                key: []
                for key in (
                    "held",
                    "failed",
                    "failed_messages",
                    "deferred",
                    "unconfirmed",
                    "sent",
                    "not_delivered",
                )
            }
        )
    if not report["ledger"]:
        return report
    with Ledger(state_dir, readonly=True) as ledger:
        if find is not None:
            asked = replace(within or search.Search(), text=find)
            report["documents"], report["more"] = _find(ledger, config, asked)
            return report
        report["counts"] = ledger.counts()
        if config.all_to.address:
            report["session"] = sessions.open_session(ledger, config, report["now"])
        pause = pauses.current(ledger.db)
        report["paused"] = dict(pause) if pause is not None else None
        held = documents.in_state(ledger.db, DocumentState.HELD, LIST_LIMIT)
        report["held"] = [document_entry(row, config) for row in held]
        # The very list `retry --failed` works on (ledger/documents.py: failed).
        failed = documents.failed(ledger.db, newest_first=True, limit=LIST_LIMIT)
        report["failed"] = [
            {**document_entry(row, config), "reason": row["failure"]} for row in failed
        ]
        report["failed_count"] = documents.count_failed(ledger.db)
        db = ledger.db
        report["failed_messages"] = _entries(
            ledger, deliveries.failed_alone(db, newest_first=True, limit=LIST_LIMIT)
        )
        report["deferred"] = _entries(ledger, deliveries.waiting_to_retry(db, LIST_LIMIT))
        report["unconfirmed"] = _unconfirmed(ledger)
        report["sent"] = _entries(ledger, deliveries.latest_sent(db, SENT_LIMIT))
        proofs.add_recipients(db, state_dir, report["sent"])
        report["not_delivered"] = proofs.not_delivered(db, state_dir, LIST_LIMIT)
    return report


def _entries(ledger: Ledger, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    names = attachments.names_by_delivery(ledger.db, [row["id"] for row in rows])
    return [delivery_entry(row, names.get(row["id"], [])) for row in rows]


def _unconfirmed(ledger: Ledger) -> list[dict[str, Any]]:
    """Unconfirmed messages, newest first, with the document ids that `retry` takes."""
    entries = _entries(ledger, deliveries.latest_unconfirmed(ledger.db, LIST_LIMIT))
    for entry in entries:
        entry["document_ids"] = attachments.document_ids(ledger.db, entry["id"])
    return entries


def _find(ledger: Ledger, config: Config, asked: search.Search) -> tuple[list[dict], bool]:
    """The documents the office's search finds (office/search.py), each with its messages
    and its story; and whether there are more than FIND_LIMIT."""
    found = search.find(ledger, asked, FIND_LIMIT, address_book(config))
    entries = [document_entry(row, config) for row in found.rows]
    ids = [entry["id"] for entry in entries]
    by_document: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for row in deliveries.of_documents(ledger.db, ids):
            by_document.setdefault(row["document_id"], []).append(delivery_entry(row, []))
    proofs.add_recipients(ledger.db, config.state_dir, [d for e in by_document.values() for d in e])
    for entry, row in zip(entries, found.rows, strict=True):
        entry["deliveries"] = by_document.get(entry["id"], [])
        entry["story"] = story.tell(ledger, row).as_dict()
    return entries, found.more


def address_book(config: Config) -> AddressBook | None:
    """The address book, for a P.IVA or codice fiscale that only its rows know; None when it
    cannot be read (the search then uses what the ledger knows)."""
    path = config.customers.address_book
    try:
        return load_address_book(path, config.customers.csv) if path is not None else None
    except (ConfigError, OSError):
        return None


# -- rows to plain data (pure) ------------------------------------------------------------


def document_entry(row: sqlite3.Row, config: Config) -> dict[str, Any]:
    """One document as status shows it; failed ones name their reason file."""
    keys = ("id", "name", "state", "reason", "number", "customer_code", "customer_name", "taken_at")
    entry = {key: row[key] for key in keys}
    entry["path"] = str(config.state_dir / row["location"])
    if row["state"] == DocumentState.FAILED and row["location"].startswith("failed/"):
        entry["reason_file"] = entry["path"] + ".reason.txt"
    proofs.add_sdi(entry, row)
    return entry


def delivery_entry(row: sqlite3.Row, documents: list[str]) -> dict[str, Any]:
    """One delivery (message) with its recipients, times, Message-ID and the server's words."""
    entry: dict[str, Any] = {"id": row["id"], "purpose": row["purpose"], "state": row["state"]}
    for column, key in (("to_addrs", "to"), ("cc_addrs", "cc"), ("bcc_addrs", "bcc")):
        entry[key] = json.loads(row[column] or "[]")
    entry.update({key: row[key] for key in (*_DELIVERY_KEYS, *_DELIVERY_TIMES)})
    if documents:
        entry["documents"] = documents
    return entry

"""Planning a delivery: the rows that tell the delivery stage what to send, to whom, with what.

Shared by routing (customer messages, with PDF+XML pairing) and sessions (the accountant's
bundles).
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from invoice_mailer.addresses import needs_smtputf8, new_message_id
from invoice_mailer.config.model import Config
from invoice_mailer.ledger import (
    attachments,
    delivery_changes,
    document_changes,
    documents,
    sessions,
)
from invoice_mailer.ledger.states import Purpose


def kind_class(kind: str) -> str:
    """The kinds the config speaks of: a signed .xml.p7m is an XML invoice."""
    return "pdf" if kind == "pdf" else "xml"


def join_session(
    db: sqlite3.Connection, config: Config, document: sqlite3.Row, now: float
) -> int | None:
    """Put a document in the open session of the accountant's bundle ("Tutto a"), opening one
    if needed, in the caller's transaction; the session's id, or None if it is not for it."""
    if not config.all_to.address or document["session_id"] is not None:
        return document["session_id"]
    if kind_class(document["kind"]) not in config.all_to.kinds:
        return None
    session_id = sessions.add_to_current(db, now)
    document_changes.join_session(db, session_id, [document["id"]])
    return session_id


def pair_key(number: str, year: str | None) -> str | None:
    """An invoice number as both halves of a pair may write it, reduced to one key.

    "FPR 12/2026" (the XML's Numero), "FPR12-2026" and "fpr_0012" (file names, where "/" cannot
    appear) are the same invoice of 2026: case, separators, leading zeros and a year part go.
    """
    parts = [part.lstrip("0") or "0" for part in re.split(r"[^0-9A-Z]+", number.upper()) if part]
    if len(parts) > 1 and year:
        parts = [part for part in parts if part not in (year, year[-2:])] or parts
    return "".join(parts) or None


def find_partner(
    db: sqlite3.Connection, document: sqlite3.Row, facts: dict[str, Any]
) -> sqlite3.Row | None:
    """The waiting other half of `document`'s invoice, if it is there.

    The same invoice: the other kind, the same number, and the same year or the same customer.
    The recipients must be the same too, so that pairing never changes who receives a file.
    """
    mine = kind_class(document["kind"])
    key = facts.get("pair")
    if not key:
        return None
    for other in documents.waiting_besides(db, document["id"]):
        theirs = documents.info_of(other)
        if kind_class(other["kind"]) == mine or theirs.get("pair") != key:
            continue
        if theirs.get("to") != facts.get("to"):
            continue
        same_year = theirs.get("year") == facts.get("year")
        code = facts.get("customer_code")
        if same_year or (code and theirs.get("customer_code") == code):
            return other
    return None


def already_sent(
    db: sqlite3.Connection,
    config: Config,
    document: sqlite3.Row,
    to: tuple[str, ...],
    purpose: Purpose,
) -> sqlite3.Row | None:
    """The earlier document with the same bytes whose `purpose` message (customer, or bundle)
    was sent to exactly these addresses (watch.duplicates: skip), with its `sent_at`; else None.

    Same content alone is not enough: a held or failed copy never reached anyone, and the same
    file meant for another customer must reach that customer too.
    """
    if config.watch.duplicates != "skip" or not to:
        return None
    wanted = sorted(address.casefold() for address in to)
    for earlier in documents.sent_before(db, document, purpose):
        if sorted(a.casefold() for a in json.loads(earlier["to_addrs"])) == wanted:
            return earlier
    return None


def plan_delivery(
    db: sqlite3.Connection,
    config: Config,
    purpose: Purpose,
    to: tuple[str, ...],
    documents: list[int],
    now: float,
    *,
    session_id: int | None = None,
    part: int | None = None,
    parts: int | None = None,
) -> list[int]:
    """Insert the delivery rows (and a separate copy when copy_mode says so) with their files."""
    # An address already in To is not copied to again: one message, each recipient once.
    in_to = {address.lower() for address in to}
    copies = tuple(address for address in config.copy_to if address.lower() not in in_to)
    # A copy address with a non-ASCII name before the @ needs a server with SMTPUTF8: in a
    # message of its own, a server without it refuses only the copy, never the customer's.
    alone = tuple(address for address in copies if needs_smtputf8(address))
    copies = tuple(address for address in copies if address not in alone)
    cc = copies if config.copy_mode == "cc" else ()
    bcc = copies if config.copy_mode == "bcc" else ()
    rows = [(purpose, to, cc, bcc)]
    separate = (copies if config.copy_mode == "separate" else ()) + alone
    if separate:
        rows.append((Purpose.COPY, separate, (), ()))
    ids = []
    for row_purpose, row_to, row_cc, row_bcc in rows:
        delivery_id = delivery_changes.plan(
            db,
            row_purpose,
            row_to,
            row_cc,
            row_bcc,
            new_message_id(config.sender.address),
            now,
            session_id=session_id,
            part=part,
            parts=parts,
        )
        ids.append(delivery_id)
        attachments.attach(db, delivery_id, documents)
    return ids

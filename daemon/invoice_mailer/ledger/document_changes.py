"""The `documents` table, written: a document taken, routed, held, joined to a session, filed,
closed or put back in the queue (the states are in states.py; the reads in `documents`).

Each function runs in the caller's transaction (`with ledger.transaction() as db:`) and never
begins or commits one, so several changes still commit together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from invoice_mailer.ledger.states import DocumentState


def add(
    db: sqlite3.Connection,
    *,
    name: str,
    source: str,
    location: str,
    kind: str,
    size: int,
    mtime_ns: int,
    sha256: str,
    state: DocumentState,
    reason: str | None,
    now: float,
) -> int:
    """A file just taken (state taken, or failed with the `reason` it cannot be sent); its id."""
    cursor = db.execute(
        "INSERT INTO documents(name, source, location, kind, size, mtime_ns, sha256, "
        "taken_at, state, reason, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, source, location, kind, size, mtime_ns, sha256, now, state, reason, now),
    )
    return int(cursor.lastrowid or 0)


def record_route(
    db: sqlite3.Connection,
    document_id: int,
    state: DocumentState,
    reason: str | None,
    facts: dict[str, Any],
    now: float,
    until: float | None = None,
) -> None:
    """What routing decided: the state, why, until when it waits for its pair, and the facts it
    found (the JSON `info`; the number and the customer also as columns, for `status --find`)."""
    db.execute(
        "UPDATE documents SET state = ?, reason = ?, wait_until = ?, updated_at = ?, "
        "info = ?, number = ?, customer_code = ?, customer_name = ? WHERE id = ?",
        (
            state,
            reason,
            until,
            now,
            json.dumps(facts),
            facts.get("number"),
            facts.get("customer_code"),
            facts.get("customer_name"),
            document_id,
        ),
    )


def mark_duplicate(db: sqlite3.Connection, document_id: int, earlier_id: int) -> None:
    db.execute("UPDATE documents SET duplicate_of = ? WHERE id = ?", (earlier_id, document_id))


def release_held(db: sqlite3.Connection) -> int:
    """Every held document back to routing, its reason kept; how many."""
    return db.execute(
        "UPDATE documents SET state = ? WHERE state = ?",
        (DocumentState.TAKEN, DocumentState.HELD),
    ).rowcount


def release(db: sqlite3.Connection, document_id: int, now: float) -> None:
    """One held document back to routing (`retry`), its reason forgotten."""
    db.execute(
        "UPDATE documents SET state = ?, reason = NULL, updated_at = ? WHERE id = ?",
        (DocumentState.TAKEN, now, document_id),
    )


def requeue(
    db: sqlite3.Connection,
    document_id: int,
    moving_to: str | None,
    session_id: int | None,
    now: float,
) -> None:
    """A failed document back to routing (`retry`); `moving_to`: its way back into the spool."""
    db.execute(
        "UPDATE documents SET state = ?, reason = NULL, moving_to = ?, session_id = ?, "
        "updated_at = ? WHERE id = ?",
        (DocumentState.TAKEN, moving_to, session_id, now, document_id),
    )


def join_session(db: sqlite3.Connection, session_id: int, document_ids: Iterable[int]) -> None:
    db.executemany(
        "UPDATE documents SET session_id = ? WHERE id = ?",
        [(session_id, document_id) for document_id in document_ids],
    )


def fail(db: sqlite3.Connection, document_id: int, reason: str, now: float) -> bool:
    """Fail a document with `reason`; False if it had failed already (nothing changed)."""
    return (
        db.execute(
            "UPDATE documents SET state = ?, reason = ?, updated_at = ? "
            "WHERE id = ? AND state != ?",
            (DocumentState.FAILED, reason, now, document_id, DocumentState.FAILED),
        ).rowcount
        > 0
    )


# -- moving the file: the intent (moving_to) is committed before the rename ----------------


def set_moving_to(db: sqlite3.Connection, document_id: int, target: str | None) -> None:
    """Name where the file is going before it goes (None: forget a move that never happened)."""
    db.execute("UPDATE documents SET moving_to = ? WHERE id = ?", (target, document_id))


def record_moved(db: sqlite3.Connection, document_id: int) -> None:
    """The file reached `moving_to`: that is where it lies now."""
    db.execute(
        "UPDATE documents SET location = moving_to, moving_to = NULL WHERE id = ?",
        (document_id,),
    )


def record_filed(
    db: sqlite3.Connection,
    document_id: int,
    location: str,
    state: DocumentState,
    reason: str | None,
    now: float,
) -> None:
    """The archive filed it (in sent/ as done, or in failed/) and the move is over."""
    db.execute(
        "UPDATE documents SET location = ?, moving_to = NULL, state = ?, reason = ?, "
        "updated_at = ? WHERE id = ?",
        (location, state, reason, now, document_id),
    )


def close(
    db: sqlite3.Connection,
    document_id: int,
    state: DocumentState,
    reason: str,
    moving_to: str,
    now: float,
    was: str,
) -> bool:
    """Close it (superseded or dismissed) on its way to closed/, if it is still in state `was`
    and not being moved; False if it changed meanwhile."""
    return (
        db.execute(
            "UPDATE documents SET state = ?, reason = ?, moving_to = ?, updated_at = ? "
            "WHERE id = ? AND state = ? AND moving_to IS NULL",
            (state, reason, moving_to, now, document_id, was),
        ).rowcount
        > 0
    )


def record_sdi(
    db: sqlite3.Connection,
    document_id: int,
    outcome: str,
    when: float,
    reason: str | None,
    receipt_id: int,
) -> None:
    """The SdI outcome of a FatturaPA XML (RC, NS, MC, …): the latest notice's."""
    db.execute(
        "UPDATE documents SET sdi = ?, sdi_at = ?, sdi_reason = ?, sdi_receipt_id = ? WHERE id = ?",
        (outcome, when, reason, receipt_id, document_id),
    )

"""The queries on `receipts`: each receipt, bounce or SdI notice about something we sent, with
where its exact bytes are stored (the signed bytes are the office's proof).

Each function runs on the connection it is given and never commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredReceipt:
    """What the ledger keeps of one message from the mailbox."""

    kind: str
    path: str  # relative to state_dir
    sha256: str
    folder: str
    uidvalidity: int
    uid: int
    delivery_id: int | None = None
    document_id: int | None = None
    recipient: str | None = None
    message_id: str | None = None
    provider_id: str | None = None
    provider_at: float | None = None
    reason: str | None = None


def add(db: sqlite3.Connection, receipt: StoredReceipt, now: float) -> int:
    """Record a stored receipt; its id."""
    cursor = db.execute(
        "INSERT INTO receipts(kind, delivery_id, document_id, recipient, message_id, "
        "provider_id, provider_at, reason, path, sha256, folder, uidvalidity, uid, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            receipt.kind,
            receipt.delivery_id,
            receipt.document_id,
            receipt.recipient,
            receipt.message_id,
            receipt.provider_id,
            receipt.provider_at,
            receipt.reason,
            receipt.path,
            receipt.sha256,
            receipt.folder,
            receipt.uidvalidity,
            receipt.uid,
            now,
        ),
    )
    return int(cursor.lastrowid or 0)


def with_sha256(db: sqlite3.Connection, sha256: str) -> sqlite3.Row | None:
    """The receipt with these very bytes: the same message read again (a folder renumbered,
    or copied to a second folder) counts once."""
    return db.execute("SELECT * FROM receipts WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()


def paths_by_id(db: sqlite3.Connection, ids: list[int]) -> dict[int, str]:
    """Where each receipt is stored (relative to state_dir)."""
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(f"SELECT id, path FROM receipts WHERE id IN ({marks})", tuple(ids))
    return {row["id"]: row["path"] for row in rows}


def count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0]


def of_document(
    db: sqlite3.Connection, document_id: int, delivery_ids: Sequence[int]
) -> list[sqlite3.Row]:
    """The receipts about a document: those of the messages that carried it (`delivery_ids`)
    and the SdI notices about it; in the order they happened (the provider's time, else when
    they were read)."""
    marks = ", ".join("?" for _ in delivery_ids) or "NULL"
    return db.execute(
        f"SELECT * FROM (SELECT * FROM receipts WHERE delivery_id IN ({marks}) "
        "UNION SELECT * FROM receipts WHERE document_id = ? "
        "UNION SELECT r.* FROM documents d JOIN receipts r ON r.id = d.sdi_receipt_id "
        "WHERE d.id = ?) ORDER BY coalesce(provider_at, received_at), id",
        (*delivery_ids, document_id, document_id),
    ).fetchall()


def about_document(db: sqlite3.Connection, receipt_id: int, document_id: int) -> sqlite3.Row | None:
    """The receipt `receipt_id`, only if it is about document `document_id` (an SdI notice on
    it, or a receipt of a message that carried it)."""
    return db.execute(
        "SELECT r.* FROM receipts r WHERE r.id = ? AND (r.document_id = ? "
        "OR r.id = (SELECT sdi_receipt_id FROM documents WHERE id = ?) "
        "OR r.delivery_id IN (SELECT delivery_id FROM attachments WHERE document_id = ?))",
        (receipt_id, document_id, document_id, document_id),
    ).fetchone()

"""The queries on `attachments`: which documents each message carries, in which order.

Like every query module of the ledger, each function runs on the connection it is given and
never commits: the caller's transaction holds its calls together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from invoice_mailer.ledger.states import Purpose


def attach(db: sqlite3.Connection, delivery_id: int, document_ids: Sequence[int]) -> None:
    """The documents a new message carries, attached in the order given."""
    db.executemany(
        "INSERT INTO attachments(delivery_id, document_id, position) VALUES (?, ?, ?)",
        [(delivery_id, document_id, index) for index, document_id in enumerate(document_ids)],
    )


def copy_from(db: sqlite3.Connection, delivery_id: int, original_id: int) -> None:
    """A new message carries the very documents of `original_id`, in the same order."""
    db.execute(
        "INSERT INTO attachments(delivery_id, document_id, position) "
        "SELECT ?, document_id, position FROM attachments WHERE delivery_id = ?",
        (delivery_id, original_id),
    )


def document_ids(db: sqlite3.Connection, delivery_id: int) -> list[int]:
    return [
        row[0]
        for row in db.execute(
            "SELECT document_id FROM attachments WHERE delivery_id = ? ORDER BY position",
            (delivery_id,),
        )
    ]


def names_by_delivery(db: sqlite3.Connection, delivery_ids: Sequence[int]) -> dict[int, list[str]]:
    """The file names each message carries, in their order."""
    if not delivery_ids:
        return {}
    marks = ", ".join("?" for _ in delivery_ids)
    names: dict[int, list[str]] = {}
    for delivery_id, name in db.execute(
        "SELECT a.delivery_id, d.name FROM attachments a JOIN documents d ON d.id = a.document_id "
        f"WHERE a.delivery_id IN ({marks}) ORDER BY a.delivery_id, a.position",
        tuple(delivery_ids),
    ):
        names.setdefault(delivery_id, []).append(name)
    return names


def in_bundle(db: sqlite3.Connection, document_id: int) -> bool:
    """Whether the document is attached to one of the accountant's bundles (Tutto a)."""
    return (
        db.execute(
            "SELECT 1 FROM attachments a JOIN deliveries v ON v.id = a.delivery_id "
            "WHERE a.document_id = ? AND v.purpose = ?",
            (document_id, Purpose.BUNDLE),
        ).fetchone()
        is not None
    )

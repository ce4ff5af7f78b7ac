"""The queries on `delivery_recipients`: per address of a sent message, its proof
(states.Proof), when it was known, the receipt that says so, and the receipt still awaited.

Each function runs on the connection it is given and never commits: a proof changes in the
same transaction as the receipt that changes it is recorded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from invoice_mailer.ledger.states import Proof


@dataclass(frozen=True)
class Expectation:
    """The receipt still awaited for a recipient, and when its absence is told."""

    receipt: str  # accettazione | consegna
    by: float


def record_sent(
    db: sqlite3.Connection,
    delivery_id: int,
    addresses: Iterable[str],
    when: float,
    expecting: Expectation | None,
) -> None:
    """The server took the message for these addresses: each one's proof is `sent`."""
    db.executemany(
        "INSERT OR IGNORE INTO delivery_recipients(delivery_id, address, proof, proof_at, "
        "expecting, expected_by) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                delivery_id,
                address.lower(),
                Proof.SENT,
                when,
                expecting.receipt if expecting else None,
                expecting.by if expecting else None,
            )
            for address in dict.fromkeys(a.lower() for a in addresses)
        ],
    )


def get(db: sqlite3.Connection, delivery_id: int, address: str) -> sqlite3.Row | None:
    return db.execute(
        "SELECT * FROM delivery_recipients WHERE delivery_id = ? AND address = ?",
        (delivery_id, address.lower()),
    ).fetchone()


def set_proof(
    db: sqlite3.Connection,
    delivery_id: int,
    address: str,
    proof: Proof,
    when: float,
    receipt_id: int | None,
    *,
    provider_id: str | None = None,
    reason: str | None = None,
    expecting: Expectation | None = None,
) -> None:
    """What a receipt says of one recipient (a row is made for a message sent before the
    ledger kept recipients); the receipt awaited next, if any."""
    db.execute(
        "INSERT INTO delivery_recipients(delivery_id, address, proof, proof_at, receipt_id, "
        "provider_id, reason, expecting, expected_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(delivery_id, address) DO UPDATE SET proof = excluded.proof, "
        "proof_at = excluded.proof_at, receipt_id = excluded.receipt_id, "
        "provider_id = COALESCE(excluded.provider_id, provider_id), reason = excluded.reason, "
        "expecting = excluded.expecting, expected_by = excluded.expected_by",
        (
            delivery_id,
            address.lower(),
            proof,
            when,
            receipt_id,
            provider_id,
            reason,
            expecting.receipt if expecting else None,
            expecting.by if expecting else None,
        ),
    )


def overdue(db: sqlite3.Connection, now: float, limit: int) -> list[sqlite3.Row]:
    """Recipients whose awaited receipt is late, with their message's id and Message-ID."""
    return db.execute(
        "SELECT r.*, v.message_id FROM delivery_recipients r "
        "JOIN deliveries v ON v.id = r.delivery_id "
        "WHERE r.expected_by IS NOT NULL AND r.expected_by <= ? ORDER BY r.expected_by LIMIT ?",
        (now, limit),
    ).fetchall()


def stop_expecting(db: sqlite3.Connection, delivery_id: int, address: str) -> None:
    """Its absence was told: it is not told again (a late receipt still counts)."""
    db.execute(
        "UPDATE delivery_recipients SET expecting = NULL, expected_by = NULL "
        "WHERE delivery_id = ? AND address = ?",
        (delivery_id, address.lower()),
    )


def of_deliveries(db: sqlite3.Connection, delivery_ids: Sequence[int]) -> dict[int, list]:
    """The recipients of each message, with the path of the receipt behind each proof."""
    if not delivery_ids:
        return {}
    marks = ", ".join("?" for _ in delivery_ids)
    found: dict[int, list[sqlite3.Row]] = {}
    for row in db.execute(
        "SELECT r.*, c.path AS receipt_path FROM delivery_recipients r "
        "LEFT JOIN receipts c ON c.id = r.receipt_id "
        f"WHERE r.delivery_id IN ({marks}) ORDER BY r.delivery_id, r.rowid",
        tuple(delivery_ids),
    ):
        found.setdefault(row["delivery_id"], []).append(row)
    return found


def latest_not_delivered(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """The latest recipients a message did not reach, newest first, with that message."""
    return db.execute(
        "SELECT r.*, c.path AS receipt_path, v.message_id, v.purpose, v.subject "
        "FROM delivery_recipients r JOIN deliveries v ON v.id = r.delivery_id "
        "LEFT JOIN receipts c ON c.id = r.receipt_id "
        "WHERE r.proof = ? ORDER BY r.proof_at DESC LIMIT ?",
        (Proof.NOT_DELIVERED, limit),
    ).fetchall()


def count_by_proof(db: sqlite3.Connection) -> dict[str, int]:
    return {
        proof: n
        for proof, n in db.execute("SELECT proof, COUNT(*) FROM delivery_recipients GROUP BY proof")
    }

"""Planning a delivery: the rows that tell the delivery stage what to send, to whom, with what.

Shared by routing (customer messages) and sessions (the accountant's bundles).
"""

from __future__ import annotations

import json
import sqlite3

from .config import Config
from .ledger import QUEUED
from .messages import new_message_id


def plan_delivery(
    db: sqlite3.Connection,
    config: Config,
    purpose: str,
    to: tuple[str, ...],
    documents: list[int],
    now: float,
    *,
    session_id: int | None = None,
    part: int | None = None,
    parts: int | None = None,
) -> list[int]:
    """Insert the delivery rows (and a separate copy when copy_mode says so) with their files."""
    cc = config.copy_to if config.copy_mode == "cc" else ()
    bcc = config.copy_to if config.copy_mode == "bcc" else ()
    rows = [(purpose, to, cc, bcc)]
    if config.copy_mode == "separate" and config.copy_to:
        # A bundle's copy is a bundle (pre-rendered text), not a customer message's copy.
        rows.append(("copy" if purpose == "customer" else purpose, tuple(config.copy_to), (), ()))
    ids = []
    for row_purpose, row_to, row_cc, row_bcc in rows:
        cursor = db.execute(
            "INSERT INTO deliveries(purpose, state, to_addrs, cc_addrs, bcc_addrs, message_id, "
            "created_at, next_attempt_at, session_id, part, parts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row_purpose,
                QUEUED,
                json.dumps(list(row_to)),
                json.dumps(list(row_cc)),
                json.dumps(list(row_bcc)),
                new_message_id(config.sender.address),
                now,
                now,
                session_id,
                part,
                parts,
            ),
        )
        ids.append(cursor.lastrowid)
        db.executemany(
            "INSERT INTO attachments(delivery_id, document_id, position) VALUES (?, ?, ?)",
            [(cursor.lastrowid, document_id, index) for index, document_id in enumerate(documents)],
        )
    return ids

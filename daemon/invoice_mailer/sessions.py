"""The accountant's working sessions ("Tutto a"): every document joins the open session.

The session lives in the ledger, so a restart continues it and never loses a member.
"""

from __future__ import annotations

import sqlite3

from .config import Config


def _kind_class(kind: str) -> str:
    return "pdf" if kind == "pdf" else "xml"


def join(db: sqlite3.Connection, config: Config, document: sqlite3.Row, now: float) -> int | None:
    """Put a document in the open session (opening one if needed); inside the caller's transaction."""
    if not config.all_to.address or document["session_id"] is not None:
        return document["session_id"]
    if _kind_class(document["kind"]) not in config.all_to.kinds:
        return None
    row = db.execute(
        "SELECT id FROM sessions WHERE closed_at IS NULL ORDER BY id LIMIT 1"
    ).fetchone()
    if row is None:
        session_id = db.execute(
            "INSERT INTO sessions(opened_at, last_added_at) VALUES (?, ?)", (now, now)
        ).lastrowid
    else:
        session_id = row[0]
        db.execute("UPDATE sessions SET last_added_at = ? WHERE id = ?", (now, session_id))
    db.execute("UPDATE documents SET session_id = ? WHERE id = ?", (session_id, document["id"]))
    return session_id


class SessionKeeper:
    """Closes sessions and plans the accountant's bundles (filled in by the "Tutto a" work)."""

    def __init__(self, config: Config, ledger) -> None:
        self.config = config
        self.ledger = ledger

    def step(self) -> float | None:
        return None

"""What the admin should hear about (table `notices`): written by the stages as things go
wrong, mailed in batches by service/alerts.py, which marks them sent."""

from __future__ import annotations

import sqlite3


def add(db: sqlite3.Connection, when: float, text: str) -> None:
    """Something the admin should hear about (alerts.to), inside the caller's transaction."""
    db.execute("INSERT INTO notices(created_at, text) VALUES (?, ?)", (when, text))


def unsent(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """The notices no alert has carried yet, oldest first."""
    return db.execute("SELECT * FROM notices WHERE sent_at IS NULL ORDER BY id").fetchall()


def mark_sent(db: sqlite3.Connection, up_to_id: int, when: float) -> None:
    """The unsent notices up to `up_to_id` went out in an alert (later ones wait for the next)."""
    db.execute("UPDATE notices SET sent_at = ? WHERE sent_at IS NULL AND id <= ?", (when, up_to_id))

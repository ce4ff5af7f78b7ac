"""The accountant's working sessions (table `sessions`, Tutto a): one open at a time.

A session is open while `closed_at` is NULL; `flush` sets `close_requested` and the service's
SessionKeeper closes it. Every function runs in the caller's connection or transaction.
"""

from __future__ import annotations

import sqlite3


def current(db: sqlite3.Connection) -> sqlite3.Row | None:
    """The open session (the oldest, should there ever be more than one), or None."""
    return db.execute(
        "SELECT * FROM sessions WHERE closed_at IS NULL ORDER BY id LIMIT 1"
    ).fetchone()


def add_to_current(db: sqlite3.Connection, now: float) -> int:
    """The open session's id, opened now if none is open; either way it was added to at `now`."""
    row = db.execute(
        "SELECT id FROM sessions WHERE closed_at IS NULL ORDER BY id LIMIT 1"
    ).fetchone()
    if row is None:
        cursor = db.execute(
            "INSERT INTO sessions(opened_at, last_added_at) VALUES (?, ?)", (now, now)
        )
        assert cursor.lastrowid is not None  # noqa: S101 (a type narrowing, not a check: set after an INSERT)
        return cursor.lastrowid
    db.execute("UPDATE sessions SET last_added_at = ? WHERE id = ?", (now, row[0]))
    return row[0]


def request_close(db: sqlite3.Connection) -> int | None:
    """Mark the open session for closing (`flush`); its id, or None if none is open."""
    row = db.execute("SELECT id FROM sessions WHERE closed_at IS NULL LIMIT 1").fetchone()
    if row is None:
        return None
    db.execute("UPDATE sessions SET close_requested = 1 WHERE id = ?", (row[0],))
    return row[0]


def close(db: sqlite3.Connection, session_id: int, now: float) -> sqlite3.Row | None:
    """Close the session if it is still open: its row as it was, or None if it was not open."""
    session = db.execute(
        "SELECT * FROM sessions WHERE id = ? AND closed_at IS NULL", (session_id,)
    ).fetchone()
    if session is not None:
        db.execute("UPDATE sessions SET closed_at = ? WHERE id = ?", (now, session_id))
    return session


def previous_closing(db: sqlite3.Connection, session_id: int) -> float | None:
    """When the last session other than this one closed (None: it is the first)."""
    return db.execute(
        "SELECT MAX(closed_at) FROM sessions WHERE id != ? AND closed_at IS NOT NULL",
        (session_id,),
    ).fetchone()[0]

"""A paused queue (table `pauses`): a queue-wide condition (authentication or TLS refused, the
server unreachable) that holds every delivery until `check_at`. There is at most one row: a
new pause replaces the old one."""

from __future__ import annotations

import sqlite3


def current(db: sqlite3.Connection) -> sqlite3.Row | None:
    """The pause in force (reason, since, check_at), or None: sending goes on."""
    return db.execute("SELECT * FROM pauses ORDER BY since LIMIT 1").fetchone()


def start(db: sqlite3.Connection, reason: str, since: float, check_at: float) -> bool:
    """Pause the queue until `check_at`, replacing any pause; True if it was not paused."""
    first = db.execute("DELETE FROM pauses").rowcount == 0
    db.execute(
        "INSERT INTO pauses(reason, since, check_at) VALUES (?, ?, ?)", (reason, since, check_at)
    )
    return first


def lift(db: sqlite3.Connection) -> bool:
    """Sending works again (or the config was reloaded); True if the queue was paused."""
    return db.execute("DELETE FROM pauses").rowcount > 0


def check_now(db: sqlite3.Connection, now: float) -> bool:
    """`retry`: try the paused queue at once instead of at its `check_at`; True if it waited."""
    return db.execute("UPDATE pauses SET check_at = ? WHERE check_at > ?", (now, now)).rowcount > 0

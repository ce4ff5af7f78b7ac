"""The queries on `imap_cursors`: how far each folder of the sender's mailbox has been read
(UIDVALIDITY + last UID), so each message is looked at once.

Each function runs on the connection it is given and never commits: the cursor moves in the
same transaction as what the message it passes produced.
"""

from __future__ import annotations

import sqlite3


def every(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """folder → (uidvalidity, last_uid) of every folder read so far."""
    return {
        row["folder"]: (row["uidvalidity"], row["last_uid"])
        for row in db.execute("SELECT folder, uidvalidity, last_uid FROM imap_cursors")
    }


def advance(db: sqlite3.Connection, folder: str, uidvalidity: int, uid: int, now: float) -> None:
    """Every message of `folder` up to `uid` has been looked at. A new UIDVALIDITY replaces
    the old cursor; within one, the cursor never moves back."""
    db.execute(
        "INSERT INTO imap_cursors(folder, uidvalidity, last_uid, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(folder) DO UPDATE SET "
        "last_uid = CASE WHEN uidvalidity = excluded.uidvalidity "
        "THEN MAX(last_uid, excluded.last_uid) ELSE excluded.last_uid END, "
        "uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at",
        (folder, uidvalidity, uid, now),
    )

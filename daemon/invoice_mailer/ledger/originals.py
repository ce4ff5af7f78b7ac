"""The `originals` table: the source files (path, size, mtime) that the intake copied rather than
moved (`originals: keep`, or the spool on another filesystem), so none is ever taken twice.

Paths and times are stored as the intake gives them (storage.safe_name, storage.ledger_ns).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def record(db: sqlite3.Connection, path: str, size: int, mtime_ns: int, document_id: int) -> None:
    """This very file became `document_id` (in the transaction that adds the document)."""
    db.execute(
        "INSERT OR REPLACE INTO originals(path, size, mtime_ns, document_id) VALUES (?, ?, ?, ?)",
        (path, size, mtime_ns, document_id),
    )


def document_of(db: sqlite3.Connection, path: str, size: int, mtime_ns: int) -> int | None:
    """The document a copy of this very file became, if any."""
    row = db.execute(
        "SELECT document_id FROM originals WHERE path = ? AND size = ? AND mtime_ns = ?",
        (path, size, mtime_ns),
    ).fetchone()
    return None if row is None else int(row[0])


def forget(db: sqlite3.Connection, files: Iterable[tuple[str, int, int]]) -> None:
    """The sources (path, size, mtime_ns) are gone (`originals: move`): nothing to remember."""
    db.executemany("DELETE FROM originals WHERE path = ? AND size = ? AND mtime_ns = ?", files)

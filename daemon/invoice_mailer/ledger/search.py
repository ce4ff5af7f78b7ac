"""The office's search, read: documents by a full-text query (the indexes of searchschema.py),
a state and a range of ids (a date range, turned into ids by `id_bounds`); newest first.

`match` is an FTS5 query that office/search.py builds from quoted terms only: what the user
typed never reaches FTS5's syntax. Like every query module, nothing here commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

_NO_UPPER_BOUND = 2**63 - 1


def id_bounds(
    db: sqlite3.Connection, since: float | None, before: float | None
) -> tuple[int, int] | None:
    """The ids of the first document taken at or after `since` and of the last taken before
    `before` (None: nothing in that range). Ids grow with the time taken (one writer, taken_at
    is the time of the insert), so a date range becomes a range of rowids, which both full-text
    indexes can walk without reading the rest."""
    low = db.execute(
        "SELECT MIN(id) FROM documents WHERE taken_at >= ?", (since if since else 0.0,)
    ).fetchone()[0]
    if before is None:
        high = db.execute("SELECT MAX(id) FROM documents").fetchone()[0]
    else:
        high = db.execute("SELECT MAX(id) FROM documents WHERE taken_at < ?", (before,)).fetchone()[
            0
        ]
    if low is None or high is None or low > high:
        return None
    return low, high


def _state_clause(states: Sequence[str]) -> str:
    return f" AND d.state IN ({', '.join('?' for _ in states)})" if states else ""


def matching(
    db: sqlite3.Connection,
    match: str,
    message_match: str | None,
    ids: tuple[int, int],
    states: Sequence[str],
    limit: int,
) -> list[sqlite3.Row]:
    """Documents whose own text matches `match`, or the text of a message that carries them
    `message_match` (None: not looked at), within `ids` and `states` (empty: any); newest
    first, at most `limit`.

    Each index is walked newest first and stops at `limit`: a word found in a million
    documents costs what `limit` of them cost.
    """
    where = _state_clause(states)
    own = db.execute(
        "SELECT d.* FROM search_documents s JOIN documents d ON d.id = s.rowid "
        f"WHERE search_documents MATCH ? AND s.rowid BETWEEN ? AND ?{where} "
        "ORDER BY s.rowid DESC LIMIT ?",
        (match, *ids, *states, limit),
    ).fetchall()
    if message_match is None:
        return own
    # A message is newer than what it carries: its documents are in range when they are.
    by_message = db.execute(
        "SELECT d.* FROM search_deliveries s "
        "JOIN attachments a ON a.delivery_id = s.rowid JOIN documents d ON d.id = a.document_id "
        f"WHERE search_deliveries MATCH ? AND d.id BETWEEN ? AND ?{where} "
        "ORDER BY s.rowid DESC LIMIT ?",
        (message_match, *ids, *states, limit),
    ).fetchall()
    merged = {row["id"]: row for row in own + by_message}
    return [merged[key] for key in sorted(merged, reverse=True)[:limit]]


def by_receipt(
    db: sqlite3.Connection,
    provider_id: str,
    ids: tuple[int, int],
    states: Sequence[str],
    limit: int,
) -> list[sqlite3.Row]:
    """Documents a receipt with this identificativo (or an SdI notice with this
    IdentificativoSdI) is about, in any case; newest first, at most `limit`."""
    where = _state_clause(states)
    return db.execute(
        "SELECT * FROM (SELECT d.* FROM receipts r JOIN attachments a "
        "ON a.delivery_id = r.delivery_id JOIN documents d ON d.id = a.document_id "
        f"WHERE r.provider_id = ? COLLATE NOCASE AND d.id BETWEEN ? AND ?{where} "
        "UNION SELECT d.* FROM receipts r JOIN documents d ON d.id = r.document_id "
        f"WHERE r.provider_id = ? COLLATE NOCASE AND d.id BETWEEN ? AND ?{where}) "
        "ORDER BY id DESC LIMIT ?",
        (provider_id, *ids, *states, provider_id, *ids, *states, limit),
    ).fetchall()


def has_word(db: sqlite3.Connection, match: str) -> bool:
    """Whether any document's or message's text matches `match` (one quoted word)."""
    return any(
        db.execute(f"SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT 1", (match,)).fetchone()
        for table in ("search_documents", "search_deliveries")
    )


def listing(
    db: sqlite3.Connection,
    ids: tuple[int, int],
    states: Sequence[str],
    limit: int,
    newest_first: bool = True,
) -> list[sqlite3.Row]:
    """Documents within `ids` and `states` without a text: the register, a state's list."""
    order = "DESC" if newest_first else ""
    return db.execute(
        f"SELECT d.* FROM documents d WHERE d.id BETWEEN ? AND ?{_state_clause(states)} "
        f"ORDER BY d.id {order} LIMIT ?",
        (*ids, *states, limit),
    ).fetchall()


def every_id() -> tuple[int, int]:
    """The range of ids that holds every document."""
    return 0, _NO_UPPER_BOUND


def superseded_by(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """The held or failed documents that this one closed (closing.py's reason names it)."""
    return db.execute(
        "SELECT id, name, reason, updated_at FROM documents WHERE state = 'superseded' "
        "AND reason LIKE ? ORDER BY id",
        (f"superseded by document {int(document_id)} (%",),
    ).fetchall()


def duplicates_of(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """Later copies of the same bytes recorded as duplicates of this document (not sent)."""
    return db.execute(
        "SELECT id, name, taken_at FROM documents WHERE duplicate_of = ? ORDER BY id",
        (document_id,),
    ).fetchall()

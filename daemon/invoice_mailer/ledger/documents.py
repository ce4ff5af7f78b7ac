"""The `documents` table, read: one row per file taken from the export folder, on its way through
`DocumentState` (the diagram is in states.py). The writes are in `document_changes`.

Each function runs on the connection it is given, inside the caller's transaction if there is
one: none begins or commits a transaction, so several calls still commit together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from invoice_mailer.ledger.deliveries import FAILED_CUSTOMER_DELIVERY
from invoice_mailer.ledger.states import PENDING_DELIVERY, DeliveryState, DocumentState, Purpose


def get(db: sqlite3.Connection, document_id: int) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()


def with_ids(db: sqlite3.Connection, ids: Sequence[int]) -> list[sqlite3.Row]:
    """The documents among `ids` that exist, in no particular order."""
    marks = ", ".join("?" for _ in ids)
    return db.execute(f"SELECT * FROM documents WHERE id IN ({marks})", tuple(ids)).fetchall()


def xml_named(db: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """The latest FatturaPA XML (or .p7m) taken under this file name: what an SdI notice's
    NomeFile names."""
    return db.execute(
        "SELECT * FROM documents WHERE name = ? AND kind IN ('xml', 'p7m') "
        "ORDER BY id DESC LIMIT 1",
        (name,),
    ).fetchone()


def in_state(
    db: sqlite3.Connection, state: DocumentState, limit: int | None = None
) -> list[sqlite3.Row]:
    """Oldest first; at most `limit`."""
    cap = f" LIMIT {int(limit)}" if limit is not None else ""
    return db.execute(
        f"SELECT * FROM documents WHERE state = ? ORDER BY id{cap}", (state,)
    ).fetchall()


def count_by_state(db: sqlite3.Connection) -> dict[str, int]:
    return {
        state: n for state, n in db.execute("SELECT state, COUNT(*) FROM documents GROUP BY state")
    }


def every(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every document, oldest first (the demo's summary: a handful of rows)."""
    return db.execute("SELECT * FROM documents ORDER BY id").fetchall()


def states_by_name(db: sqlite3.Connection) -> dict[str, str]:
    return {row[0]: row[1] for row in db.execute("SELECT name, state FROM documents")}


def info_of(row: sqlite3.Row | Mapping[str, Any]) -> dict[str, Any]:
    """The routing facts stored with a document (JSON column `info`)."""
    return json.loads(row["info"]) if row["info"] else {}


def of_delivery(db: sqlite3.Connection, delivery_id: int) -> list[sqlite3.Row]:
    """The documents a message carries, in the order it attaches them."""
    return db.execute(
        "SELECT d.* FROM documents d JOIN attachments a ON a.document_id = d.id "
        "WHERE a.delivery_id = ? ORDER BY a.position",
        (delivery_id,),
    ).fetchall()


# -- intake -------------------------------------------------------------------------------


def left_in_place(db: sqlite3.Connection) -> set[tuple[str, int, int]]:
    """(path, size, mtime_ns) of the files recorded as too large and left where they are
    (their location is their own absolute path): not looked at again while unchanged."""
    rows = db.execute(
        "SELECT location, size, mtime_ns FROM documents WHERE state = ? AND location LIKE '/%'",
        (DocumentState.FAILED,),
    )
    return {(row[0], row[1], row[2]) for row in rows}


def spool_paths(db: sqlite3.Connection) -> set[str]:
    """Every spool path a row names: its location, or where a move back into the spool (moving_to)
    is taking it, so that such a file is never mistaken for one that lost its row."""
    return {
        row[0]
        for row in db.execute(
            "SELECT location FROM documents WHERE location LIKE 'spool/%' "
            "UNION SELECT moving_to FROM documents WHERE moving_to LIKE 'spool/%'"
        )
    }


# -- routing ------------------------------------------------------------------------------


def to_route(db: sqlite3.Connection, now: float, limit: int = -1) -> list[sqlite3.Row]:
    """Taken documents, and waiting ones whose wait for their pair is over; none that `retry`
    is still moving back into the spool (moving_to). The first `limit` (-1: all)."""
    return db.execute(
        "SELECT * FROM documents WHERE (state = ? OR (state = ? AND wait_until <= ?)) "
        "AND moving_to IS NULL ORDER BY id LIMIT ?",
        (DocumentState.TAKEN, DocumentState.WAITING, now, limit),
    ).fetchall()


def next_wait_end(db: sqlite3.Connection) -> float | None:
    """When the first waiting document stops waiting for its pair (None: none waits)."""
    row = db.execute(
        "SELECT MIN(wait_until) FROM documents WHERE state = ?", (DocumentState.WAITING,)
    ).fetchone()
    return row[0]


def waiting_besides(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """The waiting documents other than this one, oldest first: the candidates for its pair."""
    return db.execute(
        "SELECT * FROM documents WHERE state = ? AND id != ? ORDER BY id",
        (DocumentState.WAITING, document_id),
    ).fetchall()


def sent_before(
    db: sqlite3.Connection, document: sqlite3.Row, purpose: Purpose
) -> list[sqlite3.Row]:
    """Earlier documents with the same bytes whose `purpose` message was sent: id, name, and
    that message's to_addrs and sent_at, the earliest message first."""
    return db.execute(
        "SELECT d.id, d.name, v.to_addrs, v.sent_at FROM documents d "
        "JOIN attachments a ON a.document_id = d.id JOIN deliveries v ON v.id = a.delivery_id "
        "WHERE d.sha256 = ? AND d.id < ? AND v.purpose = ? AND v.state = ? "
        "ORDER BY v.sent_at",
        (document["sha256"], document["id"], purpose, DeliveryState.SENT),
    ).fetchall()


# -- the accountant's sessions ------------------------------------------------------------


def in_session(db: sqlite3.Connection, session_id: int) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT * FROM documents WHERE session_id = ? ORDER BY id", (session_id,)
    ).fetchall()


def count_in_session(db: sqlite3.Connection, session_id: int) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM documents WHERE session_id = ?", (session_id,)
    ).fetchone()[0]


def routing_pending(db: sqlite3.Connection, session_id: int, kinds: Sequence[str]) -> bool:
    """A member of the session not routed yet, or a document of these kinds about to join it:
    its facts, which the bundle lists, are not known yet."""
    marks = ", ".join("?" for _ in kinds) or "NULL"
    row = db.execute(
        "SELECT 1 FROM documents WHERE state = ? AND (session_id = ? OR "
        f"(session_id IS NULL AND kind IN ({marks}))) LIMIT 1",
        (DocumentState.TAKEN, session_id, *kinds),
    ).fetchone()
    return row is not None


def refused_since(db: sqlite3.Connection, since: float, kinds: Sequence[str]) -> list[sqlite3.Row]:
    """Files of these kinds refused at intake (failed, in no session, not a duplicate) and taken
    since `since`, oldest first."""
    return db.execute(
        "SELECT * FROM documents WHERE state = ? AND session_id IS NULL AND duplicate_of "
        f"IS NULL AND taken_at >= ? AND kind IN ({', '.join('?' for _ in kinds) or 'NULL'}) "
        "ORDER BY id",
        (DocumentState.FAILED, since, *kinds),
    ).fetchall()


# -- the archive --------------------------------------------------------------------------

_FINISHED_IN_SPOOL = f"""
SELECT d.* FROM documents d
WHERE d.location LIKE 'spool/%'
  AND d.state IN (?, ?, ?)
  AND NOT EXISTS (
      SELECT 1 FROM attachments a JOIN deliveries v ON v.id = a.delivery_id
      WHERE a.document_id = d.id AND v.state IN ({", ".join("?" for _ in PENDING_DELIVERY)}))
  AND (d.session_id IS NULL OR EXISTS (
      SELECT 1 FROM sessions s WHERE s.id = d.session_id AND s.closed_at IS NOT NULL))
ORDER BY d.id LIMIT ?
"""


def finished_in_spool(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """Documents in the spool that the archive files now: routed, done or failed, with no
    delivery pending and no session still open; oldest first, at most `limit`."""
    states = (DocumentState.ROUTED, DocumentState.DONE, DocumentState.FAILED)
    return db.execute(_FINISHED_IN_SPOOL, (*states, *PENDING_DELIVERY, limit)).fetchall()


def moving(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Documents whose file a crash may have stopped on its way to `moving_to`."""
    return db.execute("SELECT * FROM documents WHERE moving_to IS NOT NULL").fetchall()


def closable_before(
    db: sqlite3.Connection, document_id: int, name: str, number: str | None
) -> list[sqlite3.Row]:
    """Held or failed documents older than `document_id` with this name or number, not being
    moved: the ones it may supersede (closing.same_document decides)."""
    return db.execute(
        "SELECT * FROM documents WHERE state IN (?, ?) AND id < ? AND moving_to IS NULL "
        "AND (name = ? OR number = ?) ORDER BY id",
        (DocumentState.HELD, DocumentState.FAILED, document_id, name, number),
    ).fetchall()


# -- what failed: one answer for `status`, `retry --failed`, `dismiss` and the STATUS line ----

# Filed in failed/, or still in the spool with a failed customer message (filed by the archive
# next). `failure`: the reason, or the server's reply while the archive has not written one yet.
_FAILED = (
    "SELECT *, COALESCE(reason, ("
    + FAILED_CUSTOMER_DELIVERY.format(document="documents.id").replace("v.*", "v.last_error")
    + " ORDER BY v.id LIMIT 1)) AS failure FROM documents "
    "WHERE state = :failed OR (state = :routed AND EXISTS ("
    + FAILED_CUSTOMER_DELIVERY.format(document="documents.id")
    + "))"
)
_FAILED_STATES = {"failed": DocumentState.FAILED, "routed": DocumentState.ROUTED}


def failed(
    db: sqlite3.Connection, newest_first: bool = False, limit: int | None = None
) -> list[sqlite3.Row]:
    """The documents that failed, each with its `failure`; oldest first unless `newest_first`
    (the last updated first)."""
    order = "updated_at DESC, id DESC" if newest_first else "id"
    cap = f" LIMIT {int(limit)}" if limit is not None else ""
    return db.execute(f"{_FAILED} ORDER BY {order}{cap}", _FAILED_STATES).fetchall()


def count_failed(db: sqlite3.Connection) -> int:
    return db.execute(f"SELECT COUNT(*) FROM ({_FAILED})", _FAILED_STATES).fetchone()[0]


def failure_of(db: sqlite3.Connection, document_id: int) -> sqlite3.Row | None:
    """The document's `failure` if it is among the failed ones; None if it is not."""
    return db.execute(
        f"SELECT failure FROM ({_FAILED}) WHERE id = :id", {**_FAILED_STATES, "id": document_id}
    ).fetchone()


def customer_failed(db: sqlite3.Connection, document_id: int) -> bool:
    """A message of this document to its customer failed (whatever the document's state)."""
    found = db.execute(
        "SELECT 1 FROM documents WHERE id = ? AND EXISTS ("
        + FAILED_CUSTOMER_DELIVERY.format(document="documents.id")
        + ")",
        (document_id,),
    ).fetchone()
    return found is not None


def partners_to_retry(
    db: sqlite3.Connection, delivery_ids: Sequence[int], handled: Iterable[int], filed_only: bool
) -> list[sqlite3.Row]:
    """The other documents of these failed messages, still failed or routed, that `retry`
    takes along; `filed_only`: only those already filed in failed/."""
    where = "d.location LIKE 'failed/%'" if filed_only else "1"
    return db.execute(
        "SELECT DISTINCT d.* FROM documents d JOIN attachments a ON a.document_id = d.id "
        f"WHERE a.delivery_id IN ({', '.join('?' for _ in delivery_ids)}) AND d.id NOT IN "
        f"({', '.join(str(int(i)) for i in handled)}) AND d.state IN (?, ?) AND {where}",
        (*delivery_ids, DocumentState.FAILED, DocumentState.ROUTED),
    ).fetchall()

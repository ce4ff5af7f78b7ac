"""The reads of `deliveries`: one row per message, from planned to sent, failed or unconfirmed.

Each function runs on the connection it is given (`Ledger.db`, or what `Ledger.transaction()`
yields) and never commits: the caller's transaction holds its calls together. The states and
their transitions are in states.py; the writes in delivery_changes.py; which documents a
message carries in attachments.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from invoice_mailer.ledger.states import PENDING_DELIVERY, DeliveryState, Purpose

# What "the customer did not get it" means, for the archive (failed/) and `retry --failed`
# alike: a failed customer delivery. A failed copy or bundle is a notice of its own.
# A fragment other statements embed ({document}: the document's id there), so its state and
# purpose are written in from the enums rather than bound as parameters.
FAILED_CUSTOMER_DELIVERY = (
    "SELECT v.* FROM deliveries v JOIN attachments a ON a.delivery_id = v.id "
    f"WHERE a.document_id = {{document}} AND v.state = '{DeliveryState.FAILED}' "
    f"AND v.purpose = '{Purpose.CUSTOMER}'"
)

# A customer message (and its separate copy) fails with its document and is retried with it;
# a bundle or an alert is a message of its own, resent by itself.
_WITH_DOCUMENT = (Purpose.CUSTOMER, Purpose.COPY)
_ALONE = (Purpose.BUNDLE, Purpose.ALERT)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


# -- the sender's queue -------------------------------------------------------------------


def by_id(db: sqlite3.Connection, delivery_id: int) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()


def by_eml(db: sqlite3.Connection, eml: str) -> sqlite3.Row | None:
    """The delivery whose built message lies at `eml` (relative to state_dir)."""
    return db.execute("SELECT * FROM deliveries WHERE eml = ?", (eml,)).fetchone()


def first_due(db: sqlite3.Connection, now: float) -> sqlite3.Row | None:
    """The pending delivery to send next among those due by `now`: the longest waiting."""
    return db.execute(
        f"SELECT * FROM deliveries WHERE state IN ({_marks(PENDING_DELIVERY)}) "
        "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
        (*PENDING_DELIVERY, now),
    ).fetchone()


def next_attempt_at(db: sqlite3.Connection) -> float | None:
    """When the earliest pending delivery is due; None when nothing is pending."""
    return db.execute(
        f"SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ({_marks(PENDING_DELIVERY)})",
        PENDING_DELIVERY,
    ).fetchone()[0]


def next_built(db: sqlite3.Connection, now: float, excluding: int, count: int) -> list[sqlite3.Row]:
    """The next `count` queued deliveries due by `now` whose message is built, other than
    `excluding` (the one in flight), in the order they go: what the sender may mark ahead."""
    return db.execute(
        "SELECT * FROM deliveries WHERE state = ? AND eml IS NOT NULL AND next_attempt_at <= ? "
        "AND id != ? ORDER BY next_attempt_at, id LIMIT ?",
        (DeliveryState.QUEUED, now, excluding, count),
    ).fetchall()


def built_unsent(db: sqlite3.Connection, up_to: int) -> int:
    """How many queued deliveries have their message built, counted up to `up_to`."""
    return db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE state = ? AND eml IS NOT NULL "
        "LIMIT ?)",
        (DeliveryState.QUEUED, up_to),
    ).fetchone()[0]


def due_unbuilt(db: sqlite3.Connection, now: float, limit: int) -> list[sqlite3.Row]:
    """The next `limit` queued deliveries due by `now` whose message is not built yet."""
    return db.execute(
        "SELECT * FROM deliveries WHERE state = ? AND eml IS NULL AND next_attempt_at <= ? "
        "ORDER BY next_attempt_at, id LIMIT ?",
        (DeliveryState.QUEUED, now, limit),
    ).fetchall()


def nth_latest_sent_at(db: sqlite3.Connection, since: float, n: int) -> float | None:
    """When the n-th most recent message sent after `since` went; None when fewer went."""
    row = db.execute(
        "SELECT sent_at FROM deliveries WHERE sent_at > ? ORDER BY sent_at DESC LIMIT 1 OFFSET ?",
        (since, n - 1),
    ).fetchone()
    return None if row is None else row[0]


def last_alert_at(db: sqlite3.Connection) -> float | None:
    """When the latest alert to the admin was planned; None before the first."""
    return db.execute(
        "SELECT MAX(created_at) FROM deliveries WHERE purpose = ?", (Purpose.ALERT,)
    ).fetchone()[0]


def count_pending(db: sqlite3.Connection) -> int:
    return db.execute(
        f"SELECT COUNT(*) FROM deliveries WHERE state IN ({_marks(PENDING_DELIVERY)})",
        PENDING_DELIVERY,
    ).fetchone()[0]


def count_by_state(db: sqlite3.Connection) -> dict[str, int]:
    return {
        state: n for state, n in db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
    }


# -- the deliveries of a document ---------------------------------------------------------


def of_document(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """Every message that carries the document, oldest first."""
    return db.execute(
        "SELECT v.* FROM deliveries v JOIN attachments a ON a.delivery_id = v.id "
        "WHERE a.document_id = ? ORDER BY v.id",
        (document_id,),
    ).fetchall()


def of_documents(db: sqlite3.Connection, document_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The messages of several documents, oldest first, each row with its `document_id`."""
    return db.execute(
        "SELECT v.*, a.document_id FROM deliveries v JOIN attachments a "
        f"ON a.delivery_id = v.id WHERE a.document_id IN ({_marks(document_ids)}) ORDER BY v.id",
        tuple(document_ids),
    ).fetchall()


def customer_messages_of(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """State, To addresses and last error of the document's customer messages, oldest first."""
    return db.execute(
        "SELECT v.state, v.to_addrs, v.last_error FROM deliveries v JOIN attachments a "
        "ON a.delivery_id = v.id WHERE a.document_id = ? AND v.purpose = ? "
        "ORDER BY v.id",
        (document_id, Purpose.CUSTOMER),
    ).fetchall()


def first_failed_customer(db: sqlite3.Connection, document_id: int) -> sqlite3.Row | None:
    """The document's first failed customer message: why the customer did not get it."""
    return db.execute(
        FAILED_CUSTOMER_DELIVERY.format(document="?") + " ORDER BY v.id LIMIT 1", (document_id,)
    ).fetchone()


def unconfirmed_of(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT v.* FROM deliveries v JOIN attachments a ON a.delivery_id = v.id "
        "WHERE a.document_id = ? AND v.state = ?",
        (document_id, DeliveryState.UNCONFIRMED),
    ).fetchall()


def failed_with_document(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """Id and last error of the document's failed customer messages and copies."""
    return db.execute(
        "SELECT v.id, v.last_error FROM deliveries v JOIN attachments a ON a.delivery_id = v.id "
        f"WHERE a.document_id = ? AND v.state = ? AND v.purpose IN ({_marks(_WITH_DOCUMENT)})",
        (document_id, DeliveryState.FAILED, *_WITH_DOCUMENT),
    ).fetchall()


def failed_alone_of(db: sqlite3.Connection, document_id: int) -> list[sqlite3.Row]:
    """The failed bundles and alerts that carry the document."""
    return db.execute(
        "SELECT v.* FROM deliveries v JOIN attachments a ON a.delivery_id = v.id "
        f"WHERE a.document_id = ? AND v.state = ? AND v.purpose IN ({_marks(_ALONE)})",
        (document_id, DeliveryState.FAILED, *_ALONE),
    ).fetchall()


# -- what the sender's mailbox speaks of (receipts) ------------------------------------

# A message the server may have: taken (sent), or its reply lost (sending, unconfirmed).
_MAYBE_SENT = (DeliveryState.SENT, DeliveryState.SENDING, DeliveryState.UNCONFIRMED)


def maybe_sent_with_message_id(db: sqlite3.Connection, message_id: str) -> list[sqlite3.Row]:
    """The messages with this Message-ID that went, or may have gone, to the server, oldest
    first (recipients the server took later have a row of their own, same Message-ID)."""
    return db.execute(
        f"SELECT * FROM deliveries WHERE message_id = ? AND state IN ({_marks(_MAYBE_SENT)}) "
        "ORDER BY id",
        (message_id, *_MAYBE_SENT),
    ).fetchall()


# -- what `status` lists --------------------------------------------------------------------


def failed_alone(
    db: sqlite3.Connection, *, newest_first: bool = False, limit: int = -1
) -> list[sqlite3.Row]:
    """The failed bundles and alerts (`limit` -1: all of them)."""
    order = "id DESC" if newest_first else "id"
    return db.execute(
        f"SELECT * FROM deliveries WHERE state = ? AND purpose IN ({_marks(_ALONE)}) "
        f"ORDER BY {order} LIMIT ?",
        (DeliveryState.FAILED, *_ALONE, limit),
    ).fetchall()


def waiting_to_retry(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """Deferred messages, soonest first; a resend after a lost reply that then met a transient
    failure waits as `sending`, with its error."""
    return db.execute(
        "SELECT * FROM deliveries WHERE (state = ? OR (state = ? AND last_error IS NOT NULL)) "
        "ORDER BY next_attempt_at LIMIT ?",
        (DeliveryState.DEFERRED, DeliveryState.SENDING, limit),
    ).fetchall()


def latest_unconfirmed(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT * FROM deliveries WHERE state = ? ORDER BY id DESC LIMIT ?",
        (DeliveryState.UNCONFIRMED, limit),
    ).fetchall()


def latest_sent(db: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT * FROM deliveries WHERE state = ? ORDER BY sent_at DESC LIMIT ?",
        (DeliveryState.SENT, limit),
    ).fetchall()

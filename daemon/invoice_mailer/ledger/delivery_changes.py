"""The writes on `deliveries`: messages planned, and each move along the state diagram of
states.py. The reads are in deliveries.py.

Each function runs on the connection it is given (what `Ledger.transaction()` yields) and never
commits: the caller's transaction holds its calls together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from invoice_mailer.ledger import attachments
from invoice_mailer.ledger.states import DeliveryState, Purpose

# Waiting for their next attempt: what `retry` makes due at once.
_WAITING = (DeliveryState.DEFERRED, DeliveryState.SENDING)


# -- new messages -------------------------------------------------------------------------


def plan(
    db: sqlite3.Connection,
    purpose: Purpose,
    to: Sequence[str],
    cc: Sequence[str],
    bcc: Sequence[str],
    message_id: str,
    now: float,
    *,
    session_id: int | None = None,
    part: int | None = None,
    parts: int | None = None,
) -> int:
    """A new message, queued and due now (its documents: attachments.attach); its id."""
    cursor = db.execute(
        "INSERT INTO deliveries(purpose, state, to_addrs, cc_addrs, bcc_addrs, message_id, "
        "created_at, next_attempt_at, session_id, part, parts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            purpose,
            DeliveryState.QUEUED,
            json.dumps(list(to)),
            json.dumps(list(cc)),
            json.dumps(list(bcc)),
            message_id,
            now,
            now,
            session_id,
            part,
            parts,
        ),
    )
    return int(cursor.lastrowid or 0)


def plan_alert(
    db: sqlite3.Connection, to: Sequence[str], subject: str, body: str, message_id: str, now: float
) -> None:
    """A message to the admin (alerts.to), with its text: it carries no document."""
    db.execute(
        "INSERT INTO deliveries(purpose, state, to_addrs, subject, body, message_id, "
        "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (Purpose.ALERT, DeliveryState.QUEUED, json.dumps(list(to)), subject, body, message_id,
         now, now),
    )  # fmt: skip


def plan_rest(
    db: sqlite3.Connection,
    original: sqlite3.Row,
    recipients: Sequence[str],
    eml: str,
    due: float,
) -> int:
    """The recipients a server asked to try later get the very same message (same bytes, same
    Message-ID) in a delivery of their own; its age counts from the original's."""
    cursor = db.execute(
        "INSERT INTO deliveries(purpose, state, to_addrs, subject, body, message_id, eml, size, "
        "created_at, next_attempt_at, session_id, part, parts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            original["purpose"],
            DeliveryState.QUEUED,
            json.dumps(list(recipients)),
            original["subject"],
            original["body"],
            original["message_id"],
            eml,
            original["size"],
            original["created_at"],
            due,
            original["session_id"],
            original["part"],
            original["parts"],
        ),
    )
    delivery_id = int(cursor.lastrowid or 0)
    attachments.copy_from(db, delivery_id, original["id"])
    return delivery_id


def replan(
    db: sqlite3.Connection, delivery_id: int, message_id: str, now: float, old_state: DeliveryState
) -> int:
    """A failed message planned again as a new one with the same text and attachments and a new
    Message-ID; the old row stays as history in `old_state`. The new row's id."""
    cursor = db.execute(
        "INSERT INTO deliveries(purpose, state, to_addrs, cc_addrs, bcc_addrs, subject, body, "
        "message_id, created_at, next_attempt_at, session_id, part, parts) "
        "SELECT purpose, ?, to_addrs, cc_addrs, bcc_addrs, subject, body, ?, ?, ?, session_id, "
        "part, parts FROM deliveries WHERE id = ?",
        (DeliveryState.QUEUED, message_id, now, now, delivery_id),
    )
    new_id = int(cursor.lastrowid or 0)
    attachments.copy_from(db, new_id, delivery_id)
    set_state(db, delivery_id, old_state)
    return new_id


def set_bundle_text(db: sqlite3.Connection, delivery_id: int, subject: str, body: str) -> None:
    """The message is a bundle with this text (its separate copy too: not a customer's text)."""
    db.execute(
        "UPDATE deliveries SET purpose = ?, subject = ?, body = ? WHERE id = ?",
        (Purpose.BUNDLE, subject, body, delivery_id),
    )


def record_built(
    db: sqlite3.Connection, delivery_id: int, eml: str, size: int, subject: str, body: str
) -> None:
    """The message is built at `eml` (relative to state_dir), with the text it was built with."""
    db.execute(
        "UPDATE deliveries SET eml = ?, size = ?, subject = ?, body = ? WHERE id = ?",
        (eml, size, subject, body, delivery_id),
    )


def set_eml(db: sqlite3.Connection, delivery_id: int, eml: str | None) -> None:
    """Where the sent message is kept now (None: not kept)."""
    db.execute("UPDATE deliveries SET eml = ? WHERE id = ?", (eml, delivery_id))


# -- outcomes -----------------------------------------------------------------------------


def set_state(db: sqlite3.Connection, delivery_id: int, state: DeliveryState) -> None:
    db.execute("UPDATE deliveries SET state = ? WHERE id = ?", (state, delivery_id))


def unmark_sending(db: sqlite3.Connection, delivery_id: int) -> None:
    """A queued delivery marked `sending` ahead and not sent after all: queued again."""
    db.execute(
        "UPDATE deliveries SET state = ? WHERE id = ? AND state = ?",
        (DeliveryState.QUEUED, delivery_id, DeliveryState.SENDING),
    )


def record_sent(
    db: sqlite3.Connection,
    delivery_id: int,
    state: DeliveryState,
    when: float,
    attempts: int,
    reply: str,
    error: str | None,
) -> None:
    """The server took the message: `sent`, or `failed` when no To address took it."""
    db.execute(
        "UPDATE deliveries SET state = ?, sent_at = ?, attempts = ?, reply = ?, "
        "last_error = ? WHERE id = ?",
        (state, when, attempts, reply, error, delivery_id),
    )


def defer(
    db: sqlite3.Connection,
    delivery_id: int,
    state: DeliveryState,
    due: float,
    attempts: int,
    error: str,
    reply: str | None,
) -> None:
    """Tried again at `due`: `deferred`, or still `sending` after a lost reply."""
    db.execute(
        "UPDATE deliveries SET state = ?, next_attempt_at = ?, attempts = ?, "
        "last_error = ?, reply = ? WHERE id = ?",
        (state, due, attempts, error, reply, delivery_id),
    )


def record_failure(
    db: sqlite3.Connection,
    delivery_id: int,
    state: DeliveryState,
    attempts: int,
    error: str,
    reply: str | None,
) -> None:
    """`failed` for good, or back in the queue when the whole queue is paused."""
    db.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, last_error = ?, reply = ? WHERE id = ?",
        (state, attempts, error, reply, delivery_id),
    )


def mark_unconfirmed(db: sqlite3.Connection, delivery_id: int, attempts: int, error: str) -> None:
    db.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, last_error = ?, reply = NULL WHERE id = ?",
        (DeliveryState.UNCONFIRMED, attempts, error, delivery_id),
    )


def record_interruption(
    db: sqlite3.Connection,
    delivery_id: int,
    state: DeliveryState,
    attempts: int,
    error: str | None,
) -> None:
    """Stopping between tries: the delivery stays due in `state` for the next start."""
    db.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, last_error = ? WHERE id = ?",
        (state, attempts, error, delivery_id),
    )


# -- the admin's hands (`retry`, `dismiss`) ------------------------------------------------


def send_again(db: sqlite3.Connection, delivery_id: int, now: float) -> None:
    """An unconfirmed message goes once more as `sending`, so a second lost reply is known."""
    db.execute(
        "UPDATE deliveries SET state = ?, next_attempt_at = ? WHERE id = ?",
        (DeliveryState.SENDING, now, delivery_id),
    )


def confirm_sent(db: sqlite3.Connection, delivery_id: int, when: float, note: str) -> None:
    """An unconfirmed message seen arriving: it counts as sent, with how that is known."""
    db.execute(
        "UPDATE deliveries SET state = ?, sent_at = ?, last_error = ? WHERE id = ?",
        (DeliveryState.SENT, when, note, delivery_id),
    )


def wait_for_receipt(db: sqlite3.Connection, delivery_id: int, until: float) -> None:
    """A PEC sender lost the reply after the final dot: before sending it again, it waits
    until `until` for the provider's accettazione (receipts/), which settles it."""
    db.execute(
        "UPDATE deliveries SET receipt_wait_until = ?, next_attempt_at = ? WHERE id = ?",
        (until, until, delivery_id),
    )


def confirm_by_receipt(db: sqlite3.Connection, delivery_id: int, when: float, note: str) -> bool:
    """A message whose reply was lost (sending, unconfirmed) is shown sent by a receipt that
    quotes it (a PEC accettazione, a bounce): it counts as sent and is not sent again.
    False when it was settled otherwise meanwhile."""
    return (
        db.execute(
            "UPDATE deliveries SET state = ?, sent_at = ?, last_error = ? "
            "WHERE id = ? AND state IN (?, ?)",
            (DeliveryState.SENT, when, note, delivery_id, DeliveryState.SENDING,
             DeliveryState.UNCONFIRMED),
        ).rowcount
        > 0
    )  # fmt: skip


def make_due_now(db: sqlite3.Connection, now: float) -> int:
    """Every message waiting for its next attempt is due now; how many were waiting."""
    return db.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE state IN (?, ?) AND next_attempt_at > ?",
        (now, *_WAITING, now),
    ).rowcount


def make_document_due_now(db: sqlite3.Connection, document_id: int, now: float) -> int:
    """The document's messages waiting for their next attempt are due now; how many."""
    return db.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE state IN (?, ?) "
        "AND next_attempt_at > ? AND id IN (SELECT delivery_id FROM attachments "
        "WHERE document_id = ?)",
        (now, *_WAITING, now, document_id),
    ).rowcount

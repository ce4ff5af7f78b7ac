"""The ledger's queries on deliveries and attachments, on a real SQLite ledger: the ones whose
meaning is more than their name (what counts as due, waiting, failed alone, a resend)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from invoice_mailer.ledger import attachments, deliveries, delivery_changes
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose

T0 = 1_780_000_000.0


def add_document(db: sqlite3.Connection, name: str) -> int:
    cursor = db.execute(
        "INSERT INTO documents(name, source, location, kind, size, mtime_ns, sha256, taken_at, "
        "state, updated_at) VALUES (?, '/export', ?, 'pdf', 1, 1, 'x', ?, ?, ?)",
        (name, f"spool/{name}", T0, DocumentState.ROUTED, T0),
    )
    return int(cursor.lastrowid or 0)


def add_delivery(
    db: sqlite3.Connection,
    documents: Sequence[int] = (),
    *,
    purpose: Purpose = Purpose.CUSTOMER,
    state: DeliveryState = DeliveryState.QUEUED,
    due: float = T0,
    error: str | None = None,
) -> int:
    delivery_id = delivery_changes.plan(
        db, purpose, ["mario@rossi.example"], [], [], "<m@example.it>", T0
    )
    attachments.attach(db, delivery_id, documents)
    db.execute(
        "UPDATE deliveries SET state = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
        (state, due, error, delivery_id),
    )
    return delivery_id


def ids(rows: list[sqlite3.Row]) -> list[int]:
    return [row["id"] for row in rows]


def test_first_due_is_the_longest_waiting_pending_delivery_due_by_then(db):
    add_delivery(db, state=DeliveryState.FAILED, due=T0)
    later = add_delivery(db, state=DeliveryState.DEFERRED, due=T0 + 60)
    first = add_delivery(db, state=DeliveryState.SENDING, due=T0 + 10)
    add_delivery(db, state=DeliveryState.QUEUED, due=T0 + 10)
    assert deliveries.first_due(db, T0) is None
    assert deliveries.first_due(db, T0 + 30)["id"] == first  # same time: the lower id
    assert deliveries.next_attempt_at(db) == T0 + 10
    delivery_changes.set_state(db, first, DeliveryState.SENT)
    delivery_changes.set_state(db, first + 1, DeliveryState.UNCONFIRMED)
    assert deliveries.next_attempt_at(db) == T0 + 60
    assert deliveries.first_due(db, T0 + 60)["id"] == later
    assert deliveries.count_pending(db) == 1


def test_nothing_pending_means_no_next_attempt(db):
    add_delivery(db, state=DeliveryState.SENT)
    assert deliveries.next_attempt_at(db) is None
    assert deliveries.count_by_state(db) == {"sent": 1}


def test_nth_latest_sent_at_counts_only_messages_sent_after_since(db):
    for offset in (0, 10, 20):
        delivery_id = add_delivery(db)
        delivery_changes.record_sent(
            db, delivery_id, DeliveryState.SENT, T0 + offset, 1, "250", None
        )
    assert deliveries.nth_latest_sent_at(db, T0 - 1, 1) == T0 + 20
    assert deliveries.nth_latest_sent_at(db, T0 - 1, 3) == T0
    assert deliveries.nth_latest_sent_at(db, T0, 3) is None  # the one at T0 is not after T0


def test_waiting_to_retry_is_deferred_or_a_resend_that_met_an_error(db):
    deferred = add_delivery(db, state=DeliveryState.DEFERRED, due=T0 + 50)
    resend = add_delivery(db, state=DeliveryState.SENDING, due=T0 + 5, error="421 busy")
    add_delivery(db, state=DeliveryState.SENDING, due=T0)  # being sent right now
    assert ids(deliveries.waiting_to_retry(db, 10)) == [resend, deferred]
    assert delivery_changes.make_due_now(db, T0 + 1) == 2
    assert deliveries.first_due(db, T0 + 1) is not None
    assert delivery_changes.make_due_now(db, T0 + 1) == 0  # already due


def test_make_document_due_now_touches_only_that_documents_messages(db):
    mine, other = add_document(db, "a.pdf"), add_document(db, "b.pdf")
    waiting = add_delivery(db, [mine], state=DeliveryState.DEFERRED, due=T0 + 600)
    add_delivery(db, [other], state=DeliveryState.DEFERRED, due=T0 + 600)
    assert delivery_changes.make_document_due_now(db, mine, T0) == 1
    assert deliveries.by_id(db, waiting)["next_attempt_at"] == T0
    assert deliveries.first_due(db, T0)["id"] == waiting


def test_a_failed_customer_message_fails_the_document_a_failed_bundle_is_resent_alone(db):
    document = add_document(db, "a.pdf")
    copy = add_delivery(db, [document], purpose=Purpose.COPY, state=DeliveryState.FAILED)
    bundle = add_delivery(db, [document], purpose=Purpose.BUNDLE, state=DeliveryState.FAILED)
    alert = add_delivery(db, [], purpose=Purpose.ALERT, state=DeliveryState.FAILED)
    assert deliveries.first_failed_customer(db, document) is None  # a copy is not the customer
    customer = add_delivery(db, [document], state=DeliveryState.FAILED, error="550 no such user")
    assert deliveries.first_failed_customer(db, document)["last_error"] == "550 no such user"
    assert ids(deliveries.failed_with_document(db, document)) == [copy, customer]
    assert ids(deliveries.failed_alone_of(db, document)) == [bundle]
    assert ids(deliveries.failed_alone(db)) == [bundle, alert]
    assert ids(deliveries.failed_alone(db, newest_first=True, limit=1)) == [alert]
    assert attachments.in_bundle(db, document)


def test_replan_is_a_new_queued_message_with_the_same_files_the_old_one_history(db):
    first, second = add_document(db, "a.pdf"), add_document(db, "a.xml")
    old = add_delivery(db, [first, second], purpose=Purpose.BUNDLE, state=DeliveryState.FAILED)
    new = delivery_changes.replan(db, old, "<new@x>", T0 + 5, DeliveryState.RETRIED)
    assert deliveries.by_id(db, old)["state"] == DeliveryState.RETRIED
    row = deliveries.by_id(db, new)
    assert (row["state"], row["purpose"], row["message_id"]) == (
        DeliveryState.QUEUED,
        Purpose.BUNDLE,
        "<new@x>",
    )
    assert attachments.document_ids(db, new) == [first, second]
    assert attachments.names_by_delivery(db, [new]) == {new: ["a.pdf", "a.xml"]}


def test_plan_rest_sends_the_same_message_to_the_rest_and_keeps_its_age(db):
    document = add_document(db, "a.pdf")
    original = add_delivery(db, [document])
    delivery_changes.record_built(db, original, "outgoing/1.eml", 1234, "Fattura", "Gentile")
    row = deliveries.by_id(db, original)
    rest = delivery_changes.plan_rest(db, row, ["later@x.example"], "outgoing/1-rest.eml", T0 + 9)
    copy = deliveries.by_id(db, rest)
    assert copy["message_id"] == row["message_id"] and copy["created_at"] == row["created_at"]
    assert (copy["eml"], copy["size"], copy["next_attempt_at"]) == (
        "outgoing/1-rest.eml",
        1234,
        T0 + 9,
    )
    assert deliveries.by_eml(db, "outgoing/1-rest.eml")["id"] == rest
    assert attachments.document_ids(db, rest) == [document]


def test_an_unconfirmed_message_is_sent_again_or_confirmed_by_hand(db):
    document = add_document(db, "a.pdf")
    lost = add_delivery(db, [document], state=DeliveryState.SENDING)
    delivery_changes.mark_unconfirmed(db, lost, 2, "no reply after '.'")
    assert ids(deliveries.unconfirmed_of(db, document)) == [lost]
    assert ids(deliveries.latest_unconfirmed(db, 5)) == [lost]
    delivery_changes.send_again(db, lost, T0 + 1)
    assert deliveries.first_due(db, T0 + 1)["state"] == DeliveryState.SENDING
    delivery_changes.mark_unconfirmed(db, lost, 3, "no reply again")
    delivery_changes.confirm_sent(db, lost, T0 + 2, "seen in the Sent folder")
    assert deliveries.unconfirmed_of(db, document) == []
    assert ids(deliveries.latest_sent(db, 5)) == [lost]

"""The documents family's queries against a real ledger: the ones whose meaning is not in their
name (what counts as failed, what the archive may file, what routing takes)."""

from __future__ import annotations

import json

from invoice_mailer.ledger import document_changes, documents, originals
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose


def add(ledger, name, state=DocumentState.TAKEN, *, reason=None, location=None, now=100.0):
    with ledger.transaction() as db:
        return document_changes.add(
            db,
            name=name,
            source=f"/export/{name}",
            location=location or f"spool/{name}",
            kind="pdf",
            size=10,
            mtime_ns=1,
            sha256="ab",
            state=state,
            reason=reason,
            now=now,
        )


def deliver(ledger, document_id, purpose, state, *, to="a@example.it", last_error=None):
    """A delivery row attached to the document (the deliveries family's rows, written raw)."""
    with ledger.transaction() as db:
        delivery_id = db.execute(
            "INSERT INTO deliveries(purpose, state, to_addrs, message_id, created_at, "
            "next_attempt_at, last_error) VALUES (?, ?, ?, ?, 0, 0, ?)",
            (purpose, state, json.dumps([to]), f"<{document_id}.{purpose}@x>", last_error),
        ).lastrowid
        db.execute(
            "INSERT INTO attachments(delivery_id, document_id, position) VALUES (?, ?, 0)",
            (delivery_id, document_id),
        )
    return delivery_id


def set_state(ledger, document_id, state, **columns):
    with ledger.transaction() as db:
        sets = ", ".join(f"{column} = ?" for column in ("state", *columns))
        db.execute(
            f"UPDATE documents SET {sets} WHERE id = ?", (state, *columns.values(), document_id)
        )


def test_failed_means_filed_as_failed_or_a_refused_customer_message_still_in_the_spool(ledger):
    filed = add(ledger, "filed.pdf", DocumentState.FAILED, reason="not a PDF")
    refused = add(ledger, "refused.pdf", DocumentState.ROUTED)
    deliver(ledger, refused, Purpose.CUSTOMER, DeliveryState.FAILED, last_error="550 unknown")
    copy_only = add(ledger, "copy.pdf", DocumentState.ROUTED)
    deliver(ledger, copy_only, Purpose.CUSTOMER, DeliveryState.SENT)
    deliver(ledger, copy_only, Purpose.COPY, DeliveryState.FAILED, last_error="550 no copy")
    add(ledger, "held.pdf", DocumentState.HELD, reason="no customer")

    rows = documents.failed(ledger.db)
    assert [(r["id"], r["failure"]) for r in rows] == [
        (filed, "not a PDF"),
        (refused, "550 unknown"),  # the server's reply until the archive writes a reason
    ]
    assert documents.count_failed(ledger.db) == 2
    assert documents.failure_of(ledger.db, refused)["failure"] == "550 unknown"
    assert documents.failure_of(ledger.db, copy_only) is None  # a failed copy is a notice
    assert documents.customer_failed(ledger.db, refused)
    assert not documents.customer_failed(ledger.db, copy_only)


def test_failed_newest_first_orders_by_the_last_update_and_limits(ledger):
    old = add(ledger, "old.pdf", DocumentState.FAILED, reason="x", now=100.0)
    new = add(ledger, "new.pdf", DocumentState.FAILED, reason="y", now=200.0)
    newer = add(ledger, "newer.pdf", DocumentState.FAILED, reason="z", now=300.0)
    set_state(ledger, old, DocumentState.FAILED, updated_at=400.0)  # failed again later

    newest = documents.failed(ledger.db, newest_first=True, limit=2)
    assert [r["id"] for r in newest] == [old, newer]
    assert [r["id"] for r in documents.failed(ledger.db)] == [old, new, newer]


def test_the_archive_files_only_what_no_delivery_and_no_open_session_still_needs(ledger):
    sent = add(ledger, "sent.pdf", DocumentState.ROUTED)
    deliver(ledger, sent, Purpose.CUSTOMER, DeliveryState.SENT)
    deferred = add(ledger, "deferred.pdf", DocumentState.ROUTED)
    deliver(ledger, deferred, Purpose.CUSTOMER, DeliveryState.DEFERRED)
    in_open_session = add(ledger, "session.pdf", DocumentState.DONE)
    filed = add(ledger, "filed.pdf", DocumentState.DONE, location="sent/2026/05/filed.pdf")
    held = add(ledger, "held.pdf", DocumentState.HELD)
    with ledger.transaction() as db:
        session = db.execute(
            "INSERT INTO sessions(opened_at, last_added_at) VALUES (0, 0)"
        ).lastrowid
        document_changes.join_session(db, session, [in_open_session])

    def finished():
        return [r["id"] for r in documents.finished_in_spool(ledger.db, 500)]

    assert finished() == [sent]
    with ledger.transaction() as db:
        db.execute("UPDATE sessions SET closed_at = 1 WHERE id = ?", (session,))
    assert finished() == [sent, in_open_session]
    assert filed not in finished() and held not in finished() and deferred not in finished()


def test_routing_takes_taken_documents_and_waiting_ones_whose_wait_is_over(ledger):
    taken = add(ledger, "taken.pdf")
    over = add(ledger, "over.pdf", DocumentState.WAITING)
    waits = add(ledger, "waits.pdf", DocumentState.WAITING)
    coming_back = add(ledger, "back.pdf")
    with ledger.transaction() as db:
        db.execute("UPDATE documents SET wait_until = 50 WHERE id = ?", (over,))
        db.execute("UPDATE documents SET wait_until = 500 WHERE id = ?", (waits,))
        document_changes.set_moving_to(db, coming_back, "spool/back.pdf")

    assert [r["id"] for r in documents.to_route(ledger.db, now=100.0)] == [taken, over]
    assert documents.next_wait_end(ledger.db) == 50
    assert [r["id"] for r in documents.waiting_besides(ledger.db, over)] == [waits]
    # A spool file whose row names it only as the target of a move is known all the same.
    assert documents.spool_paths(ledger.db) >= {"spool/taken.pdf", "spool/back.pdf"}


def test_release_held_keeps_the_reason_and_release_forgets_it(ledger):
    first = add(ledger, "a.pdf", DocumentState.HELD, reason="no customer")
    second = add(ledger, "b.pdf", DocumentState.HELD, reason="ambiguous")
    with ledger.transaction() as db:
        assert document_changes.release_held(db) == 2
    assert documents.get(ledger.db, first)["reason"] == "no customer"
    set_state(ledger, second, DocumentState.HELD)
    with ledger.transaction() as db:
        document_changes.release(db, second, now=300.0)
    row = documents.get(ledger.db, second)
    assert (row["state"], row["reason"], row["updated_at"]) == (DocumentState.TAKEN, None, 300.0)


def test_fail_and_close_change_nothing_when_the_row_moved_on(ledger):
    document = add(ledger, "a.pdf", DocumentState.ROUTED)
    with ledger.transaction() as db:
        assert document_changes.fail(db, document, "too big", now=1.0)
        assert not document_changes.fail(db, document, "too big again", now=2.0)
        assert documents.get(db, document)["reason"] == "too big"
        # `dismiss` saw it held; it failed meanwhile: not closed.
        assert not document_changes.close(
            db, document, DocumentState.DISMISSED, "x", "closed/a.pdf", 3.0, DocumentState.HELD
        )
        assert document_changes.close(
            db, document, DocumentState.DISMISSED, "x", "closed/a.pdf", 3.0, DocumentState.FAILED
        )
        document_changes.record_moved(db, document)
    row = documents.get(ledger.db, document)
    assert (row["state"], row["location"], row["moving_to"]) == ("dismissed", "closed/a.pdf", None)


def test_session_members_pending_routing_and_files_refused_at_intake(ledger):
    member = add(ledger, "member.pdf", DocumentState.ROUTED)
    refused = add(ledger, "refused.xml", DocumentState.FAILED, reason="not XML", now=50.0)
    add(ledger, "too-early.xml", DocumentState.FAILED, reason="not XML", now=5.0)
    with ledger.transaction() as db:
        session = db.execute(
            "INSERT INTO sessions(opened_at, last_added_at) VALUES (0, 0)"
        ).lastrowid
        document_changes.join_session(db, session, [member])
        db.execute("UPDATE documents SET kind = 'xml' WHERE name LIKE '%.xml'")

    assert [r["id"] for r in documents.in_session(ledger.db, session)] == [member]
    assert documents.count_in_session(ledger.db, session) == 1
    assert [r["id"] for r in documents.refused_since(ledger.db, 10.0, ("xml", "p7m"))] == [refused]
    assert documents.refused_since(ledger.db, 10.0, ()) == []
    assert not documents.routing_pending(ledger.db, session, ("pdf",))
    add(ledger, "about-to-join.pdf")  # taken: routing joins it to the session next
    assert documents.routing_pending(ledger.db, session, ("pdf",))
    assert not documents.routing_pending(ledger.db, session, ("xml",))


def test_left_in_place_names_the_too_large_files_recorded_where_they_lie(ledger):
    add(ledger, "huge.pdf", DocumentState.FAILED, reason="too large", location="/export/huge.pdf")
    add(ledger, "spooled.pdf", DocumentState.FAILED, reason="not a PDF")
    assert documents.left_in_place(ledger.db) == {("/export/huge.pdf", 10, 1)}


def test_originals_remember_a_copied_file_until_it_is_forgotten(ledger):
    document = add(ledger, "a.pdf")
    with ledger.transaction() as db:
        originals.record(db, "/export/a.pdf", 10, 5, document)
    assert originals.document_of(ledger.db, "/export/a.pdf", 10, 5) == document
    assert originals.document_of(ledger.db, "/export/a.pdf", 10, 6) is None  # changed since
    with ledger.transaction() as db:
        originals.forget(db, [("/export/a.pdf", 10, 5)])
    assert originals.document_of(ledger.db, "/export/a.pdf", 10, 5) is None

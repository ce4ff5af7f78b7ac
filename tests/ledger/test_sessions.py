"""ledger.sessions against a real ledger: one open session at a time, closed exactly once."""

from __future__ import annotations

from invoice_mailer.ledger import sessions


def test_documents_join_the_one_open_session_which_remembers_the_last_addition(db):
    assert sessions.current(db) is None
    first = sessions.add_to_current(db, 100.0)
    assert sessions.add_to_current(db, 160.0) == first
    session = sessions.current(db)
    assert session["id"] == first
    assert (session["opened_at"], session["last_added_at"]) == (100.0, 160.0)
    assert not session["close_requested"] and session["closed_at"] is None


def test_a_session_closes_once_and_the_next_document_opens_a_new_one(db):
    first = sessions.add_to_current(db, 100.0)
    closed = sessions.close(db, first, 200.0)
    assert closed["id"] == first and closed["closed_at"] is None  # the row as it was
    assert sessions.close(db, first, 300.0) is None  # already closed: nothing to plan again
    assert sessions.current(db) is None
    second = sessions.add_to_current(db, 400.0)
    assert second != first and sessions.current(db)["opened_at"] == 400.0


def test_flush_marks_the_open_session_and_says_when_there_is_none(db):
    assert sessions.request_close(db) is None
    session_id = sessions.add_to_current(db, 100.0)
    assert sessions.request_close(db) == session_id
    assert sessions.current(db)["close_requested"] == 1


def test_previous_closing_is_the_last_other_session_closed(db):
    first = sessions.add_to_current(db, 100.0)
    assert sessions.previous_closing(db, first) is None  # the very first session
    sessions.close(db, first, 200.0)
    second = sessions.add_to_current(db, 300.0)
    assert sessions.previous_closing(db, second) == 200.0
    sessions.close(db, second, 500.0)
    assert sessions.previous_closing(db, second) == 200.0  # its own closing does not count

"""ledger.pauses against a real ledger: at most one pause, replaced, lifted, or checked early."""

from __future__ import annotations

from invoice_mailer.ledger import pauses


def test_a_new_pause_replaces_the_old_and_only_the_first_says_so(db):
    assert pauses.current(db) is None
    assert pauses.start(db, "535 authentication failed", 100.0, 400.0) is True
    assert pauses.start(db, "TLS certificate not accepted", 200.0, 500.0) is False
    assert len(db.execute("SELECT * FROM pauses").fetchall()) == 1
    assert dict(pauses.current(db)) == {
        "reason": "TLS certificate not accepted",
        "since": 200.0,
        "check_at": 500.0,
    }


def test_lifting_says_whether_the_queue_was_paused(db):
    assert pauses.lift(db) is False
    pauses.start(db, "535 authentication failed", 100.0, 400.0)
    assert pauses.lift(db) is True
    assert pauses.current(db) is None


def test_retry_brings_the_check_forward_but_never_pushes_it_back(db):
    assert pauses.check_now(db, 150.0) is False  # not paused
    pauses.start(db, "535 authentication failed", 100.0, 400.0)
    assert pauses.check_now(db, 150.0) is True
    assert pauses.current(db)["check_at"] == 150.0
    assert pauses.check_now(db, 150.0) is False  # already due
    assert pauses.check_now(db, 200.0) is False  # due since 150: left as it is
    assert pauses.current(db)["check_at"] == 150.0

"""ledger.notices against a real ledger: what an alert carried is marked, nothing later."""

from __future__ import annotations

from invoice_mailer.ledger import notices


def test_a_notice_written_after_the_batch_was_read_waits_for_the_next_alert(db):
    notices.add(db, 1.0, "Fattura_1.pdf is held: no customer found")
    notices.add(db, 2.0, "Fattura_2.pdf is held: no customer found")
    batch = notices.unsent(db)
    assert [row["text"] for row in batch] == [
        "Fattura_1.pdf is held: no customer found",
        "Fattura_2.pdf is held: no customer found",
    ]
    notices.add(db, 3.0, "sending is paused: 535 authentication failed")
    notices.mark_sent(db, batch[-1]["id"], 4.0)
    (left,) = notices.unsent(db)
    assert left["text"] == "sending is paused: 535 authentication failed"
    assert left["sent_at"] is None

"""Alerts to the admin: batched (at most one per alerts.interval), short plain text, sent through
the real delivery stage to a real SMTP server, and never about an alert failing."""

from __future__ import annotations

import pytest

from invoice_mailer.ledger import notices
from tests.support.delivery_bench import CUSTOMER, Bench, bench_config

ADMIN = "admin@example.it"


@pytest.fixture
def bench(tmp_path, smtp_server):
    made = Bench(bench_config(tmp_path, smtp_server, alerts={"to": ADMIN, "interval": "15m"}))
    yield made
    made.close()


def alerts_made(bench: Bench) -> list[dict]:
    return [row for row in bench.deliveries() if row["purpose"] == "alert"]


def test_without_alerts_to_nothing_is_sent(tmp_path, smtp_server):
    bench = Bench(bench_config(tmp_path, smtp_server))
    try:
        notices.add(bench.ledger.db, bench.clock(), "Fattura_1.pdf is held: no customer found")
        bench.alerts.step()
        assert bench.deliveries() == []
    finally:
        bench.close()


def test_a_failed_document_reaches_the_admin_in_one_short_message(bench, smtp_server):
    bench.add_invoice()
    smtp_server.reject_recipient(CUSTOMER, "550 5.1.1 user unknown")
    bench.run()  # the customer message fails; the archive files it and leaves a notice
    bench.alerts.step()
    bench.run()
    (alert,) = [m for m in smtp_server.wait_for_messages(1) if m.rcpt_tos == (ADMIN,)]
    assert alert.message["Subject"] == "invoice-mailer: 1 problem(s) to look at"
    assert alert.message["To"] == ADMIN and "Cc" not in alert.message
    body = alert.message.get_body(("plain",)).get_content()
    assert "- Fattura_123_2026_C042.pdf was not sent: 550 5.1.1 user unknown" in body
    assert "invoice-mailer status" in body
    assert list(alert.message.iter_attachments()) == []


def test_notices_are_batched_at_most_one_alert_per_interval(bench, smtp_server):
    notices.add(bench.ledger.db, bench.clock(), "Fattura_1.pdf is held: no customer found")
    notices.add(bench.ledger.db, bench.clock(), "Fattura_2.pdf is held: no customer found")
    bench.alerts.step()
    assert len(alerts_made(bench)) == 1
    notices.add(bench.ledger.db, bench.clock(), "sending is paused: 535 authentication failed")
    bench.clock.advance(14 * 60)
    bench.alerts.step()
    assert len(alerts_made(bench)) == 1  # too soon: the new notice waits for the next batch
    bench.clock.advance(60)
    bench.alerts.step()
    first, second = alerts_made(bench)
    assert "Fattura_1.pdf" in first["body"] and "Fattura_2.pdf" in first["body"]
    assert "paused" not in first["body"]
    assert "paused" in second["body"] and "Fattura_1.pdf" not in second["body"]
    bench.run()
    assert [m.rcpt_tos for m in smtp_server.wait_for_messages(2)] == [(ADMIN,), (ADMIN,)]


def test_a_long_batch_is_cut_short_and_says_how_many_more(bench):
    for number in range(60):
        notices.add(
            bench.ledger.db, bench.clock(), f"Fattura_{number}.pdf is held: no customer found"
        )
    bench.alerts.step()
    (alert,) = alerts_made(bench)
    assert alert["subject"] == "invoice-mailer: 60 problem(s) to look at"
    assert alert["body"].count("is held") == 50
    assert "… and 10 more (see `invoice-mailer status`)" in alert["body"]


def test_an_alert_that_fails_never_causes_an_alert(bench, smtp_server):
    smtp_server.reject_recipient(ADMIN, "550 5.1.1 no such admin")
    notices.add(bench.ledger.db, bench.clock(), "Fattura_1.pdf is held: no customer found")
    bench.alerts.step()
    bench.run()
    (alert,) = alerts_made(bench)
    assert alert["state"] == "failed" and "550 5.1.1 no such admin" in alert["last_error"]
    texts = bench.notices()
    assert texts == ["Fattura_1.pdf is held: no customer found"]
    bench.clock.advance(3600)
    bench.alerts.step()
    assert len(alerts_made(bench)) == 1 and smtp_server.messages == []

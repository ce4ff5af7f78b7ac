"""Provider limits, counted from the real ledger's sent times with an injected clock: no test
waits a real minute. (test_delivery.py proves the Dispatcher honours these waits.)"""

from __future__ import annotations

import pytest

from invoice_mailer.config.model import RateConfig
from invoice_mailer.delivery.retrypolicy import rate_limit_wait
from invoice_mailer.ledger.database import Ledger

T0 = 1_780_000_000.0


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "state") as opened:
        yield opened


def record_sent(ledger: Ledger, *times: float) -> None:
    with ledger.transaction() as db:
        for when in times:
            db.execute(
                "INSERT INTO deliveries(purpose, state, to_addrs, message_id, created_at, "
                "next_attempt_at, sent_at) VALUES ('customer', 'sent', '[]', ?, ?, ?, ?)",
                (f"<{when}@example.it>", when, when, when),
            )


def test_no_limit_configured_never_waits(ledger):
    record_sent(ledger, *(T0 + i for i in range(100)))
    assert rate_limit_wait(RateConfig(), ledger, T0 + 100) == (0.0, "")


def test_per_minute_waits_until_the_oldest_of_the_last_n_leaves_the_window(ledger):
    rate = RateConfig(per_minute=5)
    record_sent(ledger, T0, T0 + 1, T0 + 2, T0 + 3)
    assert rate_limit_wait(rate, ledger, T0 + 4) == (0.0, "")  # four in the window: one more may go
    record_sent(ledger, T0 + 4)
    assert rate_limit_wait(rate, ledger, T0 + 10) == (pytest.approx(50.0), "per minute: 5")
    assert rate_limit_wait(rate, ledger, T0 + 59.5)[0] == pytest.approx(0.5)
    assert rate_limit_wait(rate, ledger, T0 + 60) == (0.0, "")  # the first left the window


def test_the_longest_wait_wins_and_names_its_limit(ledger):
    rate = RateConfig(per_minute=5, per_hour=6)
    record_sent(ledger, *(T0 + 60 * i for i in range(6)))
    wait, which = rate_limit_wait(rate, ledger, T0 + 400)
    assert which == "per hour: 6" and wait == pytest.approx(3600 - 400)


def test_twelve_messages_at_five_a_minute_never_exceed_five_in_any_minute(ledger):
    rate, now, sent = RateConfig(per_minute=5), T0, []
    while len(sent) < 12:
        wait, _ = rate_limit_wait(rate, ledger, now)
        if wait > 0:
            now += wait
            continue
        record_sent(ledger, now)
        sent.append(now)
        now += 0.5  # sending takes a moment
    assert max(sum(t <= s < t + 60 for s in sent) for t in sent) == 5
    assert sent[5] == pytest.approx(T0 + 60) and sent[10] == pytest.approx(T0 + 120)


def test_the_day_count_survives_a_restart(tmp_path):
    rate = RateConfig(per_day=3)
    with Ledger(tmp_path / "state") as ledger:
        record_sent(ledger, T0, T0 + 3600, T0 + 7200)
    with Ledger(tmp_path / "state") as reopened:  # a new process, the same ledger
        wait, which = rate_limit_wait(rate, reopened, T0 + 10_000)
    assert which == "per day: 3" and wait == pytest.approx(86400 - 10_000)


def test_failed_or_queued_deliveries_do_not_count(ledger):
    with ledger.transaction() as db:
        db.execute(
            "INSERT INTO deliveries(purpose, state, to_addrs, message_id, created_at, "
            "next_attempt_at) VALUES ('customer', 'failed', '[]', '<x@example.it>', ?, ?)",
            (T0, T0),
        )
    assert rate_limit_wait(RateConfig(per_minute=1), ledger, T0 + 1) == (0.0, "")

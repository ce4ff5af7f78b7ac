"""What a failed attempt means for its delivery, and for the queue (docs/DESIGN.md, failure
policy): a sign-in or TLS problem pauses sending, a permanent refusal fails the delivery, a
lost reply is resent once and then left to a person, a transient failure is deferred with a
doubling backoff until retry.max_age, and a server that cannot be reached holds every message.
The dispatcher sends; this decides what its failure leaves in the ledger.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from invoice_mailer.config.model import RetryConfig
from invoice_mailer.delivery.recorder import Recorder
from invoice_mailer.delivery.retrypolicy import backoff, deferrals_so_far
from invoice_mailer.delivery.smtp.outcome import SmtpFailure
from invoice_mailer.ledger import pauses
from invoice_mailer.ledger.states import DeliveryState

log = logging.getLogger(__name__)

# Failures that say the server (or the sign-in server, "token") is down, not that this
# message has a problem.
_SERVER_PHASES = ("connect", "tls", "ehlo", "token")


def after_failure(
    record: Recorder,
    retry: RetryConfig,
    row: sqlite3.Row,
    failure: SmtpFailure,
    attempts: int,
    now: float,
    hang_up: Callable[[], None],
) -> None:
    """Record what `failure` (after the quick tries) means for `row`; `hang_up` closes the
    connection where it must not be used again."""
    if failure.kind in ("auth", "tls"):
        record.paused(row, failure, attempts, now + retry.backoff_min)
        hang_up()
    elif failure.kind == "permanent":
        record.failed(row, str(failure), attempts, failure)
    elif failure.kind == "ambiguous" and row["state"] == DeliveryState.SENDING:
        # Lost once already (or a crash after DATA): a second copy went and its reply was
        # lost too. More would only pile up duplicates: a person looks in the mailbox.
        record.unconfirmed(row, failure, attempts)
    elif failure.kind == "ambiguous":
        # The first lost reply: resend at once, same Message-ID and bytes (RFC 1047).
        record.deferred(row, failure, attempts, now, ambiguous=True)
    elif now - row["created_at"] >= retry.max_age:
        days = (now - row["created_at"]) / 86400
        reason = f"gave up after {attempts} attempts in {days:.1f} days: {failure}"
        record.failed(row, reason, attempts, failure)
    else:
        wait = backoff(retry, deferrals_so_far(attempts, retry.attempts_now))
        # A resend after a lost reply stays `sending`: a second loss is then recognised.
        record.deferred(row, failure, attempts, now + wait, row["state"] == DeliveryState.SENDING)
        if failure.phase in _SERVER_PHASES or failure.code == 421:
            _hold_queue(record, failure, now, now + wait)
            hang_up()


def _hold_queue(record: Recorder, failure: SmtpFailure, now: float, until: float) -> None:
    """The server itself is unreachable: the other messages wait too, as Postfix defers a
    whole site, instead of each spending its own quick tries against a dead relay."""
    with record.transaction() as db:
        earlier = pauses.current(db)
        reason = f"the mail server cannot be reached: {failure}"
        pauses.start(db, reason, earlier["since"] if earlier else now, until)
    log.warning(
        "the mail server cannot be reached; every message waits, next try in %.0f s",
        until - now,
    )

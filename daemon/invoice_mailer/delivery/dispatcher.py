"""Delivery: send what the ledger plans, classify every outcome, and never lose track of it.

A row is `sending` (with its Message-ID) before the SMTP transaction and `sent` after the
server's 250. Transient failures get a few quick tenacity tries (retrypolicy.py); what a
failure then means, a durable deferral, a failed delivery or a paused queue, is failures.py's
decision; what the ledger records about each outcome is in recorder.py.

In a burst the sender commits once per two messages, while the server works on one (sendahead.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from invoice_mailer.config.model import Config
from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.failures import after_failure
from invoice_mailer.delivery.recorder import Recorder
from invoice_mailer.delivery.retrypolicy import (
    RetryFactory,
    Stopping,
    has_rate_limit,
    quick_retry_policy,
    rate_limit_wait,
)
from invoice_mailer.delivery.sendahead import SendAhead
from invoice_mailer.delivery.smtp.outcome import SendResult, SmtpFailure
from invoice_mailer.delivery.smtp.transaction import Upcoming
from invoice_mailer.delivery.smtp.wire import Abandoned
from invoice_mailer.errors import InvoiceMailerError, describe, shown
from invoice_mailer.ledger import deliveries, pauses
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import PENDING_DELIVERY, DeliveryState

log = logging.getLogger(__name__)

# In a burst the worker is woken every so many messages (it builds the next ones at half of
# its BUILD_AHEAD), not after each one: a wake-up per message cost it a pass and the sender
# the interpreter at the moment the server waits for the next message.
PROGRESS_EVERY = 16


class Transport(Protocol):
    """What the dispatcher needs from smtp.SmtpTransport (tests may pass another real one)."""

    def send(
        self,
        sender: str,
        recipients: tuple[str, ...],
        message_path: Path,
        size: int,
        while_waiting: Callable[[], Upcoming | None] = ...,
    ) -> SendResult: ...

    def close(self) -> None: ...


class Dispatcher:
    """Sends due deliveries over one reused connection; used from the sender thread only."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        transport: Transport,
        stop: threading.Event,
        *,
        retrying: RetryFactory | None = None,
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[], None] = lambda: None,
    ):
        """`on_progress` is called when messages went (the worker files them and builds more):
        at the end of a step, and in a burst every PROGRESS_EVERY messages, or at once when no
        built message was waiting."""
        self.on_progress = on_progress
        self.config = config
        self.ledger = ledger
        self.transport = transport
        self.stop = stop
        self._injected_retrying = retrying is not None
        self.retrying = retrying or quick_retry_policy(config.retry, stop)
        self.clock = clock
        self.record = Recorder(config, ledger, clock)
        self._rate_logged = ""
        self.last_activity = 0.0
        self.ahead = SendAhead(self.record, stop)
        self._began = 0.0
        self._unpaused = False
        self._went_plainly = False  # the last message was sent, nothing paused since

    def reload(self, config: Config, transport: Transport) -> None:
        """A new config (SIGHUP): new transport settings, and a paused queue is resumed."""
        self.transport.close()
        self.config, self.transport = config, transport
        self.record.config = config
        if not self._injected_retrying:
            self.retrying = quick_retry_policy(config.retry, self.stop)
        with self.record.transaction() as db:
            resumed = pauses.lift(db)
        if resumed:
            log.info("configuration reloaded: sending resumes")

    def step(self) -> float | None:
        """Send everything due now; return seconds until something is due next (None: nothing).

        One row at a time, re-read each time: a pause, a reload or a CLI `retry` is seen at once.
        Only rows due when the step began: when retries come round faster than the queue is
        gone through (a relay down), the step still ends and routing and archive get their turn.
        """
        self._began = self.clock()
        delivered = 0
        try:
            while not self.stop.is_set():
                now = self.clock()
                # Only this thread starts a pause: none now, none until this message's outcome
                # (and none after a message marked ahead, unpaused, was sent).
                if not (self._went_plainly and self.ahead.row is not None):
                    pause = pauses.current(self.ledger.db)
                    if pause is not None and pause["check_at"] > now:
                        return pause["check_at"] - now
                    self._unpaused = pause is None
                row = self.ahead.row
                if row is None:
                    self.record.flush()  # the last one is `sending` until its `sent` commits
                    row = deliveries.first_due(self.ledger.db, self._began)
                if row is None:
                    break
                if has_rate_limit(self.config.smtp.rate):
                    self.record.flush()  # counted by what the ledger says was sent
                    wait, which = rate_limit_wait(self.config.smtp.rate, self.ledger, now)
                    if wait > 0:
                        if which != self._rate_logged:
                            log.info(
                                "rate limit (%s): waiting %.0f s before the next message",
                                which,
                                wait,
                            )
                            self._rate_logged = which
                        return wait
                    self._rate_logged = ""
                self._deliver(row)
                delivered += 1
                if self.ahead.row is None or delivered % PROGRESS_EVERY == 0:
                    self.on_progress()
        finally:
            if self.ahead.release():
                self.transport.close()  # its envelope may wait in the server's DATA
            self.record.flush()
            if delivered:
                self.on_progress()
        return self._next_due()

    def _next_due(self) -> float | None:
        now = self.clock()
        pause = pauses.current(self.ledger.db)
        if pause is not None and pause["check_at"] > now:
            return pause["check_at"] - now
        due = deliveries.next_attempt_at(self.ledger.db)
        return None if due is None else max(0.0, due - now)

    def close_if_idle(self, idle: float = 10.0) -> None:
        """Hang up a connection nobody used for a while: servers drop idle clients anyway."""
        if self.last_activity and self.clock() - self.last_activity > idle:
            self.transport.close()
            self.last_activity = 0.0

    # -- one delivery ---------------------------------------------------------------------

    def _deliver(self, row: sqlite3.Row) -> None:
        self._went_plainly = False
        marked = self.ahead.take(row)
        if not marked and self._awaits_acceptance(row):
            return
        # A message that cannot be built is this delivery's problem; an OSError writing our own
        # outgoing/ (disk full) is the service's, and the worker retries it without failing.
        try:
            built = outbox.built(self.config, row)
            path, size = built or outbox.build(self.config, self.ledger, row)
        except InvoiceMailerError as exc:
            self.record.failed(row, f"the message could not be built: {exc}", row["attempts"])
            return
        except Exception as exc:  # a document nobody foresaw costs its message, not the thread
            log.error("unexpected error building %s", self.record.label(row), exc_info=shown(exc))
            reason = f"the message could not be built: unexpected {describe(exc)}"
            self.record.failed(row, reason, row["attempts"])
            return
        fresh = deliveries.by_id(self.ledger.db, row["id"])
        assert fresh is not None  # noqa: S101 (a type narrowing, not a check: nothing deletes deliveries)
        if marked and fresh["state"] != DeliveryState.SENDING:
            return  # changed since the mark (a `retry` or `dismiss`): the next step sees it
        if not marked:
            row = fresh
        if row["state"] not in PENDING_DELIVERY:
            return  # settled meanwhile: the provider's accettazione showed it was taken
        limit = self.config.smtp.max_message_size
        if size > limit:
            reason = f"the message is {size:,} bytes, over smtp.max_message_size ({limit:,})"
            self.record.failed(row, reason, row["attempts"])
            return
        if row["state"] == DeliveryState.SENDING:
            log.warning(
                "%s may have reached the server already (the reply was lost); sending it again "
                "with the same Message-ID %s: a possible duplicate",
                self.record.label(row), row["message_id"],
            )  # fmt: skip
        recipients = outbox.recipients_of(row)
        if not marked:
            self.record.sending(row)  # commits the last `sent` with it
        attempts = row["attempts"]
        last: SmtpFailure | None = None

        def attempt() -> SendResult:
            nonlocal attempts, last
            attempts += 1
            try:
                return self.transport.send(
                    self.config.sender.address,
                    recipients,
                    path,
                    size,
                    lambda: self.ahead.mark(row, self._began, self._may_mark_ahead()),
                )
            except SmtpFailure as failure:
                last = failure
                raise

        started = time.monotonic()
        self.last_activity = self.clock()
        try:
            result = self.retrying()(attempt)
        except Stopping:
            self.record.interrupted(row, attempts, last)
        except SmtpFailure as failure:
            if isinstance(failure.__cause__, Abandoned):  # stopping: the wait was given up
                self.record.interrupted(row, attempts, failure)
            else:
                retry, hang_up = self.config.retry, self.transport.close
                after_failure(self.record, retry, row, failure, attempts, self.clock(), hang_up)
        except InvoiceMailerError as exc:  # the built message vanished or cannot be read
            self.record.failed(row, str(exc), attempts)
        except Exception as exc:  # e.g. the idna codec on a host name: pause, retry later
            log.error("unexpected error sending %s", self.record.label(row), exc_info=shown(exc))
            why = f"unexpected error while sending: {describe(exc)}"
            self.transport.close()
            unexpected = SmtpFailure("unexpected", "unexpected", None, "", why)
            self.record.paused(
                row, unexpected, attempts, self.clock() + self.config.retry.backoff_min
            )
        else:
            seconds = time.monotonic() - started
            self.record.sent(row, result, attempts, seconds, commit_later=self._unpaused)
            self._went_plainly = self._unpaused
        self.last_activity = self.clock()

    def _may_mark_ahead(self) -> bool:
        return self._unpaused and not has_rate_limit(self.config.smtp.rate)

    def _awaits_acceptance(self, row: sqlite3.Row) -> bool:
        """A PEC sender's message whose reply was lost (or a crash after DATA) waits, once and
        bounded, for the accettazione before the one resend: it settles the question."""
        if row["state"] != DeliveryState.SENDING or row["receipt_wait_until"] is not None:
            return False
        if not self.config.receipts.waits_for_acceptance:
            return False
        self.record.awaiting_acceptance(row)
        return True

"""Delivery: send what the ledger plans, classify every outcome, and never lose track of it.

A row is `sending` (with its Message-ID) before the SMTP transaction and `sent` after the
server's 250. Transient failures get a few quick tenacity tries, then a durable deferral with
doubling backoff; permanent ones fail the delivery; authentication and TLS problems pause the
whole queue instead of failing documents.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Protocol

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from . import outbox, ratelimit
from .archive import Archive
from .config import Config, RetryConfig
from .errors import InvoiceMailerError
from .ledger import DEFERRED, FAILED, PENDING_DELIVERY, QUEUED, SENDING, SENT, Ledger
from .smtp import SendResult, SmtpFailure

log = logging.getLogger(__name__)


class Transport(Protocol):
    def send(self, sender: str, recipients, message_path, size: int) -> SendResult: ...
    def close(self) -> None: ...


class Stopping(Exception):
    """The service is stopping: abandon the wait, leave the delivery due."""


def quick_retry_policy(
    retry: RetryConfig, stop: threading.Event, wait: wait_base | None = None
) -> Callable[[], Retrying]:
    """The in-process tries for transient errors; tests inject a zero wait."""

    def interruptible_sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopping()

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, SmtpFailure) and exc.kind == "transient"

    return lambda: Retrying(
        stop=stop_after_attempt(retry.attempts_now) | stop_after_delay(300),
        wait=wait if wait is not None else wait_exponential_jitter(initial=2, max=30, jitter=2),
        retry=retry_if_exception(transient),
        reraise=True,
        sleep=interruptible_sleep,
        before_sleep=_log_quick_retry,
    )


def _log_quick_retry(state) -> None:
    """The admin sees every retry with the server's reply (STYLE: warnings for retries)."""
    seconds = state.next_action.sleep if state.next_action else 0
    log.warning(
        "%s; quick retry %d in %.1f s", state.outcome.exception(), state.attempt_number, seconds
    )


def backoff(retry: RetryConfig, deferrals: int, rng: Callable[[], float] = random.random) -> float:
    """Durable deferral: backoff_min doubling up to backoff_max, ±20 % jitter."""
    base = min(retry.backoff_max, retry.backoff_min * (2 ** max(deferrals, 0)))
    return base * (0.8 + 0.4 * rng())


class Dispatcher:
    """Sends due deliveries over one reused connection; used from the worker thread only."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        transport: Transport,
        archive: Archive,
        stop: threading.Event,
        *,
        retrying: Callable[[], Retrying] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.ledger = ledger
        self.transport = transport
        self.archive = archive
        self.stop = stop
        self.retrying = retrying or quick_retry_policy(config.retry, stop)
        self.clock = clock
        self._rate_logged = ""
        self.last_activity = 0.0

    def reload(self, config: Config, transport: Transport) -> None:
        """A new config (SIGHUP): new transport settings, and a paused queue is resumed."""
        self.transport.close()
        self.config, self.transport = config, transport
        self.retrying = quick_retry_policy(config.retry, self.stop)
        with self.ledger.transaction() as db:
            db.execute("DELETE FROM pauses")

    def paused(self) -> sqlite3.Row | None:
        return self.ledger.one("SELECT * FROM pauses LIMIT 1")

    def step(self) -> float | None:
        """Send everything due now; return seconds until something is due next (None: nothing)."""
        now = self.clock()
        pause = self.paused()
        if pause is not None and pause["check_at"] > now:
            return pause["check_at"] - now
        while not self.stop.is_set():
            now = self.clock()
            rows = self.ledger.query(
                f"SELECT * FROM deliveries WHERE state IN ({_marks(PENDING_DELIVERY)}) "
                "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 50",
                *PENDING_DELIVERY,
                now,
            )
            if not rows:
                break
            for row in rows:
                wait, which = ratelimit.wait_needed(self.config.smtp.rate, self.ledger, self.clock())
                if wait > 0:
                    if which != self._rate_logged:
                        log.info("rate limit (%s): waiting %.0f s before the next message", which, wait)
                        self._rate_logged = which
                    return wait
                self._rate_logged = ""
                self._deliver(row)
                if self.stop.is_set() or self.paused() is not None:
                    return self._next_due()
        return self._next_due()

    def _next_due(self) -> float | None:
        pause = self.paused()
        if pause is not None:
            return max(0.0, pause["check_at"] - self.clock())
        row = self.ledger.one(
            f"SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ({_marks(PENDING_DELIVERY)})",
            *PENDING_DELIVERY,
        )
        return None if row[0] is None else max(0.0, row[0] - self.clock())

    def close_if_idle(self, idle: float = 10.0) -> None:
        if self.last_activity and self.clock() - self.last_activity > idle:
            self.transport.close()
            self.last_activity = 0.0

    # -- one delivery ---------------------------------------------------------------------

    def _deliver(self, row: sqlite3.Row) -> None:
        try:
            path, size = outbox.build(self.config, self.ledger, row)
        except (InvoiceMailerError, OSError) as exc:
            self._fail(row, f"the message could not be built: {exc}", row["attempts"])
            return
        limit = self.config.smtp.max_message_size
        if size > limit:
            self._fail(row, f"the message is {size:,} bytes, over smtp.max_message_size ({limit:,})",
                       row["attempts"])
            return
        if row["state"] == SENDING:
            log.warning(
                "delivery %d (%s) may have reached the server already; sending it again with the "
                "same Message-ID %s (possible duplicate)", row["id"], row["subject"], row["message_id"],
            )
        recipients = outbox.recipients_of(row)
        attempts = row["attempts"]
        with self.ledger.transaction() as db:
            db.execute("UPDATE deliveries SET state = ? WHERE id = ?", (SENDING, row["id"]))

        def attempt() -> SendResult:
            nonlocal attempts
            attempts += 1
            return self.transport.send(self.config.sender.address, recipients, path, size)

        started = time.monotonic()
        self.last_activity = self.clock()
        try:
            result = self.retrying()(attempt)
        except Stopping:
            self._set(row["id"], QUEUED if row["state"] != SENDING else SENDING, attempts)
            return
        except SmtpFailure as failure:
            self._failed_attempt(row, failure, attempts)
            return
        self._sent(row, result, attempts, time.monotonic() - started)

    def _sent(self, row: sqlite3.Row, result: SendResult, attempts: int, seconds: float) -> None:
        now = self.clock()
        later = {a: r for a, r in result.refused.items() if 400 <= r[0] < 500 or r[0] == 452}
        refused = {a: r for a, r in result.refused.items() if a not in later}
        note = "; ".join(f"{a} refused: {code} {text}" for a, (code, text) in refused.items())
        with self.ledger.transaction() as db:
            db.execute(
                "UPDATE deliveries SET state = ?, sent_at = ?, attempts = ?, reply = ?, "
                "last_error = ? WHERE id = ?",
                (SENT, now, attempts, result.reply, note or None, row["id"]),
            )
            if later:
                _resend_to(db, row, tuple(later), now)
            if refused:
                db.execute("INSERT INTO notices(created_at, text) VALUES (?, ?)",
                           (now, f"{row['subject']}: {note}"))
        documents = outbox.documents_of(self.ledger, row["id"])
        eml = self.archive.file_message(row, outbox.label_of(row, documents))
        if eml or not self.config.archive.keep_eml:
            with self.ledger.transaction() as db:
                db.execute("UPDATE deliveries SET eml = ? WHERE id = ?", (eml, row["id"]))
        to = ", ".join(result.accepted) or "nobody"
        names = ", ".join(d["name"] for d in documents) or row["subject"]
        log.info("sent %s to %s in %.1f s, id %s", names, to, seconds, row["message_id"])
        if note:
            log.warning("%s: %s", names, note)

    def _failed_attempt(self, row: sqlite3.Row, failure: SmtpFailure, attempts: int) -> None:
        now = self.clock()
        if failure.kind in ("auth", "tls"):
            self._pause(row, failure, attempts, now)
        elif failure.kind == "permanent":
            self._fail(row, str(failure), attempts)
        else:
            age = now - row["created_at"]
            if age >= self.config.retry.max_age:
                self._fail(row, f"gave up after {attempts} attempts: {failure}", attempts)
                return
            deferrals = attempts // max(self.config.retry.attempts_now, 1)
            due = now + (0 if failure.kind == "ambiguous" and deferrals <= 1 else
                         backoff(self.config.retry, deferrals - 1))
            state = SENDING if failure.kind == "ambiguous" else DEFERRED
            with self.ledger.transaction() as db:
                db.execute(
                    "UPDATE deliveries SET state = ?, next_attempt_at = ?, attempts = ?, "
                    "last_error = ? WHERE id = ?",
                    (state, due, attempts, str(failure), row["id"]),
                )
            log.warning("%s: %s; next attempt in %.0f s", row["subject"] or row["id"], failure,
                        due - now)

    def _pause(self, row: sqlite3.Row, failure: SmtpFailure, attempts: int, now: float) -> None:
        check_at = now + self.config.retry.backoff_min
        with self.ledger.transaction() as db:
            db.execute("UPDATE deliveries SET state = ?, attempts = ?, last_error = ? WHERE id = ?",
                       (QUEUED if row["state"] != SENDING else SENDING, attempts, str(failure),
                        row["id"]))
            first = db.execute("SELECT COUNT(*) FROM pauses").fetchone()[0] == 0
            db.execute("DELETE FROM pauses")
            db.execute("INSERT INTO pauses(reason, since, check_at) VALUES (?, ?, ?)",
                       (str(failure), now, check_at))
            if first:
                db.execute("INSERT INTO notices(created_at, text) VALUES (?, ?)",
                           (now, f"sending is paused: {failure}"))
        self.transport.close()
        log.error("sending is paused: %s; nothing is failed, checking again in %.0f s "
                  "(or reload after fixing the settings)", failure, check_at - now)

    def _fail(self, row: sqlite3.Row, reason: str, attempts: int) -> None:
        with self.ledger.transaction() as db:
            db.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, last_error = ? WHERE id = ?",
                (FAILED, attempts, reason, row["id"]),
            )
        log.error("delivery %d (%s) failed: %s", row["id"], row["subject"] or "", reason)

    def _set(self, delivery_id: int, state: str, attempts: int) -> None:
        with self.ledger.transaction() as db:
            db.execute("UPDATE deliveries SET state = ?, attempts = ? WHERE id = ?",
                       (state, attempts, delivery_id))


def _resend_to(db: sqlite3.Connection, row: sqlite3.Row, recipients: tuple[str, ...], now: float):
    """Recipients the server asked to try later get their own delivery of the same documents."""
    from .messages import new_message_id

    sender_domain = row["message_id"].rsplit("@", 1)[-1].rstrip(">")
    cursor = db.execute(
        "INSERT INTO deliveries(purpose, state, to_addrs, subject, body, message_id, created_at, "
        "next_attempt_at, session_id, part, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row["purpose"], QUEUED, json.dumps(list(recipients)), row["subject"], row["body"],
         new_message_id(f"x@{sender_domain}"), now, now, row["session_id"], row["part"],
         row["parts"]),
    )
    db.execute(
        "INSERT INTO attachments(delivery_id, document_id, position) "
        "SELECT ?, document_id, position FROM attachments WHERE delivery_id = ?",
        (cursor.lastrowid, row["id"]),
    )


def _marks(values: tuple) -> str:
    return ", ".join("?" for _ in values)

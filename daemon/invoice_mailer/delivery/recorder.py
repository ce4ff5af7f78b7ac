"""What the ledger (and the admin) learns from each delivery outcome: sent, deferred, failed,
paused, interrupted. The Dispatcher decides; the Recorder writes it down and says it in the log.

Notices (what alerts.py mails to the admin) are made here for what the archive does not
report itself: a copy or a bundle that failed, a refused recipient among several, a paused
queue. Never for an alert: an alert about an alert failing would loop.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from invoice_mailer.config.model import Config
from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.retrypolicy import backoff
from invoice_mailer.delivery.smtp.outcome import SendResult, SmtpFailure, classify
from invoice_mailer.ledger import delivery_changes, delivery_recipients, documents, notices, pauses
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.delivery_recipients import Expectation
from invoice_mailer.ledger.states import DeliveryState, Purpose

log = logging.getLogger(__name__)

# Codes that mean "too many recipients in this transaction": the rest can go at once, in a new
# transaction (RFC 5321 §4.5.3.1.10); other 4xx refusals wait for the backoff.
_TOO_MANY = (452, 552)


class Recorder:
    """Writes delivery outcomes into the ledger; used from the sender thread only."""

    def __init__(self, config: Config, ledger: Ledger, clock: Callable[[], float]):
        self.config = config
        self.ledger = ledger
        self.clock = clock
        # A plain `sent` waits here for the sender's next commit (the next message marked
        # `sending`): one fsync for both. Until then the ledger still says `sending`, and the
        # log does not say "sent" yet (that line is written once it is recorded).
        self.unsaved: list[Callable[[sqlite3.Connection], None]] = []
        self.unsaid: list[Callable[[], None]] = []

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A ledger transaction that first writes the outcomes not committed yet."""
        with self.ledger.transaction() as db:
            for write in self.unsaved:
                write(db)
            yield db
        self.unsaved.clear()
        said, self.unsaid = self.unsaid, []
        for say in said:  # after the commit: a log line that fails must not look like it failed
            try:
                say()
            except sqlite3.Error as exc:
                log.warning("a delivery was recorded as sent, but not logged: %s", exc)

    def flush(self) -> None:
        """Commit the outcomes still waiting for a commit."""
        if self.unsaved:
            with self.transaction():
                pass

    def label(self, row: sqlite3.Row) -> str:
        """What the admin recognises: the documents' names, else the subject."""
        names = [d["name"] for d in documents.of_delivery(self.ledger.db, row["id"])]
        return ", ".join(names) or row["subject"] or f"delivery {row['id']}"

    def sending(self, row: sqlite3.Row) -> None:
        """Before the transaction: a crash from here on leaves the one ambiguous state."""
        with self.transaction() as db:
            delivery_changes.set_state(db, row["id"], DeliveryState.SENDING)

    def sent(
        self,
        row: sqlite3.Row,
        result: SendResult,
        attempts: int,
        seconds: float,
        *,
        commit_later: bool = False,
    ) -> None:
        """`commit_later` (no pause to lift): a plain success, every recipient took it, is
        committed with the sender's next commit instead of one of its own."""
        now = self.clock()
        later = {
            address: reply
            for address, reply in result.refused.items()
            if classify("rcpt", reply[0], None) == "transient"
        }
        refused = {a: r for a, r in result.refused.items() if a not in later}
        note = "; ".join(f"{a} refused: {code} {text}" for a, (code, text) in refused.items())
        to = {address.lower() for address in json.loads(row["to_addrs"])}
        # Reaching only the Cc copy is not reaching the customer: the document failed.
        reached = any(a.lower() in to for a in (*result.accepted, *later))
        state, error = DeliveryState.SENT, note or None
        if not reached:
            state, error = DeliveryState.FAILED, f"no To address took it: {note}"
        rest = outbox.copy_for_rest(self.config, row) if later else None
        awaited = self._awaited(now) if row["purpose"] != Purpose.ALERT else None

        def record(db: sqlite3.Connection) -> None:
            delivery_changes.record_sent(db, row["id"], state, now, attempts, result.reply, error)
            delivery_recipients.record_sent(db, row["id"], result.accepted, now, awaited)

        plain = state == DeliveryState.SENT and not refused and not later
        if commit_later and plain:
            self.unsaved.append(record)
            self.unsaid.append(lambda: self._said_sent(row, result, seconds))
            return
        with self.transaction() as db:
            resumed = pauses.lift(db)
            record(db)
            if rest is not None:
                too_many = all(code in _TOO_MANY for code, _ in later.values())
                due = now if too_many else now + backoff(self.config.retry, 0)
                delivery_changes.plan_rest(db, row, tuple(later), rest, due)
            if refused and row["purpose"] != Purpose.ALERT:
                notices.add(db, now, f"{self.label(row)}: {note}")
        if resumed:
            log.info("sending works again: the queue is no longer paused")
        self._said_sent(row, result, seconds)
        if refused:
            log.warning("%s: %s", self.label(row), note)
        if later:
            log.warning(
                "%s: the server will take %s later (%s); sending to them in a new transaction",
                self.label(row),
                ", ".join(later),
                "; ".join(f"{c} {t}" for c, t in later.values()),
            )

    def _said_sent(self, row: sqlite3.Row, result: SendResult, seconds: float) -> None:
        # The .eml is filed in the archive by the worker thread (Archive.step), off this path.
        log.info(
            "sent %s to %s in %.1f s, id %s",
            self.label(row), _who(row, result.accepted), seconds, row["message_id"],
        )  # fmt: skip

    def _awaited(self, now: float) -> Expectation | None:
        """A PEC provider answers every message it takes with an accettazione: its absence
        after receipts.accept_within is told to the admin (receipts/deadlines.py). Never
        for an alert: an alert about an alert would loop."""
        receipts = self.config.receipts
        if not (receipts.enabled and receipts.pec):
            return None
        return Expectation("accettazione", now + receipts.accept_within)

    def awaiting_acceptance(self, row: sqlite3.Row) -> None:
        """The reply after the final dot was lost: a PEC provider's accettazione will say
        whether it took the message; it is sent again only if none comes in time."""
        wait = self.config.receipts.lost_reply_wait
        with self.transaction() as db:
            delivery_changes.wait_for_receipt(db, row["id"], self.clock() + wait)
        log.warning(
            "%s may have reached the server already (the reply was lost): waiting up to %s for "
            "the PEC provider's accettazione of Message-ID %s before sending it again",
            self.label(row), _duration(wait), row["message_id"],
        )  # fmt: skip

    def deferred(
        self, row: sqlite3.Row, failure: SmtpFailure, attempts: int, due: float, ambiguous: bool
    ) -> None:
        """Wait in the ledger until `due`. `ambiguous`: stays `sending`, the reply to a whole
        message was lost (now, or before this resend), so a second loss is recognised."""
        with self.transaction() as db:
            delivery_changes.defer(
                db,
                row["id"],
                DeliveryState.SENDING if ambiguous else DeliveryState.DEFERRED,
                due,
                attempts,
                str(failure),
                _reply(failure),
            )
        wait = due - self.clock()
        when = "now" if wait <= 0 else f"in {_duration(wait)}"
        log.warning("%s: %s; next attempt %s", self.label(row), failure, when)

    def failed(
        self, row: sqlite3.Row, reason: str, attempts: int, failure: SmtpFailure | None = None
    ) -> None:
        with self.transaction() as db:
            delivery_changes.record_failure(
                db, row["id"], DeliveryState.FAILED, attempts, reason, _reply(failure)
            )
            # A failed customer message is reported by the archive with its document.
            if row["purpose"] in (Purpose.COPY, Purpose.BUNDLE):
                notices.add(
                    db,
                    self.clock(),
                    f"the {row['purpose']} of {self.label(row)} was not sent: {reason}",
                )
        log.error("%s (delivery %d) failed: %s", self.label(row), row["id"], reason)

    def unconfirmed(self, row: sqlite3.Row, failure: SmtpFailure, attempts: int) -> None:
        """The reply to the final "." was lost again after the one resend: the server may
        have the message twice, once or not at all. Only the mailbox can tell."""
        what = f"{self.label(row)} (Message-ID {row['message_id']})"
        check = self._next_step(row)
        with self.transaction() as db:
            delivery_changes.mark_unconfirmed(db, row["id"], attempts, str(failure))
            if row["purpose"] != Purpose.ALERT:
                notices.add(db, self.clock(), f"{what} is unconfirmed: {check}")
        log.error(
            "%s is unconfirmed: the server's reply after the final '.' was lost twice (%s); "
            "not sent again automatically. %s",
            what,
            failure,
            check,
        )

    def _next_step(self, row: sqlite3.Row) -> str:
        """What the admin does next; the document id is what `retry` takes."""
        carried = documents.of_delivery(self.ledger.db, row["id"])
        if not carried:
            return "please look in the Sent folder of the mailbox whether it arrived"
        number = carried[0]["id"]
        return (
            "please look in the Sent folder of the mailbox (or ask the recipient) whether it "
            f"arrived; if it did not, send it again with `invoice-mailer retry {number}`, if it "
            f"did, `invoice-mailer dismiss {number}`"
        )

    def paused(
        self, row: sqlite3.Row, failure: SmtpFailure, attempts: int, check_at: float
    ) -> None:
        """Authentication or TLS: nothing is failed; the whole queue waits for a fix."""
        now = self.clock()
        with self.transaction() as db:
            delivery_changes.record_failure(
                db,
                row["id"],
                DeliveryState.SENDING
                if row["state"] == DeliveryState.SENDING
                else DeliveryState.QUEUED,
                attempts,
                str(failure),
                _reply(failure),
            )
            if pauses.start(db, str(failure), now, check_at):
                notices.add(db, now, f"sending is paused: {failure}")
        log.error(
            "sending is paused: %s. Nothing is failed; trying again in %s, or at once after "
            "the settings are fixed and the service reloaded (systemctl reload invoice-mailer)",
            failure,
            _duration(check_at - now),
        )

    def interrupted(self, row: sqlite3.Row, attempts: int, last: SmtpFailure | None) -> None:
        """Stopping while waiting to try again: the delivery stays due for the next start."""
        lost = row["state"] == DeliveryState.SENDING or (
            last is not None and last.kind == "ambiguous"
        )
        state = (
            DeliveryState.SENDING
            if lost
            else DeliveryState.DEFERRED
            if last
            else DeliveryState.QUEUED
        )
        with self.transaction() as db:
            delivery_changes.record_interruption(
                db, row["id"], state, attempts, str(last) if last else row["last_error"]
            )
        log.info("%s: stopping before the next try; it stays %s", self.label(row), state)


def _who(row: sqlite3.Row, accepted: tuple[str, ...]) -> str:
    """'mario@x.it (cc archivio@y.it)': who took it, grouped as the message addressed them."""
    groups: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
    columns = {
        address.lower(): group
        for group in ("bcc", "cc", "to")
        for address in json.loads(row[f"{group}_addrs"])
    }
    for address in accepted:
        groups[columns.get(address.lower(), "to")].append(address)
    text = ", ".join(groups["to"]) or "nobody in To"
    for group in ("cc", "bcc"):
        if groups[group]:
            text += f" ({group} {', '.join(groups[group])})"
    return text


def _reply(failure: SmtpFailure | None) -> str | None:
    if failure is None or failure.code is None:
        return None
    return f"{failure.code} {failure.reply}".strip()


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

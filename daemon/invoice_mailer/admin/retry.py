"""`retry`: the admin's hands on the queue, through the ledger only (`flush` is in sessions,
`dismiss` in closing).

The running service looks at the ledger at least once a second, so a change made here is acted
on within a second; with the service stopped it is acted on at the next start. No second
channel (socket, signal) has to be kept in sync.

Retrying a failed document moves it from failed/ back into the spool and routes it again (so a
corrected address book is used). Its failed messages stay in the ledger as history, in state
`retried` with the server's reply (`status --find` shows them); the new attempt is a new
message with a new Message-ID, since the old one was refused, not lost. Its NAME.reason.txt is
removed: the reason is printed by `retry` and kept in the ledger as that history.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from invoice_mailer import storage
from invoice_mailer.addresses import new_message_id
from invoice_mailer.admin import unconfirmed
from invoice_mailer.config.model import Config
from invoice_mailer.errors import DocumentError, InvoiceMailerError, NothingMatched
from invoice_mailer.intake import taking
from invoice_mailer.ledger import (
    attachments,
    deliveries,
    delivery_changes,
    document_changes,
    documents,
    pauses,
)
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import DeliveryState, DocumentState, Purpose
from invoice_mailer.service.lock import is_running

log = logging.getLogger(__name__)


@dataclass
class RetryOutcome:
    """What `retry` did, in sentences the admin reads (the CLI prints them)."""

    requeued: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    due_now: int = 0
    unpaused: bool = False
    skipped: list[str] = field(default_factory=list)
    running: bool = False
    reason_files: list[Path] = field(default_factory=list)  # removed once committed
    moves: list[tuple[int, Path, Path]] = field(default_factory=list)  # after the commit
    handled: set[int] = field(default_factory=set)  # documents queued again (pairs: both)

    @property
    def anything(self) -> bool:
        return bool(self.requeued or self.released or self.resent or self.due_now or self.unpaused)


def _open(config: Config, what: str) -> Ledger:
    if not (config.state_dir / "ledger.db").exists():
        raise NothingMatched(f"nothing to {what}: no ledger in {config.state_dir} yet")
    return Ledger(config.state_dir)


def retry(
    config: Config,
    ids: Sequence[int] = (),
    *,
    failed: bool = False,
    held: bool = False,
    clock: Callable[[], float] = time.time,
) -> RetryOutcome:
    """Put documents back in the queue: given IDs, every failed or held one; with nothing
    chosen, make deferred messages (and a paused queue's check) due now.

    Each document is retried in its own transaction: one that cannot be (a file that no longer
    opens, a disk error) is reported in `skipped` and the others go on.
    """
    outcome = RetryOutcome()
    with _open(config, "retry") as ledger:
        outcome.running = is_running(config.state_dir)
        for row in _chosen(ledger, ids, failed, held):
            if row["id"] not in outcome.handled:
                _retry_one(ledger, config, row, clock(), outcome)
        with ledger.transaction() as db:
            now = clock()
            if failed:
                for row in deliveries.failed_alone(db):
                    _resend(db, config, row, now, outcome)
            if not (ids or failed or held):
                outcome.due_now = delivery_changes.make_due_now(db, now)
            if not (ids or failed or held) or outcome.anything:
                outcome.unpaused = pauses.check_now(db, now)
    if not outcome.anything and not outcome.skipped:
        raise NothingMatched(_nothing_sentence(ids, failed, held))
    return outcome


def _retry_one(
    ledger: Ledger, config: Config, row: sqlite3.Row, now: float, outcome: RetryOutcome
) -> None:
    """One document (with the other half of its pair): committed, moved, and only then told."""
    part = RetryOutcome(running=outcome.running, handled=outcome.handled)
    handled_before = set(outcome.handled)
    try:
        with ledger.transaction() as db:
            _retry_document(db, config, row, now, outcome.running, part)
    except Exception as exc:  # this document only; the others go on
        outcome.handled.intersection_update(handled_before)  # rolled back: not queued
        log.debug("retry of document %d failed", row["id"], exc_info=True)
        what = str(exc) if isinstance(exc, InvoiceMailerError) else f"{type(exc).__name__}: {exc}"
        outcome.skipped.append(f"#{row['id']} {row['name']}: {what}")
        return
    for document_id, source, target in part.moves:
        try:
            storage.move(source, target)
        except OSError as exc:
            # The intent is committed: the service finishes the move at its next start.
            part.skipped.append(f"#{document_id}: the file stays in {source} for now ({exc})")
            continue
        with ledger.transaction() as db:
            document_changes.record_moved(db, document_id)
    for path in part.reason_files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for name in ("requeued", "released", "resent", "skipped"):
        getattr(outcome, name).extend(getattr(part, name))
    outcome.due_now += part.due_now


def _nothing_sentence(ids: Sequence[int], failed: bool, held: bool) -> str:
    if ids:
        return "nothing to retry"
    kinds = [k for k, chosen in (("failed", failed), ("held", held)) if chosen]
    if kinds:
        return f"no {' or '.join(kinds)} documents to retry"
    return "nothing waits to be sent again: no deferred message and sending is not paused"


def _chosen(ledger: Ledger, ids: Sequence[int], failed: bool, held: bool) -> list[sqlite3.Row]:
    rows: dict[int, sqlite3.Row] = {}
    if ids:
        found = {r["id"]: r for r in documents.with_ids(ledger.db, ids)}
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise NothingMatched(
                f"no document with id {', '.join(missing)}; `invoice-mailer status` lists them"
            )
        rows.update(found)
    if failed:  # exactly what `status` lists as failed
        for row in documents.failed(ledger.db):
            rows.setdefault(row["id"], row)
    if held:
        for row in documents.in_state(ledger.db, DocumentState.HELD):
            rows.setdefault(row["id"], row)
    return [rows[key] for key in sorted(rows)]


def _retry_document(
    db: sqlite3.Connection,
    config: Config,
    row: sqlite3.Row,
    now: float,
    running: bool,
    outcome: RetryOutcome,
) -> None:
    current = documents.get(db, row["id"])  # read again, inside the transaction
    assert current is not None  # noqa: S101 (a type narrowing, not a check: documents are never deleted)
    row = current
    label = f"#{row['id']} {row['name']}"
    resent = unconfirmed.resend(db, row["id"], label, now)
    if resent:
        outcome.resent += resent
        return
    has_failed = documents.customer_failed(db, row["id"])
    if row["state"] == DocumentState.HELD:
        document_changes.release(db, row["id"], now)
        outcome.released.append(f"{label} (was held: {row['reason']})")
    elif row["state"] == DocumentState.FAILED or (
        has_failed and row["location"].startswith("spool/")
    ):
        if row["moving_to"] or (running and not row["location"].startswith("failed/")):
            outcome.skipped.append(f"{label} is being filed; try again in a moment")
        else:
            _requeue_document(db, config, row, now, outcome)
    elif not has_failed:
        when = f" (filed {_local(row['updated_at'])})" if row["state"] == DocumentState.DONE else ""
        outcome.skipped.append(f"{label} is {row['state']}{when}, not failed or held")
    for message in deliveries.failed_alone_of(db, row["id"]):
        _resend(db, config, message, now, outcome)
    outcome.due_now += delivery_changes.make_document_due_now(db, row["id"], now)


def _requeue_document(
    db: sqlite3.Connection, config: Config, row: sqlite3.Row, now: float, outcome: RetryOutcome
) -> None:
    """Back to the spool and to routing; its failed messages become history (state retried),
    and the other half of a PDF+XML pair that failed with it comes along."""
    label = f"#{row['id']} {row['name']}"
    source = config.state_dir / row["location"]
    problem = _still_unsendable(config, row["kind"], source)
    if problem:
        outcome.skipped.append(f"{label} still cannot be sent: {problem}")
        return
    outcome.handled.add(row["id"])
    moving_to = None
    if row["location"].startswith(f"{storage.FAILED}/"):
        target = config.state_dir / storage.SPOOL / storage.spool_name(row["name"])
        # The intent (moving_to) is committed first, the file moves after the commit; a crash
        # in between is finished by the archive's recover() at the next start.
        outcome.moves.append((row["id"], source, target))
        moving_to = storage.relative(config.state_dir, target)
        outcome.reason_files.append(source.with_name(source.name + ".reason.txt"))
    failures = deliveries.failed_with_document(db, row["id"])
    ids = [failure["id"] for failure in failures]
    for delivery_id in ids:
        delivery_changes.set_state(db, delivery_id, DeliveryState.RETRIED)
    in_bundle = attachments.in_bundle(db, row["id"])
    # Never attached to the accountant's bundle (refused at intake): it joins the open session.
    session_id = row["session_id"] if in_bundle else None
    document_changes.requeue(db, row["id"], moving_to, session_id, now)
    reason = row["reason"] or (failures[0]["last_error"] if failures else None) or "unknown"
    outcome.requeued.append(f"{label} (it had failed: {reason})")
    # A running service's archive owns what is still in the spool; it files pairs together.
    for partner in documents.partners_to_retry(db, ids, outcome.handled, outcome.running):
        _requeue_document(db, config, partner, now, outcome)


def _still_unsendable(config: Config, kind: str, path: Path) -> str | None:
    """The intake's very check again (taking.check): a retry must not send what the intake
    refuses, and a file that trips the checker is refused the same way, not a crash."""
    try:
        with open(path, "rb") as stream:
            taking.check(
                kind, stream, os.fstat(stream.fileno()).st_size, config.smtp.max_message_size
            )
    except FileNotFoundError:
        return f"{path} is missing"
    except DocumentError as exc:
        return str(exc)
    return None


def _resend(
    db: sqlite3.Connection, config: Config, row: sqlite3.Row, now: float, outcome: RetryOutcome
) -> None:
    """A failed bundle or alert goes again as a new message; the failed one becomes history."""
    delivery_changes.replan(
        db, row["id"], new_message_id(config.sender.address), now, DeliveryState.RETRIED
    )
    what = "Tutto a message" if row["purpose"] == Purpose.BUNDLE else f"{row['purpose']} message"
    outcome.resent.append(f"{what} {row['id']} (it had failed: {row['last_error']})")


def _local(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))

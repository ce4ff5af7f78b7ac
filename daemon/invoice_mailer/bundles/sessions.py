"""The accountant's working sessions ("Tutto a"): every document joins the open session, and
the closed session becomes one bundle (in numbered parts when it is too big for one message).

The session lives in the ledger and is closed in one transaction together with the planning of
its bundle deliveries, so a restart continues an open session and never loses or duplicates a
member. What `status` shows comes from `open_session`; `flush` uses `request_close`.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invoice_mailer.bundles import plan as bundles
from invoice_mailer.config.model import Config
from invoice_mailer.delivery import messages
from invoice_mailer.errors import NothingMatched
from invoice_mailer.ledger import (
    deliveries,
    delivery_changes,
    document_changes,
    documents,
    notices,
    sessions,
)
from invoice_mailer.ledger.database import Ledger
from invoice_mailer.ledger.states import Purpose
from invoice_mailer.routing.planning import plan_delivery
from invoice_mailer.service.lock import is_running

log = logging.getLogger(__name__)

# How long past its closing time a session waits for members still being routed (they are
# normally routed within one loop); after that it closes and lists them as queued.
ROUTING_GRACE = 60.0


def _raw_kinds(config: Config) -> tuple[str, ...]:
    """The documents.kind values that join: a signed .xml.p7m is an XML invoice."""
    kinds = config.all_to.kinds
    return (("pdf",) if "pdf" in kinds else ()) + (("xml", "p7m") if "xml" in kinds else ())


def next_close_time(after: float, close_at: str) -> float:
    """The first daily `close_at` ("HH:MM", local time) strictly after the moment `after`."""
    hour, minute = (int(x) for x in close_at.split(":"))
    # Naive local time on purpose: .timestamp() of tomorrow's HH:MM then takes that day's UTC
    # offset (a DST change in between), which a fixed-offset aware datetime would not.
    moment = datetime.datetime.fromtimestamp(after)  # noqa: DTZ006
    candidate = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate.timestamp() <= after:
        tomorrow = candidate.date() + datetime.timedelta(days=1)
        candidate = datetime.datetime.combine(tomorrow, candidate.time())
    return candidate.timestamp()


def closing_time(config: Config, session: sqlite3.Row) -> tuple[float, str]:
    """When a session is due to close, and why (for the log and `status`)."""
    if session["close_requested"]:
        return float("-inf"), "flush requested"
    gap = config.all_to.session_gap
    due, why = session["last_added_at"] + gap, f"no new document for {gap:g} s"
    if config.all_to.close_at:
        daily = next_close_time(session["opened_at"], config.all_to.close_at)
        if daily < due:
            due, why = daily, f"daily closing time {config.all_to.close_at}"
    return due, why


def open_session(ledger: Ledger, config: Config, now: float | None = None) -> dict[str, Any] | None:
    """The open session for `status`: members, since when, and when it will close."""
    row = sessions.current(ledger.db)
    if row is None:
        return None
    count = documents.count_in_session(ledger.db, row["id"])
    due, why = closing_time(config, row)
    now = time.time() if now is None else now
    return {
        "id": row["id"],
        "count": count,
        "opened_at": row["opened_at"],
        "last_added_at": row["last_added_at"],
        "close_requested": bool(row["close_requested"]),
        "closes_at": max(due, now),
        "closes_because": why,
    }


@dataclass(frozen=True)
class FlushOutcome:
    session_id: int
    documents: int
    running: bool


def flush(config: Config) -> FlushOutcome:
    """`invoice-mailer flush`: ask the service to close the open all_to session now (it does
    so within a second)."""
    if not config.all_to.address:
        raise NothingMatched(
            f"all_to.address is not set in {config.source}: there is no session to flush"
        )
    if not (config.state_dir / "ledger.db").exists():
        raise NothingMatched(f"nothing to flush: no ledger in {config.state_dir} yet")
    with Ledger(config.state_dir) as ledger:
        session = open_session(ledger, config)
        if session is None or request_close(ledger) is None:
            raise NothingMatched("no all_to session is open: nothing to flush")
        return FlushOutcome(session["id"], session["count"], is_running(config.state_dir))


def request_close(ledger: Ledger) -> int | None:
    """Ask the running service to close the open session (`flush`); None if none is open."""
    with ledger.transaction() as db:
        return sessions.request_close(db)


class SessionKeeper:
    """Closes the open session when it is due and plans its bundle; worker thread only."""

    def __init__(
        self, config: Config, ledger: Ledger, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.clock = clock

    def step(self) -> float | None:
        """Close the session if due; return seconds until it needs a look (None: no session)."""
        session = sessions.current(self.ledger.db)
        if session is None:
            return None
        now = self.clock()
        due, why = closing_time(self.config, session)
        if now < due:
            return due - now
        # A member (or a document about to join) not yet routed: its facts are not known.
        pending = documents.routing_pending(self.ledger.db, session["id"], _raw_kinds(self.config))
        if pending and now < max(due, session["last_added_at"]) + ROUTING_GRACE:
            return 0.2  # the router, run just before us, takes them on its next step
        self.close(session["id"], why)
        return None

    def close(self, session_id: int, why: str) -> int:
        """Close the session and plan its bundle in one transaction; return the parts planned."""
        address = self.config.all_to.address
        now = self.clock()
        with self.ledger.transaction() as db:
            session = sessions.close(db, session_id, now)
            if session is None:
                return 0
            if not address:
                log.warning(
                    "session %d closed without a bundle: all_to.address is not set", session_id
                )
                return 0
            members, joined_ids = self._members(db, session)
            parts = bundles.split(self.config, members)
            day = (
                datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
                .astimezone()
                .strftime("%d/%m/%Y")
            )
            for number, part in enumerate(parts, start=1):
                subject, body = bundles.render(self.config, part, day, number, len(parts))
                attached = [m.id for m in part if m.id in joined_ids]
                ids = plan_delivery(
                    db,
                    self.config,
                    Purpose.BUNDLE,
                    (address,),
                    attached,
                    now,
                    session_id=session_id,
                    part=number,
                    parts=len(parts),
                )
                # Its separate copy (copy_mode: separate) is a bundle too: the same text, not
                # a customer message's (outbox renders customer templates for purpose "copy").
                for delivery_id in ids:
                    delivery_changes.set_bundle_text(db, delivery_id, subject, body)
            self._fail_too_big(db, members, joined_ids, now)
        log.info(
            "closed session %d (%s): %d document(s) for %s in %d message(s)",
            session_id,
            why,
            len(members),
            address,
            len(parts),
        )
        return len(parts)

    def _members(self, db: sqlite3.Connection, session: sqlite3.Row):
        """The session's documents as the bundle lists them, and the ids of its members (the
        rows of the bundle's attachments table; outbox leaves out those too large to attach).
        Files refused at intake since the previous closing (not a document, too large) cannot
        be attached but are listed, so the accountant sees a gap in the numbering explained."""
        rows = documents.in_session(db, session["id"])
        joined_ids = {row["id"] for row in rows}
        previous = sessions.previous_closing(db, session["id"])
        since = previous if previous is not None else session["opened_at"]
        refused = documents.refused_since(db, since, _raw_kinds(self.config))
        if refused:
            document_changes.join_session(db, session["id"], [row["id"] for row in refused])
        members = [self._member(db, row, row["id"] in joined_ids) for row in [*rows, *refused]]
        return members, joined_ids

    def _member(self, db: sqlite3.Connection, row: sqlite3.Row, joined: bool) -> bundles.Member:
        customer_messages = deliveries.customer_messages_of(db, row["id"])
        return bundles.member_of(self.config, row, [dict(m) for m in customer_messages], joined)

    def _fail_too_big(self, db, members: list[bundles.Member], joined_ids: set[int], now: float):
        """A document no message can carry fails (docs/DESIGN.md: too large → failed/), named in the
        bundle; its other deliveries fail on their own size check."""
        limit = self.config.smtp.max_message_size
        for member in members:
            if member.id not in joined_ids or member.attachable:
                continue
            encoded = messages.encoded_length(member.size)
            reason = (
                f"the file is {encoded:,} bytes once encoded for e-mail (base64), "
                f"over smtp.max_message_size ({limit:,})"
            )
            if not document_changes.fail(db, member.id, reason, now):
                continue
            notices.add(db, now, f"{member.name} cannot be sent: {reason}")
            log.error(
                "%s cannot be sent: %s; listed in the bundle, not attached", member.name, reason
            )

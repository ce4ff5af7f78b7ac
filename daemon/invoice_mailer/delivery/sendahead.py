"""The next message marked `sending` while the one before is in flight (issue 19).

While the server works on a message (after the final dot, before its reply) the sender makes
its one commit of the message: the previous message's `sent` (waiting in the Recorder) and the
next built message marked `sending`. The fsync overlaps the server's work, and the next message
goes the moment this one is accepted. A crash leaves at most two rows `sending`; the next start
sends both again with the same Message-ID (docs/DESIGN.md, delivery states). The message marked
is named to the transport, which announces its envelope behind the dot (transaction.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.recorder import Recorder
from invoice_mailer.delivery.smtp.transaction import Upcoming
from invoice_mailer.ledger import deliveries, delivery_changes
from invoice_mailer.ledger.states import DeliveryState
from invoice_mailer.service.trouble import describe

log = logging.getLogger(__name__)


class SendAhead:
    """The one delivery marked ahead, if any; used from the sender thread only."""

    def __init__(self, record: Recorder, stop: threading.Event):
        self.record = record
        self.stop = stop
        # As it was before the mark (queued): what its outcome is judged by.
        self.row: sqlite3.Row | None = None

    def mark(self, flying: sqlite3.Row, due_by: float, allowed: bool) -> Upcoming | None:
        """While the server works on `flying`: commit the last `sent`, and mark the next built
        message due by `due_by` `sending` in the same commit (`allowed`: no pause, no rate
        limit); return that message, which goes next. Never raises: the message in flight
        comes first."""
        try:
            with self.record.transaction() as db:
                ahead = None
                if self.row is None and allowed and not self.stop.is_set():
                    ahead = deliveries.next_built(db, due_by, flying["id"])
                    if ahead is not None:
                        delivery_changes.set_state(db, ahead["id"], DeliveryState.SENDING)
            if ahead is None:
                return None
            self.row = ahead
            return self._upcoming(ahead)
        except Exception as exc:  # its outcome is recorded as always, once the reply is in
            log.warning("could not record while a message was in flight: %s", describe(exc))
            return None

    def _upcoming(self, row: sqlite3.Row) -> Upcoming | None:
        """The marked message as the dispatcher will send it, if nothing stops it there."""
        config = self.record.config
        ready = outbox.built(config, row)
        if ready is None or ready[1] > config.smtp.max_message_size:
            return None
        return Upcoming(config.sender.address, outbox.recipients_of(row), *ready)

    def take(self, row: sqlite3.Row) -> bool:
        """Whether `row` is the delivery marked ahead (which is then no longer ahead)."""
        marked = self.row is not None and self.row["id"] == row["id"]
        self.row = None
        return marked

    def release(self) -> bool:
        """The step ends before the message marked ahead went (stopping, a pause): queued.
        Whether there was one (its envelope may have been announced)."""
        ahead, self.row = self.row, None
        if ahead is not None:
            with self.record.transaction() as db:
                delivery_changes.unmark_sending(db, ahead["id"])
        return ahead is not None

"""The next messages marked `sending` while the one before is in flight (issue 19).

While the server works on a message (after the final dot, before its reply) the sender makes
its one commit for MARK_AHEAD messages: the `sent` of those accepted since its last commit
(waiting in the Recorder) and the next MARK_AHEAD built messages marked `sending`. The fsync
overlaps the server's work, and the next message goes the moment this one is accepted; the
messages marked go one after the other without a commit of their own. A crash leaves at most
MARK_AHEAD + 1 rows `sending`; the next start sends them again with the same Message-ID
(docs/DESIGN.md, delivery states). The next message marked is named to the transport, which
announces its envelope behind the dot (transaction.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from invoice_mailer.delivery import outbox
from invoice_mailer.delivery.recorder import Recorder
from invoice_mailer.delivery.smtp.transaction import Upcoming
from invoice_mailer.errors import describe
from invoice_mailer.ledger import deliveries, delivery_changes
from invoice_mailer.ledger.states import DeliveryState

log = logging.getLogger(__name__)

# Messages marked `sending` per commit of the sender. In the first seconds of a burst its commit
# waits for the intake's and routing's (the writer lock, the disk's syncs): 4 ms of a 7.5 ms
# turn per message at one mark per commit, half of it at two (bench/README.md, the burst). Two
# costs at most one more resend after a crash (each with its Message-ID, and for a PEC sender
# after its accettazione was looked for).
MARK_AHEAD = 2


class SendAhead:
    """The deliveries marked ahead, in the order they go; used from the sender thread only."""

    def __init__(self, record: Recorder, stop: threading.Event):
        self.record = record
        self.stop = stop
        # As they were before the mark (queued): what their outcomes are judged by.
        self.marked: list[sqlite3.Row] = []

    @property
    def row(self) -> sqlite3.Row | None:
        """The delivery marked ahead that goes next, if any."""
        return self.marked[0] if self.marked else None

    def mark(self, flying: sqlite3.Row, due_by: float, allowed: bool) -> Upcoming | None:
        """While the server works on `flying`, once none is left marked: commit the `sent`
        waiting, and mark the next MARK_AHEAD built messages due by `due_by` `sending` in the
        same commit (`allowed`: no pause, no rate limit); return the next marked, which goes
        next. Never raises: the message in flight comes first."""
        try:
            if not self.marked:
                with self.record.transaction() as db:
                    marked = []
                    if allowed and not self.stop.is_set():
                        marked = deliveries.next_built(db, due_by, flying["id"], MARK_AHEAD)
                        for row in marked:
                            delivery_changes.set_state(db, row["id"], DeliveryState.SENDING)
                self.marked = marked
            if not self.marked or self.stop.is_set():
                return None
            return self._upcoming(self.marked[0])
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
        """Whether `row` is the delivery marked ahead that goes next (then no longer ahead)."""
        if self.marked and self.marked[0]["id"] == row["id"]:
            self.marked.pop(0)
            return True
        return False

    def release(self) -> bool:
        """The step ends before the messages marked ahead went (stopping, a pause): queued
        again. Whether there was one (the next one's envelope may have been announced)."""
        marked, self.marked = self.marked, []
        if marked:
            with self.record.transaction() as db:
                for row in marked:
                    delivery_changes.unmark_sending(db, row["id"])
        return bool(marked)
